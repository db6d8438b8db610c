"""Detaching a mount without help from the driver that made it (a lazy ``umount2``)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

from graphdriver import syscalls


def detach(target: Path) -> None:
    """Lazily detach ``target``: ``umount2(MNT_DETACH)`` as root, ``fusermount3 -uz`` otherwise.

    Raises ``OSError`` when neither works.
    """
    try:
        syscalls.umount2(target, syscalls.MNT_DETACH)
        return
    except OSError as exc:
        code = exc.errno or 0
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


def mount_table() -> list[tuple[str, str]]:
    """``(mount point, filesystem type)`` of every mount of this namespace, in mountinfo order.

    Mount points are unescaped (mountinfo writes space, tab, newline and backslash as ``\\ooo``).
    """
    table = []
    with open("/proc/self/mountinfo", "rb") as info:
        for line in info:
            fields = line.rstrip(b"\n").split(b" ")
            try:
                fs_type = fields[fields.index(b"-", 6) + 1]
            except (ValueError, IndexError):
                continue
            table.append((os.fsdecode(_unescape(fields[4])), os.fsdecode(fs_type)))
    return table


def mount_points() -> set[str]:
    """Every mount point of this mount namespace."""
    return {point for point, _ in mount_table()}


def mounts_under(directory: Path | str) -> list[str]:
    """Mount points at or below ``directory`` (resolved), deepest first, to detach in order."""
    base = os.path.realpath(directory)
    found = {p for p in mount_points() if p == base or p.startswith(base.rstrip("/") + "/")}
    return sorted(found, key=lambda point: (point.count("/"), point), reverse=True)


def filesystem_type(path: Path | str) -> str:
    """Type of the filesystem holding ``path`` (``ext4``, ``xfs``...), or ``unknown``.

    The mount whose mount point is the longest prefix of the resolved path wins; among equal
    mount points the last one listed, which is the one on top.
    """
    target = os.path.realpath(path)
    best, best_length = "unknown", -1
    try:
        table = mount_table()
    except OSError:
        return best
    for point, fs_type in table:
        inside = point == "/" or target == point or target.startswith(point + "/")
        if inside and len(point) >= best_length:
            best, best_length = fs_type, len(point)
    return best


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
