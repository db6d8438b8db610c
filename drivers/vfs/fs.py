"""Filesystem helpers the standard library lacks: deep paths, tree removal, no-replace rename.

Layer trees may nest deeper than PATH_MAX (4096 bytes) allows a single path to reach, so the
helpers here fall back to walking such paths in pieces, one ``openat`` per piece.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import stat
from collections.abc import Callable

from graphdriver import syscalls

DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Bytes per piece when a path is too long for one syscall; well under PATH_MAX.
_PIECE_BYTES = 3072
_AT_FDCWD = -100
_RENAME_NOREPLACE = 1


def open_dir(path: str) -> int:
    """Open directory ``path`` for ``*at`` calls, also when it is longer than PATH_MAX."""
    try:
        return os.open(path, DIR_FLAGS)
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    fd: int | None = None
    try:
        for piece in _pieces(path):
            new_fd = os.open(piece, DIR_FLAGS, dir_fd=fd)
            if fd is not None:
                os.close(fd)
            fd = new_fd
    except BaseException:
        if fd is not None:
            os.close(fd)
        raise
    if fd is None:
        raise FileNotFoundError(errno.ENOENT, "empty path", path)
    return fd


def _pieces(path: str) -> list[str]:
    """Split ``path`` into relative runs of components that each fit in one syscall."""
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for part in path.split("/"):
        if not part:
            continue
        length = len(os.fsencode(part)) + 1
        if current and size + length > _PIECE_BYTES:
            pieces.append("/".join(current))
            current, size = [], 0
        current.append(part)
        size += length
    if current:
        pieces.append("/".join(current))
    if pieces and path.startswith("/"):
        pieces[0] = "/" + pieces[0]
    return pieces


def rmdir(path: str) -> None:
    """Remove the empty directory ``path``, also when it is longer than PATH_MAX."""
    try:
        os.rmdir(path)
        return
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            raise
    parent, name = path.rsplit("/", 1)
    fd = open_dir(parent)
    try:
        os.rmdir(name, dir_fd=fd)
    finally:
        os.close(fd)


def remove_tree(path: str) -> None:
    """Delete ``path`` and everything below it, iteratively, never following symlinks.

    Without root, directories that deny their owner write or search access are opened up
    first: a layer may legitimately hold read-only directories.
    """
    privileged = os.geteuid() == 0
    if not privileged:
        _grant_owner_access(path, None, os.lstat(path).st_mode)
    stack = [path]
    while stack:
        current = stack[-1]
        fd = open_dir(current)
        try:
            subdirs = _unlink_non_dirs(fd, privileged)
        finally:
            os.close(fd)
        if subdirs:
            stack.extend(f"{current}/{name}" for name in subdirs)
        else:
            stack.pop()
            rmdir(current)


def _unlink_non_dirs(dir_fd: int, privileged: bool) -> list[str]:
    """Unlink every non-directory in ``dir_fd`` and return the names of its subdirectories."""
    subdirs: list[str] = []
    with os.scandir(dir_fd) as entries:
        for entry in entries:
            if entry.is_dir(follow_symlinks=False):
                if not privileged:
                    mode = entry.stat(follow_symlinks=False).st_mode
                    _grant_owner_access(entry.name, dir_fd, mode)
                subdirs.append(entry.name)
            else:
                os.unlink(entry.name, dir_fd=dir_fd)
    return subdirs


def _grant_owner_access(name: str, dir_fd: int | None, mode: int) -> None:
    """Give the owner read, write and search access to a directory that lacks it."""
    if stat.S_ISDIR(mode) and mode & 0o700 != 0o700:
        os.chmod(name, stat.S_IMODE(mode) | 0o700, dir_fd=dir_fd)


@functools.cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    """libc's ``renameat2``, loaded once; ``None`` where libc lacks it."""
    try:
        func = syscalls.libc().renameat2
    except AttributeError:
        return None
    func.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    func.restype = ctypes.c_int
    renameat2: Callable[[int, bytes, int, bytes, int], int] = func
    return renameat2


def rename_noreplace(src: str, dst: str) -> None:
    """Rename ``src`` to ``dst``; ``FileExistsError`` if ``dst`` exists, even as an empty dir.

    Plain ``rename`` silently replaces an empty directory, which would let two concurrent
    creates of one empty layer both succeed.
    """
    func = _renameat2()
    if func is not None:
        old, new = os.fsencode(src), os.fsencode(dst)
        while True:
            if func(_AT_FDCWD, old, _AT_FDCWD, new, _RENAME_NOREPLACE) == 0:
                return
            err = ctypes.get_errno()
            if err == errno.EINTR:
                continue
            if err not in (errno.ENOSYS, errno.EINVAL):
                raise OSError(err, f"renameat2: {os.strerror(err)}", src, None, dst)
            break
    # The filesystem or libc cannot refuse atomically; check, then rename.
    if os.path.lexists(dst):
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), src, None, dst)
    os.rename(src, dst)
