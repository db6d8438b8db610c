"""Raw Linux system calls through ctypes, and nothing else.

Each wrapper retries EINTR and raises ``OSError(errno, "<syscall>: <strerror>", path)``. libc is
loaded once, on first use, with ``use_errno=True`` so ``ctypes.get_errno`` is reliable. Python
3.11 has no ``os.unshare``/``os.setns``, and no Python has ``mount`` or ``pivot_root``.
"""

from __future__ import annotations

import ctypes
import errno
import functools
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# Namespace flags (linux/sched.h).
CLONE_NEWNS = 0x00020000
CLONE_NEWCGROUP = 0x02000000
CLONE_NEWUTS = 0x04000000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWPID = 0x20000000
CLONE_NEWNET = 0x40000000

# mount(2) flags (linux/mount.h).
MS_RDONLY = 0x1
MS_NOSUID = 0x2
MS_NODEV = 0x4
MS_NOEXEC = 0x8
MS_REMOUNT = 0x20
MS_NOATIME = 0x400
MS_NODIRATIME = 0x800
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MS_SLAVE = 0x80000
MS_RELATIME = 0x200000
MS_STRICTATIME = 0x1000000

# umount2(2) flags.
MNT_DETACH = 0x2

# prctl(2) options.
PR_SET_PDEATHSIG = 1
PR_SET_KEEPCAPS = 8
PR_CAPBSET_READ = 23
PR_CAPBSET_DROP = 24
PR_SET_CHILD_SUBREAPER = 36
PR_SET_NO_NEW_PRIVS = 38
PR_SET_SECCOMP = 22
SECCOMP_MODE_FILTER = 2

_SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
_CAP_VERSION_3 = 0x20080522


class _SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


@dataclass(frozen=True)
class CapSets:
    """The effective, permitted and inheritable capability sets as 64-bit masks."""

    effective: int
    permitted: int
    inheritable: int


class _CapHeader(ctypes.Structure):
    _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]


class _CapData(ctypes.Structure):
    _fields_ = [
        ("effective", ctypes.c_uint32),
        ("permitted", ctypes.c_uint32),
        ("inheritable", ctypes.c_uint32),
    ]


@functools.cache
def _libc() -> ctypes.CDLL:
    """Load the C library once, with errno capture."""
    return ctypes.CDLL(None, use_errno=True)  # dlopen(NULL): libc is already in the process


def _encode(path: str | os.PathLike[str] | None) -> bytes | None:
    return None if path is None else os.fsencode(path)


def _call(
    name: str, path: str | os.PathLike[str] | None, func: Callable[..., Any], *args: object
) -> int:
    """Call ``func(*args)``, retrying EINTR, and raise OSError naming the syscall on failure."""
    while True:
        result = func(*args)
        if result != -1:
            return int(result)
        err = ctypes.get_errno()
        if err != errno.EINTR:
            filename = None if path is None else os.fspath(path)
            raise OSError(err, f"{name}: {os.strerror(err)}", filename)


def unshare(flags: int) -> None:
    """Move the calling process into new namespaces."""
    _call("unshare", None, _libc().unshare, ctypes.c_int(flags))


def setns(fd: int, nstype: int = 0) -> None:
    """Join the namespace that ``fd`` refers to."""
    _call("setns", None, _libc().setns, ctypes.c_int(fd), ctypes.c_int(nstype))


def mount(
    source: str | os.PathLike[str] | None,
    target: str | os.PathLike[str],
    fstype: str | None,
    flags: int = 0,
    data: str | None = None,
) -> None:
    """Mount ``source`` on ``target``."""
    _call(
        "mount",
        target,
        _libc().mount,
        _encode(source),
        _encode(target),
        _encode(fstype),
        ctypes.c_ulong(flags),
        _encode(data),
    )


def umount2(target: str | os.PathLike[str], flags: int = 0) -> None:
    """Unmount ``target``."""
    _call("umount2", target, _libc().umount2, _encode(target), ctypes.c_int(flags))


def pivot_root(new_root: str | os.PathLike[str], put_old: str | os.PathLike[str]) -> None:
    """Make ``new_root`` the root mount and move the old one to ``put_old``."""
    machine = platform.machine()
    number = _SYS_PIVOT_ROOT.get(machine)
    if number is None:
        raise OSError(errno.ENOSYS, f"pivot_root: no syscall number known for {machine}")
    _call(
        "pivot_root",
        new_root,
        _libc().syscall,
        ctypes.c_long(number),
        _encode(new_root),
        _encode(put_old),
    )


def sethostname(name: str) -> None:
    """Set the host name of the current UTS namespace."""
    raw = name.encode()
    _call("sethostname", None, _libc().sethostname, raw, ctypes.c_size_t(len(raw)))


def setdomainname(name: str) -> None:
    """Set the NIS domain name of the current UTS namespace."""
    raw = name.encode()
    _call("setdomainname", None, _libc().setdomainname, raw, ctypes.c_size_t(len(raw)))


def capget(pid: int = 0) -> CapSets:
    """Read the capability sets of ``pid`` (0: the calling thread)."""
    header = _CapHeader(_CAP_VERSION_3, pid)
    data = (_CapData * 2)()
    _call("capget", None, _libc().capget, ctypes.byref(header), data)
    return CapSets(
        effective=data[0].effective | data[1].effective << 32,
        permitted=data[0].permitted | data[1].permitted << 32,
        inheritable=data[0].inheritable | data[1].inheritable << 32,
    )


def capset(caps: CapSets) -> None:
    """Set the capability sets of the calling thread."""
    header = _CapHeader(_CAP_VERSION_3, 0)
    data = (_CapData * 2)()
    for index, shift in enumerate((0, 32)):
        data[index].effective = (caps.effective >> shift) & 0xFFFFFFFF
        data[index].permitted = (caps.permitted >> shift) & 0xFFFFFFFF
        data[index].inheritable = (caps.inheritable >> shift) & 0xFFFFFFFF
    _call("capset", None, _libc().capset, ctypes.byref(header), data)


def prctl(option: int, arg2: int = 0, arg3: int = 0, arg4: int = 0, arg5: int = 0) -> int:
    """Call prctl(2) and return its result."""
    args = (ctypes.c_ulong(a) for a in (arg2, arg3, arg4, arg5))
    return _call("prctl", None, _libc().prctl, ctypes.c_int(option), *args)


def set_seccomp_filter(program: bytes) -> None:
    """Install a seccomp BPF ``program`` (``struct sock_filter`` array) on the calling thread.

    prctl's PR_SET_SECCOMP is seccomp(SECCOMP_SET_MODE_FILTER) with no flags, on every
    architecture; it needs no_new_privs or CAP_SYS_ADMIN.
    """
    code = ctypes.create_string_buffer(program, len(program))
    fprog = _SockFprog(len(program) // 8, ctypes.cast(code, ctypes.c_void_p))
    _call(
        "prctl(PR_SET_SECCOMP)",
        None,
        _libc().prctl,
        ctypes.c_int(PR_SET_SECCOMP),
        ctypes.c_ulong(SECCOMP_MODE_FILTER),
        ctypes.byref(fprog),
        ctypes.c_ulong(0),
        ctypes.c_ulong(0),
    )
