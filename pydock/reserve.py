"""A little disk space held back, so that the commands that free space work on a full disk.

Deleting an image or a container writes to the store first (a row removed is a page written to
SQLite's log) and frees its files after: on a disk with no byte left, the write fails and the
user is locked out of the very command that would help. pydock keeps ``<root>/.space-reserve``
(8 MiB, allocated while there is room to spare) and lets it go at the start of a freeing
command when the disk is nearly full; a later command takes it back once there is room again.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

NAME = ".space-reserve"
SIZE = 8 << 20
# Taken back only with this much more free, so a nearly full disk is not filled by pydock.
_SPARE = 4 * SIZE


def _free_bytes(root: Path) -> int:
    stats = os.statvfs(root)
    return stats.f_bavail * stats.f_frsize


def keep(root: Path) -> bool:
    """Hold the reserve if it is missing and the disk has room to spare; best effort."""
    path = root / NAME
    try:
        if path.exists() or _free_bytes(root) < _SPARE:
            return False
        temporary = root / f"{NAME}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.posix_fallocate(fd, 0, SIZE)
        finally:
            os.close(fd)
        os.replace(temporary, path)
        return True
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(root / f"{NAME}.{os.getpid()}")
        return False


def release_if_short(root: Path) -> bool:
    """Let the reserve go when less than its size is free; returns whether it did."""
    path = root / NAME
    try:
        if _free_bytes(root) >= SIZE:
            return False
        path.unlink()
        return True
    except OSError:
        return False
