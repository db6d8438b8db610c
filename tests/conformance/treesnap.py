"""Snapshots of a directory tree, precise enough to say two layers look the same.

A snapshot lists every entry under a root with what a container would see of it: type, mode
bits, owner, size, mtime, symlink target, device numbers, xattrs, a content digest and which
entries share an inode. Comparing two snapshots gives a readable list of differences.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections import defaultdict
from dataclasses import dataclass, fields, replace
from pathlib import Path

# Only these xattrs are compared: user.* is what tests set, security.capability is the one a
# layer carries in practice. Others (security.selinux, trusted.overlay.*) belong to the host.
_XATTR_PREFIXES = ("user.", "security.capability")


@dataclass(frozen=True)
class Entry:
    """What a tree shows of one path (``/`` is the root itself)."""

    path: str
    kind: str
    mode: int
    uid: int
    gid: int
    size: int | None
    mtime_ns: int | None
    target: str | None
    rdev: tuple[int, int] | None
    xattrs: tuple[tuple[str, bytes], ...]
    digest: str | None
    link_group: str | None

    def describe(self) -> str:
        parts = [f"{self.kind} {self.mode:04o} {self.uid}:{self.gid}"]
        if self.size is not None:
            parts.append(f"size={self.size}")
        if self.mtime_ns is not None:
            parts.append(f"mtime_ns={self.mtime_ns}")
        if self.target is not None:
            parts.append(f"-> {self.target}")
        if self.rdev is not None:
            parts.append(f"rdev={self.rdev[0]}:{self.rdev[1]}")
        if self.xattrs:
            parts.append(f"xattrs={dict(self.xattrs)}")
        if self.link_group is not None:
            parts.append(f"linked-with={self.link_group}")
        return " ".join(parts)


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISDIR, "dir"),
        (stat.S_ISREG, "file"),
        (stat.S_ISLNK, "symlink"),
        (stat.S_ISFIFO, "fifo"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return f"unknown({stat.S_IFMT(mode):o})"


def _xattrs(path: Path) -> tuple[tuple[str, bytes], ...]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in (errno.ENOTSUP, errno.EPERM):
            return ()
        raise
    wanted = sorted(n for n in names if n.startswith(_XATTR_PREFIXES))
    return tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in wanted)


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def snapshot(root: Path, *, root_mtime: bool = False) -> list[Entry]:
    """Every entry under ``root`` (root included), sorted by path.

    The root's own mtime is left out unless ``root_mtime``: a driver may give a new layer's root
    a fresh directory (overlay's upper dir), and nothing in a container depends on it.
    """
    root = Path(root)
    raw: list[tuple[str, os.stat_result, Path]] = []

    def walk(directory: Path, rel: str) -> None:
        for name in sorted(os.listdir(directory)):
            full = directory / name
            child_rel = f"{rel.rstrip('/')}/{name}"
            st = os.lstat(full)
            raw.append((child_rel, st, full))
            if stat.S_ISDIR(st.st_mode):
                walk(full, child_rel)

    raw.append(("/", os.lstat(root), root))
    walk(root, "/")

    groups: dict[tuple[int, int], list[str]] = defaultdict(list)
    for rel, st, _ in raw:
        if not stat.S_ISDIR(st.st_mode) and st.st_nlink > 1:
            groups[(st.st_dev, st.st_ino)].append(rel)

    entries = []
    for rel, st, full in raw:
        kind = _kind(st.st_mode)
        members = groups.get((st.st_dev, st.st_ino), [])
        keep_mtime = rel != "/" or root_mtime
        entries.append(
            Entry(
                path=rel,
                kind=kind,
                mode=stat.S_IMODE(st.st_mode),
                uid=st.st_uid,
                gid=st.st_gid,
                size=st.st_size if kind == "file" else None,
                mtime_ns=st.st_mtime_ns if keep_mtime else None,
                target=os.readlink(full) if kind == "symlink" else None,
                rdev=(os.major(st.st_rdev), os.minor(st.st_rdev))
                if kind in ("char", "block")
                else None,
                xattrs=_xattrs(full),
                digest=_digest(full) if kind == "file" else None,
                link_group=min(members) if len(members) > 1 else None,
            )
        )
    return sorted(entries, key=lambda e: e.path)


def differences(expected: list[Entry], actual: list[Entry], *, limit: int = 40) -> list[str]:
    """Human-readable differences between two snapshots (empty when they are equal)."""
    want = {e.path: e for e in expected}
    got = {e.path: e for e in actual}
    lines: list[str] = []
    for path in sorted(want.keys() | got.keys()):
        a, b = want.get(path), got.get(path)
        if a == b:
            continue
        if a is None:
            assert b is not None
            lines.append(f"unexpected {path}: {b.describe()}")
        elif b is None:
            lines.append(f"missing    {path}: {a.describe()}")
        else:
            for f in fields(Entry):
                va, vb = getattr(a, f.name), getattr(b, f.name)
                if va != vb:
                    lines.append(f"differs    {path}: {f.name} expected {va!r}, got {vb!r}")
    if len(lines) > limit:
        lines = [*lines[:limit], f"... and {len(lines) - limit} more"]
    return lines


def assert_same_tree(expected: list[Entry], actual: list[Entry], what: str = "tree") -> None:
    """Fail with the list of differences unless the two snapshots are equal."""
    diff = differences(expected, actual)
    if diff:
        raise AssertionError(f"{what} differs:\n  " + "\n  ".join(diff))


def paths(entries: list[Entry]) -> list[str]:
    """Paths of a snapshot, root left out."""
    return [e.path for e in entries if e.path != "/"]


def without_mtimes(entries: list[Entry]) -> list[Entry]:
    """The same snapshot with every mtime left out."""
    return [replace(e, mtime_ns=None) for e in entries]


def whole_second_mtimes(entries: list[Entry]) -> list[Entry]:
    """The same snapshot with mtimes cut to whole seconds."""
    return [
        replace(e, mtime_ns=None if e.mtime_ns is None else e.mtime_ns // 1_000_000_000)
        for e in entries
    ]
