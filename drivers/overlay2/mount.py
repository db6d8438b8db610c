"""Mounting overlayfs: the new mount API (Linux 6.8+, ``lowerdir+``) and legacy ``mount(2)``.

With ``fsopen``/``fsconfig`` every lower layer is its own parameter, so the one-page limit on
``mount(2)``'s option string no longer caps the depth; the kernel's own limit (500 lowers)
applies. On older kernels the legacy string is built from short links relative to the driver's
home, which keeps 128 layers within a page as moby does.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import threading
from collections.abc import Sequence
from pathlib import Path

from graphdriver import syscalls

_chdir_lock = threading.Lock()

# Syscall numbers of the new mount API are the same on every architecture (added in 5.2).
_SYS_MOVE_MOUNT = 429
_SYS_FSOPEN = 430
_SYS_FSCONFIG = 431
_SYS_FSMOUNT = 432

_FSOPEN_CLOEXEC = 0x1
_FSMOUNT_CLOEXEC = 0x1
_FSCONFIG_SET_FLAG = 0
_FSCONFIG_SET_STRING = 1
_FSCONFIG_CMD_CREATE = 6
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
_AT_FDCWD = -100
MNT_DETACH = 0x2
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _lib() -> ctypes.CDLL:
    return syscalls.libc()


def _check(result: int, call: str, path: str | None = None) -> int:
    if result < 0:
        code = ctypes.get_errno()
        raise OSError(code, f"{call}: {os.strerror(code)}", path)
    return result


def _retry(call: str, path: str | None, func: object, *args: object) -> int:
    assert callable(func)
    while True:
        result = int(func(*args))
        if result >= 0 or ctypes.get_errno() != errno.EINTR:
            return _check(result, call, path)


def mount(source: str, target: str, fstype: str, flags: int, data: str) -> None:
    """``mount(2)``."""
    _retry(
        "mount",
        target,
        _lib().mount,
        source.encode(),
        target.encode(),
        fstype.encode(),
        ctypes.c_ulong(flags),
        data.encode(),
    )


def umount2(target: str, flags: int = 0) -> None:
    """``umount2(2)``."""
    _retry("umount2", target, _lib().umount2, target.encode(), ctypes.c_int(flags))


def fsopen(fstype: str) -> int:
    return _retry(
        "fsopen", None, _lib().syscall, _SYS_FSOPEN, fstype.encode(), ctypes.c_uint(_FSOPEN_CLOEXEC)
    )


def fsconfig_string(fd: int, key: str, value: str) -> None:
    _retry(
        "fsconfig",
        value,
        _lib().syscall,
        _SYS_FSCONFIG,
        ctypes.c_int(fd),
        ctypes.c_uint(_FSCONFIG_SET_STRING),
        key.encode(),
        value.encode(),
        ctypes.c_int(0),
    )


def fsconfig_flag(fd: int, key: str) -> None:
    _retry(
        "fsconfig",
        key,
        _lib().syscall,
        _SYS_FSCONFIG,
        ctypes.c_int(fd),
        ctypes.c_uint(_FSCONFIG_SET_FLAG),
        key.encode(),
        None,
        ctypes.c_int(0),
    )


def fsconfig_create(fd: int) -> None:
    _retry(
        "fsconfig",
        None,
        _lib().syscall,
        _SYS_FSCONFIG,
        ctypes.c_int(fd),
        ctypes.c_uint(_FSCONFIG_CMD_CREATE),
        None,
        None,
        ctypes.c_int(0),
    )


def fsmount(fd: int, attr_flags: int = 0) -> int:
    return _retry(
        "fsmount",
        None,
        _lib().syscall,
        _SYS_FSMOUNT,
        ctypes.c_int(fd),
        ctypes.c_uint(_FSMOUNT_CLOEXEC),
        ctypes.c_uint(attr_flags),
    )


def move_mount(fd: int, target: str) -> None:
    _retry(
        "move_mount",
        target,
        _lib().syscall,
        _SYS_MOVE_MOUNT,
        ctypes.c_int(fd),
        b"",
        ctypes.c_int(_AT_FDCWD),
        target.encode(),
        ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH),
    )


def kernel_error(fd: int) -> str:
    """The kernel's message for a failed ``fsconfig`` (read from the fs context fd)."""
    messages = []
    while True:
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        messages.append(data.decode(errors="replace").strip())
    return "; ".join(messages)


def mount_overlay_new_api(
    target: Path, lowers: Sequence[Path], upper: Path | None, work: Path | None, *, userxattr: bool
) -> None:
    """Mount an overlay with one ``lowerdir+`` per layer (nearest first)."""
    fd = fsopen("overlay")
    try:
        try:
            for lower in lowers:
                fsconfig_string(fd, "lowerdir+", os.fspath(lower))
            if upper is not None and work is not None:
                fsconfig_string(fd, "upperdir", os.fspath(upper))
                fsconfig_string(fd, "workdir", os.fspath(work))
            if userxattr:
                fsconfig_flag(fd, "userxattr")
            fsconfig_create(fd)
        except OSError as exc:
            detail = kernel_error(fd)
            if detail:
                raise OSError(exc.errno, f"{exc.strerror} ({detail})", exc.filename) from exc
            raise
        mount_fd = fsmount(fd)
        try:
            move_mount(mount_fd, os.fspath(target))
        finally:
            os.close(mount_fd)
    finally:
        os.close(fd)


def legacy_options(
    home: Path,
    lower_links: Sequence[str],
    upper: Path | None,
    work: Path | None,
    *,
    userxattr: bool,
) -> str:
    """The ``mount(2)`` data string, with lower layers as short links relative to ``home``."""
    parts = ["lowerdir=" + ":".join(lower_links)]
    if upper is not None and work is not None:
        parts.append(f"upperdir={os.path.relpath(upper, home)}")
        parts.append(f"workdir={os.path.relpath(work, home)}")
    if userxattr:
        parts.append("userxattr")
    return ",".join(parts)


def mount_overlay_legacy(target: Path, home: Path, options: str) -> None:
    """Mount with ``mount(2)``; paths in ``options`` are relative to ``home``."""
    if len(options) >= PAGE_SIZE:
        raise OSError(
            errno.E2BIG,
            f"mount options are {len(options)} bytes, more than the {PAGE_SIZE}-byte page "
            "mount(2) accepts (too many layers for the legacy mount API)",
            os.fspath(target),
        )
    with _chdir_lock:
        previous = os.open(".", os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.chdir(home)
            mount("overlay", os.fspath(target), "overlay", 0, options)
        finally:
            os.fchdir(previous)
            os.close(previous)
