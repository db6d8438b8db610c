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

    def __init__(self, path: Path, target: int, tail: int | None = None) -> None:
        self.path = path
        self.target = target
        self.offset = 0 if tail is None else tail_offset(path, tail)

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


def tail_offset(path: Path, lines: int) -> int:
    """Where the last ``lines`` lines of ``path`` begin (an unfinished last line counts)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if lines <= 0:
            return size
        # The newline that ends the last line does not start a line of its own.
        position = size - 1 if size and os.pread(fd, 1, size - 1) == b"\n" else size
        wanted = lines
        while position > 0:
            start = max(0, position - (1 << 16))
            chunk = os.pread(fd, position - start, start)
            cut = len(chunk)
            while (found := chunk.rfind(b"\n", 0, cut)) >= 0:
                wanted -= 1
                if wanted == 0:
                    return start + found + 1
                cut = found
            position = start
        return 0
    finally:
        os.close(fd)


def show(
    files: ContainerFiles,
    *,
    tail: int | None = None,
    follow: bool = False,
    is_running: Callable[[], bool] = lambda: False,
    stdout: int = 1,
    stderr: int = 2,
) -> None:
    """Copy the logs to ``stdout``/``stderr``; with ``follow``, until the container stops."""
    readers = [_Reader(files.stdout_log, stdout, tail), _Reader(files.stderr_log, stderr, tail)]
    while True:
        running = follow and is_running()
        copied = [reader.drain() for reader in readers]
        if not running:
            if follow and any(copied):
                continue  # one last pass after it stopped
            return
        if not any(copied):
            time.sleep(FOLLOW_INTERVAL)
