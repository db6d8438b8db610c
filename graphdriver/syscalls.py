"""The raw system calls of the graph-driver layer and the drivers, in one place.

libc is loaded once, lazily, with ``use_errno``; each wrapper raises
``OSError(errno, "<call>: <strerror>", path)``. (The runtime keeps its own in
``runtime/linux.py``: neither package imports the other.) Stdlib only, so the FUSE
filesystem process can use it without loading anything else.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os

MNT_FORCE = 0x1
MNT_DETACH = 0x2


@functools.cache
def libc() -> ctypes.CDLL:
    """The C library, loaded once."""
    return ctypes.CDLL(None, use_errno=True)  # dlopen(NULL): libc is already in the process


def umount2(target: str | os.PathLike[str], flags: int = 0) -> None:
    """``umount2(2)``; retried on EINTR."""
    path = os.fsencode(target)
    while libc().umount2(path, ctypes.c_int(flags)) != 0:
        code = ctypes.get_errno()
        if code != errno.EINTR:
            raise OSError(code, f"umount2: {os.strerror(code)}", os.fsdecode(path))


def pid_alive(pid: int) -> bool:
    """Whether process ``pid`` exists (also when it belongs to another user)."""
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
