"""The naive differ: changes between two directory trees with ``docker diff`` semantics.

An entry is changed when its type, mode, owner, device number, xattrs or symlink target differ,
or, for non-directories, its size or nanosecond mtime. When size and mtime agree but the mtimes
carry no sub-second part (a tar or a filesystem with coarse timestamps may have hidden a
rewrite), the contents are compared by xxh3-128. Directory mtimes are ignored: a directory whose
entries changed is reported as modified through its children. A deleted subtree is reported at
its top only; every entry of an added subtree is reported.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path

import xxhash

from graphdriver.change import Change, ChangeKind
from graphdriver.xattrs import read_xattrs

_CHUNK = 1 << 20


def changes_dirs(new_root: Path | str, old_root: Path | str | None) -> list[Change]:
    """Changes that turn ``old_root`` (``None``: an empty tree) into ``new_root``, sorted."""
    new_base = os.fspath(new_root)
    old_base = os.fspath(old_root) if old_root is not None else None
    found: dict[str, ChangeKind] = {}
    stack: list[tuple[str, bool]] = [("", old_base is not None)]
    while stack:
        rel, old_is_dir = stack.pop()
        new_entries = _scan(os.path.join(new_base, rel))
        old_entries = (
            _scan(os.path.join(old_base, rel)) if old_is_dir and old_base is not None else {}
        )
        for name, new_st in new_entries.items():
            child = f"{rel}/{name}" if rel else name
            old_st = old_entries.pop(name, None)
            if old_st is None:
                found["/" + child] = ChangeKind.ADD
            elif old_base is not None and entry_differs(
                os.path.join(new_base, child), new_st, os.path.join(old_base, child), old_st
            ):
                found["/" + child] = ChangeKind.MODIFY
            if stat.S_ISDIR(new_st.st_mode):
                stack.append((child, old_st is not None and stat.S_ISDIR(old_st.st_mode)))
        for name in old_entries:
            found["/" + (f"{rel}/{name}" if rel else name)] = ChangeKind.DELETE
    return finish_changes(found)


def finish_changes(found: dict[str, ChangeKind]) -> list[Change]:
    """Mark every directory above a change as modified (as ``docker diff`` lists them), sorted."""
    for path in list(found):
        parent = path.rpartition("/")[0]
        while parent and parent not in found:
            found[parent] = ChangeKind.MODIFY
            parent = parent.rpartition("/")[0]
    return [Change(path, kind) for path, kind in sorted(found.items())]


def changes_size(root: Path | str, changes: Iterable[Change]) -> int:
    """Bytes of regular-file content among added and modified entries; hard links count once."""
    base = os.fspath(root)
    seen: set[tuple[int, int]] = set()
    total = 0
    for change in changes:
        if change.kind is ChangeKind.DELETE:
            continue
        try:
            st = os.lstat(os.path.join(base, change.path.lstrip("/")))
        except FileNotFoundError:
            continue
        if not stat.S_ISREG(st.st_mode):
            continue
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                continue
            seen.add(key)
        total += st.st_size
    return total


def _scan(directory: str) -> dict[str, os.stat_result]:
    try:
        with os.scandir(directory) as entries:
            return {e.name: e.stat(follow_symlinks=False) for e in entries}
    except (FileNotFoundError, NotADirectoryError):
        return {}


def entry_differs(new_path: str, new: os.stat_result, old_path: str, old: os.stat_result) -> bool:
    """Whether an entry changed between two trees (see the module docstring for the rules)."""
    if (new.st_mode, new.st_uid, new.st_gid, new.st_rdev) != (
        old.st_mode,
        old.st_uid,
        old.st_gid,
        old.st_rdev,
    ):
        return True
    is_dir = stat.S_ISDIR(new.st_mode)
    if not is_dir and (new.st_size != old.st_size or new.st_mtime_ns != old.st_mtime_ns):
        return True
    if stat.S_ISLNK(new.st_mode) and os.readlink(new_path) != os.readlink(old_path):
        return True
    if read_xattrs(new_path, skip_overlay=True) != read_xattrs(old_path, skip_overlay=True):
        return True
    if stat.S_ISREG(new.st_mode) and new.st_mtime_ns % 1_000_000_000 == 0 and new.st_size:
        if (new.st_dev, new.st_ino) == (old.st_dev, old.st_ino):
            return False
        return content_hash(new_path) != content_hash(old_path)
    return False


def content_hash(path: str | Path) -> str:
    """xxh3-128 of a file's content, as hex: the fast internal content check."""
    digest = xxhash.xxh3_128()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()
