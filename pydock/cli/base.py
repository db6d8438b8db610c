"""What every command module shares: exit statuses and the one failure line."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from pydock.engine import Engine

EXIT_FAILURE = 125
EXIT_INTERRUPTED = 130

#: A command: ``(engine, arguments, standard output) -> exit status``.
Command = Callable[["Engine", argparse.Namespace, TextIO], int]


def fail(message: str) -> None:
    """Print one ``pydock: <message>`` line on standard error."""
    sys.stderr.write("pydock: " + " ".join(message.split("\n")) + "\n")
    sys.stderr.flush()


def tls_verify(text: str) -> bool:
    """The value of ``--tls-verify``: true or false."""
    lowered = text.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, not {text!r}")
