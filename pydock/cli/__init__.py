"""The ``pydock`` command line: Docker's words and flags, one small function per command.

``commands`` declares every command and its arguments; ``app`` parses, imports the one
command module that runs (``images``, ``containers``, ``run``, ``system``, ``bench``) and
turns failures into one line and exit status 125.
"""

from __future__ import annotations

from pydock.cli.app import build_parser, console, engine_config, main

__all__ = ["build_parser", "console", "engine_config", "main"]
