"""Extended attributes of layer entries: read them, copy them, and tell overlay's own apart.

Paths are never followed: a symlink's own attributes are meant, as tar and overlay mean them.
"""

from __future__ import annotations

import os

# overlayfs keeps its bookkeeping (opaque, origin, impure, redirect) under these prefixes; it is
# never image content, so it is neither archived, compared nor copied up.
OVERLAY_PREFIXES = ("trusted.overlay.", "user.overlay.")


def read_xattrs(path: str, *, skip_overlay: bool = False) -> dict[str, bytes]:
    """Every attribute of ``path`` by name; ``{}`` where the filesystem keeps none.

    An attribute removed between listing and reading, or one this process may not read, is
    left out rather than failing the caller.
    """
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    found: dict[str, bytes] = {}
    for name in names:
        if skip_overlay and name.startswith(OVERLAY_PREFIXES):
            continue
        try:
            found[name] = os.getxattr(path, name, follow_symlinks=False)
        except OSError:
            continue
    return found


def copy_xattrs(source: str, target: str, *, best_effort: bool = False) -> None:
    """Give ``target`` every attribute of ``source`` except overlay's own.

    With ``best_effort`` an attribute the target refuses (``trusted.*`` without privilege, say)
    is skipped; otherwise the error is raised.
    """
    for name, value in read_xattrs(source, skip_overlay=True).items():
        try:
            os.setxattr(target, name, value, follow_symlinks=False)
        except OSError:
            if not best_effort:
                raise
