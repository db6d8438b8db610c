"""Known trees the tests write into layers, and known changes with their ``docker diff``.

Content is seeded random bytes, so every run writes the same files.
"""

from __future__ import annotations

import os
import random
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from graphdriver import Change, ChangeKind

from .helpers import (
    can_chown,
    can_mknod,
    make_dir,
    post_order,
    set_mtime,
    supports_user_xattrs,
    write,
)

A, C, D = ChangeKind.ADD, ChangeKind.MODIFY, ChangeKind.DELETE

# Nanosecond mtimes with distinct sub-second parts: a copy that rounds to microseconds or
# seconds shows up as a difference.
RICH_MTIME_NS = 1_600_000_000_123_456_789
# Whole seconds for trees that travel through a tar: layer tars (like moby's) need only keep
# seconds, so content that should round-trip exactly uses them.
BASE_MTIME_S = 1_500_000_000
UPPER_MTIME_S = 1_700_000_000


@dataclass(frozen=True)
class Abilities:
    """What this host lets a test put in a tree."""

    owners: bool
    xattrs: bool
    devices: bool

    @classmethod
    def probe(cls, root: Path, *, devices: bool = True) -> Abilities:
        """What can be made under ``root`` (a mounted layer), found by trying."""
        return cls(
            owners=can_chown(root),
            xattrs=supports_user_xattrs(root),
            devices=devices and can_mknod(root),
        )


@dataclass(frozen=True)
class UpperChanges:
    """What :func:`change_upper` did: ``docker diff`` of it, sorted, and its content bytes."""

    changes: list[Change]
    size: int


def build_rich_tree(root: Path, seed: int, can: Abilities) -> None:
    """A tree with every kind of entry and attribute a child layer must show unchanged."""
    rng = random.Random(seed)

    def payload() -> bytes:
        return rng.randbytes(rng.randint(1, 9000))

    if can.owners:
        # chown clears setuid/setgid, so owners go first and modes after.
        write(root / "owned-setuid", payload())
        os.chown(root / "owned-setuid", 1, 2)
        os.chmod(root / "owned-setuid", 0o4750)
        make_dir(root / "owned-dir")
        os.chown(root / "owned-dir", 3, 4)
        os.chmod(root / "owned-dir", 0o2770)
        os.symlink("owned-setuid", root / "owned-link")
        os.lchown(root / "owned-link", 5, 6)
        write(root / "owned-dir" / "inside", payload(), 0o640)
        os.chown(root / "owned-dir" / "inside", 7, 8)

    write(root / "file-0644", payload(), 0o644)
    write(root / "file-0600", payload(), 0o600)
    write(root / "exec-0755", payload(), 0o755)
    write(root / "setuid-04755", payload(), 0o4755)
    write(root / "setgid-02755", payload(), 0o2755)
    write(root / "read-only-0444", payload(), 0o444)
    write(root / "empty-file", b"", 0o644)
    write(root / "big-file", rng.randbytes(300_000), 0o644)

    make_dir(root / "sticky-01777", 0o1777)
    write(root / "sticky-01777" / "inner", payload(), 0o666)
    make_dir(root / "private-0700", 0o700)
    write(root / "private-0700" / "secret", payload(), 0o600)
    make_dir(root / "empty-dir", 0o755)
    make_dir(root / "deep" / "a" / "b" / "c", 0o755)
    os.chmod(root / "deep" / "a", 0o750)
    os.chmod(root / "deep" / "a" / "b" / "c", 0o711)
    write(root / "deep" / "a" / "b" / "c" / "leaf", payload(), 0o644)

    os.symlink("file-0644", root / "link-relative")
    os.symlink("/file-0644", root / "link-absolute")
    os.symlink("no/such/target", root / "link-dangling")
    os.symlink("deep/a", root / "link-to-dir")
    os.symlink("../../exec-0755", root / "deep" / "a" / "link-up")

    write(root / "hard-1", payload(), 0o640)
    os.link(root / "hard-1", root / "hard-2")
    os.link(root / "hard-1", root / "deep" / "a" / "hard-3")

    os.mkfifo(root / "fifo")
    os.chmod(root / "fifo", 0o620)

    if can.xattrs:
        os.setxattr(root / "file-0644", "user.pydock.text", b"hello")
        os.setxattr(root / "file-0644", "user.pydock.binary", bytes(range(32)))
        os.setxattr(root / "deep" / "a", "user.pydock.dir", b"on a directory")
        os.setxattr(root / "hard-1", "user.pydock.linked", b"shared by three names")

    if can.devices:
        os.mknod(root / "char-null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
        os.mknod(root / "block-loop", stat.S_IFBLK | 0o660, os.makedev(7, 0))

    for i, entry in enumerate(post_order(root)):
        set_mtime(entry, RICH_MTIME_NS + i * 1_000_000_007)


# -- the change scenario ----------------------------------------------------------------------


def populate_base(root: Path, seed: int) -> None:
    """The lower layer of the change scenario."""
    rng = random.Random(seed)
    etc = make_dir(root / "etc")
    write(etc / "keep", b"unchanged\n")
    write(etc / "modify", rng.randbytes(100))
    write(etc / "same-size", rng.randbytes(64))
    write(etc / "chmod", rng.randbytes(50), 0o644)
    write(etc / "chown", rng.randbytes(50), 0o644)
    write(etc / "remove", rng.randbytes(70))
    write(etc / "file-to-dir", rng.randbytes(20))
    write(root / "rmdir" / "a", rng.randbytes(10))
    write(root / "rmdir" / "sub" / "b", rng.randbytes(10))
    write(root / "dir-to-link" / "one", rng.randbytes(10))
    write(root / "dir-to-link" / "two" / "three", rng.randbytes(10))
    write(root / "recreate-file", rng.randbytes(40))
    write(root / "recreate-dir" / "x", rng.randbytes(30))
    write(root / "recreate-dir" / "y", rng.randbytes(30))
    write(root / "recreate-dir" / "sub" / "z", rng.randbytes(30))
    write(root / "tree" / "a" / "b" / "c" / "leaf", rng.randbytes(30))
    write(root / "tree" / "a" / "other", rng.randbytes(30))
    write(root / "links" / "orig", rng.randbytes(80))
    os.link(root / "links" / "orig", root / "links" / "orig-link")
    for entry in root.rglob("*"):
        if entry.is_dir() and not entry.is_symlink():
            os.chmod(entry, 0o755)
    for i, entry in enumerate(post_order(root)):
        set_mtime(entry, (BASE_MTIME_S + i) * 1_000_000_000)


def change_upper(root: Path, seed: int, can: Abilities) -> UpperChanges:
    """Change a layer made on :func:`populate_base`; return what a diff of it must hold.

    Every added or changed entry ends with a whole-second mtime, so a layer rebuilt from the
    diff must match exactly.
    """
    rng = random.Random(seed)
    expected: list[Change] = []

    def note(kind: ChangeKind, *paths: str) -> None:
        expected.extend(Change(p, kind) for p in paths)

    # A new subtree: every entry in it is added.
    make_dir(root / "new" / "dir")
    os.chmod(root / "new", 0o755)
    write(root / "new" / "file", rng.randbytes(5000))
    write(root / "new" / "dir" / "deep", rng.randbytes(300), 0o600)
    os.link(root / "new" / "file", root / "new" / "hard")
    os.symlink("../etc/keep", root / "new" / "sym")
    os.mkfifo(root / "new" / "fifo")
    os.chmod(root / "new" / "fifo", 0o644)
    if can.xattrs:
        os.setxattr(root / "new" / "file", "user.pydock.origin", b"upper")
    note(A, "/new", "/new/dir", "/new/dir/deep", "/new/fifo", "/new/file", "/new/hard")
    note(A, "/new/sym")
    # Second names of hard links: their content is counted once, under the first name.
    links = {"/new/hard"}

    etc = root / "etc"
    write(etc / "modify", rng.randbytes(333))
    os.link(etc / "modify", etc / "modify-link")
    same = etc / "same-size"
    write(same, rng.randbytes(same.stat().st_size))
    os.chmod(etc / "chmod", 0o600)
    note(C, "/etc", "/etc/modify", "/etc/same-size", "/etc/chmod")
    note(A, "/etc/modify-link")
    links.add("/etc/modify-link")
    if can.owners:
        os.chown(etc / "chown", 1, 2)
        note(C, "/etc/chown")
    (etc / "remove").unlink()
    note(D, "/etc/remove")
    # A file replaced by a directory: the directory is a change, its content is new.
    (etc / "file-to-dir").unlink()
    write(etc / "file-to-dir" / "inner", rng.randbytes(25))
    os.chmod(etc / "file-to-dir", 0o755)
    note(C, "/etc/file-to-dir")
    note(A, "/etc/file-to-dir/inner")

    # A deleted subtree is reported at its top only.
    shutil.rmtree(root / "rmdir")
    note(D, "/rmdir")
    # A directory replaced by a symlink: the old children are not listed.
    shutil.rmtree(root / "dir-to-link")
    os.symlink("etc", root / "dir-to-link")
    note(C, "/dir-to-link")

    # Deleted and recreated in the same layer: a change, not a delete and an add.
    (root / "recreate-file").unlink()
    write(root / "recreate-file", rng.randbytes(41))
    note(C, "/recreate-file")
    shutil.rmtree(root / "recreate-dir")
    make_dir(root / "recreate-dir")
    write(root / "recreate-dir" / "x", rng.randbytes(31))
    write(root / "recreate-dir" / "new", rng.randbytes(32))
    note(C, "/recreate-dir", "/recreate-dir/x")
    note(A, "/recreate-dir/new")
    note(D, "/recreate-dir/sub", "/recreate-dir/y")

    # A change deep down marks every directory above it as changed.
    write(root / "tree" / "a" / "b" / "c" / "leaf", rng.randbytes(30))
    note(C, "/tree", "/tree/a", "/tree/a/b", "/tree/a/b/c", "/tree/a/b/c/leaf")

    touched = sorted((c.path for c in expected if c.kind != D), key=lambda p: (-p.count("/"), p))
    for i, rel in enumerate(touched):
        set_mtime(root / rel.lstrip("/"), (UPPER_MTIME_S + i) * 1_000_000_000)
    return UpperChanges(sorted(expected), _content_size(root, expected, links))


def _content_size(root: Path, changes: list[Change], links: set[str]) -> int:
    # Hard links are known by name, not by inode: overlayfs may show two names of one
    # copied-up file with different st_ino.
    total = 0
    for change in changes:
        if change.kind == D or change.path in links:
            continue
        st = os.lstat(root / change.path.lstrip("/"))
        if stat.S_ISREG(st.st_mode):
            total += st.st_size
    return total
