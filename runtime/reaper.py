"""``--init``: pid 1 stays a small reaper and runs the command as its only direct child.

A process that is pid 1 of its namespace inherits every orphan of the container; a command that
does not expect that leaves zombies behind. Like tini, the reaper forwards the usual signals to
its child, reaps whatever dies, and exits with the child's status once the child is gone
(``128+N`` when a signal N killed it). It is the container's set-up process itself, so no
binary has to be found in the image.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

FORWARDED_SIGNALS = (
    signal.SIGHUP,
    signal.SIGINT,
    signal.SIGQUIT,
    signal.SIGTERM,
    signal.SIGUSR1,
    signal.SIGUSR2,
    signal.SIGWINCH,
)

ExecFunc = Callable[[], NoReturn]


def exit_status(wait_status: int) -> int:
    """Docker's exit status for a wait status: the child's code, or 128+N for signal N."""
    code = os.waitstatus_to_exitcode(wait_status)
    return code if code >= 0 else 128 - code


def forward_signals(child: int) -> None:
    """Pass the usual signals (HUP, INT, QUIT, TERM, USR1, USR2, WINCH) on to ``child``."""

    def forward(number: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, number)

    for number in FORWARDED_SIGNALS:
        signal.signal(number, forward)


def reap_exited() -> None:
    """Reap every child that has ended, without waiting for the others."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-1, os.WNOHANG)[0] > 0:
            pass


def reap_until(child: int) -> int:
    """Reap every child until ``child`` itself exits; return the status to exit with."""
    while True:
        try:
            reaped, wait_status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if reaped == child:
            return exit_status(wait_status)


def run(execute: ExecFunc, sock: socket.socket, *, tty: bool) -> NoReturn:
    """Fork the command (``execute`` never returns) and reap as pid 1 until it exits.

    The child keeps ``sock`` (close-on-exec) to report an exec failure; the reaper closes its
    own copy at once so the caller sees end-of-file when the command runs.
    """
    blocked = signal.pthread_sigmask(signal.SIG_BLOCK, set(FORWARDED_SIGNALS))
    child = os.fork()
    if child == 0:
        # In its own process group, so a terminal's job control signals reach it alone.
        os.setpgid(0, 0)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        execute()
    sock.close()
    with contextlib.suppress(OSError):
        os.setpgid(child, child)
    if tty:
        with contextlib.suppress(OSError):
            os.tcsetpgrp(0, child)
    forward_signals(child)
    signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
    os._exit(reap_until(child))
