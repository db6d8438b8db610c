"""Detaching a mount without help from the driver that made it (a lazy ``umount2``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import subprocess
from pathlib import Path

_MNT_DETACH = 0x2


def detach(target: Path) -> None:
    """Lazily detach ``target``: ``umount2(MNT_DETACH)`` as root, ``fusermount3 -uz`` otherwise.

    Raises ``OSError`` when neither works.
    """
    libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    if libc.umount2(os.fsencode(target), ctypes.c_int(_MNT_DETACH)) == 0:
        return
    code = ctypes.get_errno()
    helper = shutil.which("fusermount3")
    if helper is not None:
        done = subprocess.run(
            [helper, "-u", "-z", os.fspath(target)], capture_output=True, text=True, timeout=30
        )
        if done.returncode == 0:
            return
    raise OSError(code, f"umount2: {os.strerror(code)}", os.fspath(target))


def in_initial_user_namespace() -> bool:
    """Whether this process runs in the host's user namespace (trusted.* xattrs allowed)."""
    try:
        with open("/proc/self/uid_map") as handle:
            fields = handle.read().split()
    except OSError:
        return True
    return fields[:3] == ["0", "0", "4294967295"]


def mount_points() -> set[str]:
    """Every mount point of this mount namespace (``/proc/self/mountinfo``, unescaped)."""
    points = set()
    with open("/proc/self/mountinfo", "rb") as info:
        for line in info:
            field = line.split(b" ")[4]
            points.add(os.fsdecode(_unescape(field)))
    return points


def _unescape(field: bytes) -> bytes:
    out = bytearray()
    index = 0
    while index < len(field):
        octal = field[index + 1 : index + 4]
        if field[index] == 0x5C and len(octal) == 3 and octal.isdigit():
            out.append(int(octal, 8))
            index += 4
        else:
            out.append(field[index])
            index += 1
    return bytes(out)
