"""Host probes of the vfs driver."""

from __future__ import annotations

import os
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")


def backing_filesystem(path: Path) -> str:
    """Type of the filesystem holding ``path`` (``ext4``, ``xfs``...), or ``unknown``.

    The mount whose mount point is the longest prefix of the resolved path wins; among equal
    mount points the last one listed, which is the one on top.
    """
    target = os.path.realpath(path)
    best, best_length = "unknown", -1
    try:
        lines = MOUNTINFO.read_text().splitlines()
    except OSError:
        return best
    for line in lines:
        fields = line.split(" ")
        try:
            mount_point = _unescape(fields[4])
            fs_type = fields[fields.index("-", 6) + 1]
        except (IndexError, ValueError):
            continue
        if _is_within(target, mount_point) and len(mount_point) >= best_length:
            best, best_length = fs_type, len(mount_point)
    return best


def _is_within(path: str, directory: str) -> bool:
    """Whether ``path`` is ``directory`` or below it."""
    return directory == "/" or path == directory or path.startswith(directory + "/")


def _unescape(field: str) -> str:
    """Undo mountinfo's octal escapes (``\\040`` for a space)."""
    if "\\" not in field:
        return field
    raw = field.encode()
    out = bytearray()
    index = 0
    while index < len(raw):
        if raw[index : index + 1] == b"\\" and raw[index + 1 : index + 4].isdigit():
            out.append(int(raw[index + 1 : index + 4], 8))
            index += 4
        else:
            out.append(raw[index])
            index += 1
    return os.fsdecode(bytes(out))
