"""Resolve archive names and link targets strictly inside a layer root.

Absolute names and absolute symlink targets are taken relative to the root, as a container sees
them. A ``..`` that would climb above the root, directly or through a chain of symlinks (also
links left by parent layers), raises ``BreakoutError`` instead of being clamped, so a hostile
layer is refused rather than silently rewritten. A symlink's own target is data and is stored
as written, as Docker stores it: ``a/b -> ../../../etc`` is refused only when a later name is
resolved through it.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from typing import Protocol

from graphdriver.errors import BreakoutError
from graphdriver.xattrs import copy_xattrs


class Lower(Protocol):
    """What lies beneath the root when it is an overlay upper dir (see ``LowerView``)."""

    def lookup(self, rel: str) -> tuple[str, os.stat_result] | None: ...


MAX_SYMLINK_HOPS = 40


def clean_name(name: str) -> list[str]:
    """Split an archive name into components inside the root; ``..`` past the root raises."""
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise BreakoutError(f"archive entry {name!r} leads outside the layer root")
            parts.pop()
        else:
            parts.append(part)
    return parts


class Resolver:
    """Maps component lists to real paths under ``root`` without leaving it.

    Parent directories are resolved component by component with ``lstat``; a symlink met on the
    way is followed inside the root. Results are cached per directory; ``forget`` drops the
    cache when the tree changes shape (a directory replaced, a symlink created).
    """

    def __init__(self, root: str, lower: Lower | None = None) -> None:
        self.root = root
        self.lower = lower
        self._dirs: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {(): (root, ())}

    def forget(self) -> None:
        self._dirs = {(): (self.root, ())}

    def resolve_dir(
        self,
        parts: list[str],
        *,
        create: bool = False,
        on_create: Callable[[str], None] | None = None,
    ) -> tuple[str, tuple[str, ...]]:
        """Real path and in-root components of directory ``parts`` (following symlinks).

        With ``create``, missing directories are made (mode 0755) and reported to ``on_create``.
        """
        key = tuple(parts)
        cached = self._dirs.get(key)
        if cached is not None:
            return cached
        result = self._walk(list(parts), create, on_create, name="/".join(parts))
        self._dirs[key] = result
        return result

    def _walk(
        self, pending: list[str], create: bool, on_create: Callable[[str], None] | None, name: str
    ) -> tuple[str, tuple[str, ...]]:
        resolved: list[str] = []
        hops = 0
        pending.reverse()
        while pending:
            part = pending.pop()
            if part in ("", "."):
                continue
            if part == "..":
                if not resolved:
                    raise BreakoutError(f"path {name!r} leads outside the layer root")
                resolved.pop()
                continue
            path = os.path.join(self.root, *resolved, part)
            try:
                st = os.lstat(path)
                link_path = path
            except FileNotFoundError:
                below = self.lower.lookup("/".join([*resolved, part])) if self.lower else None
                if below is not None and stat.S_ISLNK(below[1].st_mode):
                    st, link_path = below[1], below[0]  # a parent layer's symlink: follow it
                else:
                    if not create:
                        raise
                    if on_create is not None:
                        on_create(path)
                    os.mkdir(path, 0o755)
                    if below is not None and stat.S_ISDIR(below[1].st_mode):
                        _copy_dir_meta(below[0], below[1], path)
                    resolved.append(part)
                    continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise BreakoutError(f"path {name!r}: too many levels of symbolic links")
                target = os.readlink(link_path)
                if target.startswith("/"):
                    resolved = []
                pending.extend(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(20, "not a directory", path)
            resolved.append(part)
        return os.path.join(self.root, *resolved), tuple(resolved)


def _copy_dir_meta(source: str, st: os.stat_result, target: str) -> None:
    """Give a directory made in an upper dir the owner, mode and xattrs of the lower one it
    covers, so the merged view does not change (as an overlay copy-up would)."""
    os.lchown(target, st.st_uid, st.st_gid)
    os.chmod(target, stat.S_IMODE(st.st_mode))
    copy_xattrs(source, target, best_effort=True)
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)
