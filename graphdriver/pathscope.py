"""Resolve archive names and link targets strictly inside a layer root.

Absolute names and absolute symlink targets are taken relative to the root, as a container sees
them. A ``..`` that would climb above the root, directly or through a chain of symlinks (also
links left by parent layers), raises ``BreakoutError`` instead of being clamped, so a hostile
layer is refused rather than silently rewritten.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable

from graphdriver.errors import BreakoutError

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


def symlink_escapes(link_parts: list[str], target: str) -> bool:
    """Whether symlink at ``link_parts`` with ``target`` climbs above the root when followed."""
    if target.startswith("/"):
        return False
    depth = len(link_parts) - 1
    for part in target.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            depth -= 1
            if depth < 0:
                return True
        else:
            depth += 1
    return False


class Resolver:
    """Maps component lists to real paths under ``root`` without leaving it.

    Parent directories are resolved component by component with ``lstat``; a symlink met on the
    way is followed inside the root. Results are cached per directory; ``forget`` drops the
    cache when the tree changes shape (a directory replaced, a symlink created).
    """

    def __init__(self, root: str) -> None:
        self.root = root
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
            except FileNotFoundError:
                if not create:
                    raise
                if on_create is not None:
                    on_create(path)
                os.mkdir(path, 0o755)
                resolved.append(part)
                continue
            if stat.S_ISLNK(st.st_mode):
                hops += 1
                if hops > MAX_SYMLINK_HOPS:
                    raise BreakoutError(f"path {name!r}: too many levels of symbolic links")
                target = os.readlink(path)
                if target.startswith("/"):
                    resolved = []
                pending.extend(reversed(target.split("/")))
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(20, "not a directory", path)
            resolved.append(part)
        return os.path.join(self.root, *resolved), tuple(resolved)
