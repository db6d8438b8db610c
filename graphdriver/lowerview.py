"""The merged, read-only view of an overlay layer's lower directories.

Used to compare an upper dir with what lies beneath it (native diff) and to unpack a layer into
its own ``diff`` dir the way the merged tree will see it (parent directories and symlinks that
only exist in lower layers).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path

from graphdriver.markers import (
    META_PREFIX,
    OPAQUE_MARKER,
    OPAQUE_XATTRS,
    WHITEOUT_PREFIX,
    is_whiteout,
)


def is_opaque(path: str) -> bool:
    """Whether directory ``path`` hides the lower layers' entries."""
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return os.path.lexists(os.path.join(path, OPAQUE_MARKER))


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None


class LowerView:
    """Read-only merged view of lower ``diff`` dirs (nearest first), honouring whiteouts."""

    def __init__(self, lowers: Sequence[Path | str]) -> None:
        self.lowers = [os.fspath(p) for p in lowers]

    def lookup(self, rel: str) -> tuple[str, os.stat_result] | None:
        """Real path and stat of ``rel`` in the merged lower view, or ``None``."""
        parts = [p for p in rel.split("/") if p]
        for layer in self.lowers:
            current = layer
            for index, part in enumerate(parts):
                path = os.path.join(current, part)
                st = _lstat(path)
                if st is None:
                    if os.path.lexists(os.path.join(current, WHITEOUT_PREFIX + part)):
                        return None
                    if index > 0 and is_opaque(current):
                        return None  # an opaque ancestor hides deeper layers
                    break  # not in this layer: look further down
                if is_whiteout(st):
                    return None
                if index == len(parts) - 1:
                    return path, st
                if not stat.S_ISDIR(st.st_mode):
                    return None  # a non-directory hides the deeper path
                current = path
        return None

    def children(self, rel: str) -> dict[str, tuple[str, os.stat_result]]:
        """Merged entries of directory ``rel`` in the lower view."""
        merged: dict[str, tuple[str, os.stat_result]] = {}
        hidden: set[str] = set()
        parts = [p for p in rel.split("/") if p]
        for layer in self.lowers:
            directory = os.path.join(layer, *parts)
            st = _lstat(directory)
            if st is None:
                continue
            if not stat.S_ISDIR(st.st_mode) or is_whiteout(st):
                break
            with os.scandir(directory) as entries:
                for entry in entries:
                    name = entry.name
                    if name.startswith(WHITEOUT_PREFIX):
                        if not name.startswith(META_PREFIX) and name != OPAQUE_MARKER:
                            hidden.add(name[len(WHITEOUT_PREFIX) :])
                        continue
                    if name in merged or name in hidden:
                        continue
                    entry_st = entry.stat(follow_symlinks=False)
                    if is_whiteout(entry_st):
                        hidden.add(name)
                        continue
                    merged[name] = (entry.path, entry_st)
            if is_opaque(directory):
                break
        return merged
