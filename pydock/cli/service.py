"""``system service``: serve the Docker Engine API on a unix socket (see :mod:`pydock.api`)."""

from __future__ import annotations

import argparse
import functools
import os
import sys

from pydock.cli.app import engine_config
from pydock.cli.base import EXIT_FAILURE, fail


def cmd_system_service(args: argparse.Namespace) -> int:
    """Serve the Docker Engine API until idle for --time seconds (0: until stopped)."""
    import trio

    from pydock import api

    config = engine_config(args)
    if os.geteuid() != 0:
        from pydock.cli.run import prepare

        prepare(args, config)
    if args.time < 0:
        fail("serving: --time must be 0 or more seconds")
        return EXIT_FAILURE

    def ready(where: str) -> None:
        sys.stderr.write(f"pydock: serving the Docker API on {where}\n")
        sys.stderr.flush()

    trio.run(functools.partial(api.serve, config, args.uri, float(args.time), ready=ready))
    return 0
