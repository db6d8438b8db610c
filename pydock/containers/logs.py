"""``logs``: what a container wrote, from its log files, and following them while it runs."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

from pydock.containers.attach import write_all
from pydock.containers.files import ContainerFiles

FOLLOW_INTERVAL = 0.1


class _Reader:
    """Reads a log file from where it was last read (the file may not exist yet)."""

    def __init__(self, path: Path, target: int) -> None:
        self.path = path
        self.target = target
        self.offset = 0

    def drain(self) -> bool:
        """Copy what is new to the target; whether anything was."""
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        copied = False
        try:
            os.lseek(fd, self.offset, os.SEEK_SET)
            while data := os.read(fd, 1 << 16):
                write_all(self.target, data)
                self.offset += len(data)
                copied = True
        finally:
            os.close(fd)
        return copied


def show(
    files: ContainerFiles,
    *,
    follow: bool = False,
    is_running: Callable[[], bool] = lambda: False,
    stdout: int = 1,
    stderr: int = 2,
) -> None:
    """Copy the logs to ``stdout``/``stderr``; with ``follow``, until the container stops."""
    readers = [_Reader(files.stdout_log, stdout), _Reader(files.stderr_log, stderr)]
    while True:
        running = follow and is_running()
        copied = [reader.drain() for reader in readers]
        if not running:
            if follow and any(copied):
                continue  # one last pass after it stopped
            return
        if not any(copied):
            time.sleep(FOLLOW_INTERVAL)
