"""``pydock bench``: the benchmark runs here, with no store of the user's.

Its arguments are declared with the others in :mod:`pydock.cli.commands`; the names it offers
are kept equal to the benchmark's own by a unit test.
"""

from __future__ import annotations

import argparse

from pydock.cli.commands import REFERENCE_NAMES, SIZE_NAMES
from pydock.errors import PydockError

__all__ = ["REFERENCE_NAMES", "SIZE_NAMES", "cmd_bench"]


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark the arguments ask for; write and print the results."""
    import importlib.util

    missing = [m for m in ("rich", "matplotlib") if importlib.util.find_spec(m) is None]
    if missing:
        raise PydockError(
            f"benchmarking: {' and '.join(missing)} not installed"
            " (install pydock with its bench extra: pip install 'pydock[bench]')"
        )
    from pydock.bench.command import run_bench

    return run_bench(args)
