"""Resolve a path inside a root filesystem the way the container will see it.

A symlink in an image must not redirect a mount or a file read to the host: every component is
resolved in turn, an absolute link target starts again at the rootfs, and ``..`` stops at it.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from pathlib import Path

MAX_SYMLINKS = 40


def resolve_in_root(root: Path, path: str) -> Path:
    """Return ``root`` joined with ``path`` after resolving symlinks as if ``root`` were ``/``.

    Components that do not exist are kept as they are, so the result can be created afterwards.
    """
    pending = deque(part for part in path.split("/") if part not in ("", "."))
    resolved: list[str] = []
    followed = 0
    while pending:
        part = pending.popleft()
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = root.joinpath(*resolved, part)
        try:
            mode = os.lstat(candidate).st_mode
        except (FileNotFoundError, NotADirectoryError):
            resolved.append(part)
            continue
        if not stat.S_ISLNK(mode):
            resolved.append(part)
            continue
        followed += 1
        if followed > MAX_SYMLINKS:
            raise OSError(errno.ELOOP, os.strerror(errno.ELOOP), str(root.joinpath(path)))
        target = os.readlink(candidate)
        if target.startswith("/"):
            resolved.clear()
        pending.extendleft(reversed([p for p in target.split("/") if p not in ("", ".")]))
    return root.joinpath(*resolved)


def is_within(root: Path, path: Path) -> bool:
    """True when ``path`` is ``root`` or lies below it (lexically)."""
    return path == root or root in path.parents


def make_dirs_in_root(root: Path, path: str) -> Path:
    """Resolve ``path`` in ``root`` and create the directories that are missing."""
    target = resolve_in_root(root, path)
    missing: list[Path] = []
    probe = target
    while probe != root and not probe.exists():
        missing.append(probe)
        probe = probe.parent
    for directory in reversed(missing):
        # A racing symlink swap would show up here as EEXIST or a path outside the root.
        os.mkdir(directory, 0o755)
    if not target.is_dir() or resolve_in_root(root, path) != target:
        raise NotADirectoryError(errno.ENOTDIR, "not a directory inside the rootfs", str(target))
    return target


def make_file_in_root(root: Path, path: str) -> Path:
    """Resolve ``path`` in ``root`` and create it as an empty file when it is missing."""
    target = resolve_in_root(root, path)
    if not os.path.lexists(target):
        make_dirs_in_root(root, str(Path("/", target.relative_to(root)).parent))
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        os.close(fd)
    return target
