"""``pydock bench`` on the command line: its arguments only.

The benchmark itself (``pydock.bench.command``) is imported when the command runs, so that it
adds nothing to the start-up of every other command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

# The names the parser offers; a unit test keeps them equal to pydock.bench's own.
SIZE_NAMES = ("small", "medium", "large")
REFERENCE_NAMES = ("tar", "kernel-overlay", "fuse-overlayfs", "podman")


def add_bench_command(commands: Any) -> None:
    """Add ``bench`` to the ``pydock`` sub-command parsers."""
    summary = "Measure the storage drivers side by side with the tools used instead"
    sub = commands.add_parser("bench", help=summary, description=summary)
    sub.set_defaults(bench=cmd_bench, doing="benchmarking")
    sub.add_argument(
        "--storage", dest="backends", metavar="DRIVER,...",
        help="pydock drivers to measure, in order (default: every registered driver)",
    )  # fmt: skip
    sub.add_argument(
        "--workload", dest="workloads", metavar="NAME,...",
        help="workloads to run (default: all; 'mount' means every depth)",
    )  # fmt: skip
    sub.add_argument("--size", choices=SIZE_NAMES, default="small", help="amount of data")
    sub.add_argument("--repeat", type=int, default=3, help="samples of each figure (default 3)")
    sub.add_argument(
        "--reference", dest="references", metavar="TOOL,...",
        help=f"reference tools ({','.join(REFERENCE_NAMES)}; default: all; 'none' for none)",
    )  # fmt: skip
    sub.add_argument("--baseline", metavar="NAME", help="ratios against this (default: first)")
    sub.add_argument("--out", type=Path, help="directory for the results (default: ./bench-TIME)")
    sub.add_argument("--dir", type=Path, help="work directory for data and layers (kept)")
    sub.add_argument("--quick", action="store_true", help="small size and one repeat (tests)")
    sub.add_argument(
        "--redraw", type=Path, metavar="RESULTS.json",
        help="run nothing: draw the table, report and plots of an earlier run again",
    )  # fmt: skip


def cmd_bench(args: argparse.Namespace) -> int:
    """Run the benchmark the arguments ask for; write and print the results."""
    from pydock.bench.command import run_bench

    return run_bench(args)
