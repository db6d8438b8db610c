"""Native diff of the overlay layout: read a layer's changes from its ``diff`` dir directly.

The upper directory holds exactly what changed, plus whiteouts and opaque markers, so there is no
need to mount and compare two trees. The result is the same list the naive differ gives for the
mounted trees: entries are compared with the lower layers' merged view by the same rules, and
copied-up directories that did not change are left out.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from graphdriver import archive
from graphdriver.change import Change, ChangeKind
from graphdriver.changes import changes_size, entry_differs, finish_changes
from graphdriver.lowerview import LowerView, is_opaque
from graphdriver.markers import META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX, is_whiteout


def overlay_changes(upper: Path | str, lowers: Sequence[Path | str]) -> list[Change]:
    """Changes recorded in ``upper`` relative to the merged ``lowers``, docker-diff style."""
    upper_base = os.fspath(upper)
    view = LowerView(lowers)
    found: dict[str, ChangeKind] = {}
    stack: list[tuple[str, bool]] = [("", True)]  # (dir, whether the lower view has it)
    while stack:
        rel, in_lower = stack.pop()
        directory = os.path.join(upper_base, rel)
        below = view.children(rel) if in_lower else {}
        with os.scandir(directory) as entries:
            listing = [(e.name, e.stat(follow_symlinks=False)) for e in entries]
        present = set()
        for name, st in listing:
            if name.startswith(WHITEOUT_PREFIX):
                if name.startswith(META_PREFIX) or name == OPAQUE_MARKER:
                    continue
                name, is_marker = name[len(WHITEOUT_PREFIX) :], True
            else:
                is_marker = is_whiteout(st)
            child = f"{rel}/{name}" if rel else name
            lower = below.get(name)
            if is_marker:
                if lower is not None:
                    found["/" + child] = ChangeKind.DELETE
                continue
            present.add(name)
            path = os.path.join(upper_base, child)
            if lower is None:
                found["/" + child] = ChangeKind.ADD
            elif entry_differs(path, st, lower[0], lower[1]):
                found["/" + child] = ChangeKind.MODIFY
            if stat.S_ISDIR(st.st_mode):
                stack.append((child, lower is not None and stat.S_ISDIR(lower[1].st_mode)))
        if below and is_opaque(directory):
            for name in below.keys() - present:
                found["/" + (f"{rel}/{name}" if rel else name)] = ChangeKind.DELETE
    return finish_changes(found)


def export_overlay_diff(upper: Path | str, lowers: Sequence[Path | str], out: BinaryIO) -> int:
    """Write the layer tar of ``upper``'s changes to ``out``; returns the content bytes."""
    return archive.export_changes(upper, overlay_changes(upper, lowers), out)


def overlay_diff_size(upper: Path | str, lowers: Sequence[Path | str]) -> int:
    """Bytes of regular-file content among the changes in ``upper``."""
    return changes_size(upper, overlay_changes(upper, lowers))
