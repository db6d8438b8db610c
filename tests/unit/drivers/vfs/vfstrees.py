"""Trees for the vfs tests: build a seeded tree with every kind of entry, read back every
observable attribute, and run an action as ``nobody``."""

from __future__ import annotations

import hashlib
import os
import random
import stat
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs uid 0")
NOBODY = 65534

# Modes copied by every method; reflink only where the filesystem of tmp_path has it.
PORTABLE_MODES = ["auto", "copy_file_range", "readwrite"]

EntryState = dict[str, Any]


def tree_state(root: Path) -> dict[str, EntryState]:
    """Everything ``cp -a`` keeps, per path relative to ``root`` (atime aside: reads move it)."""
    state: dict[str, EntryState] = {}
    first_link: dict[tuple[int, int], str] = {}
    stack = [""]
    while stack:
        rel = stack.pop()
        path = root / rel if rel else root
        st = os.lstat(path)
        entry: EntryState = {
            "type": stat.S_IFMT(st.st_mode),
            "mode": stat.S_IMODE(st.st_mode),
            "owner": (st.st_uid, st.st_gid),
            "mtime_ns": st.st_mtime_ns,
            "xattrs": {
                key: os.getxattr(path, key, follow_symlinks=False)
                for key in sorted(os.listxattr(path, follow_symlinks=False))
            },
        }
        if stat.S_ISDIR(st.st_mode):
            stack.extend(f"{rel}/{name}" if rel else name for name in sorted(os.listdir(path)))
        else:
            # A hard link group is named by its first member in walk order.
            entry["link"] = first_link.setdefault((st.st_ino, st.st_dev), rel)
            entry["nlink"] = st.st_nlink
        if stat.S_ISREG(st.st_mode):
            entry["size"] = st.st_size
            entry["sha256"] = hashlib.sha256(path.read_bytes()).hexdigest()
        elif stat.S_ISLNK(st.st_mode):
            entry["target"] = os.readlink(path)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            entry["rdev"] = st.st_rdev
        state[rel] = entry
    return state


def walk(root: Path) -> list[tuple[Path, bool]]:
    """Every path under ``root`` (and ``root``) with whether it is a real directory."""
    found, stack = [], [root]
    while stack:
        path = stack.pop()
        is_dir = stat.S_ISDIR(os.lstat(path).st_mode)
        found.append((path, is_dir))
        if is_dir:
            stack.extend(path / name for name in os.listdir(path))
    return found


def posix_acl(*named: tuple[int, int, int]) -> bytes:
    """A POSIX ACL xattr value: owner rwx, group r-x, other r-x, mask rwx and ``named``
    (tag, perm, id) entries, in the kernel's little-endian layout (version 2)."""
    undefined = 0xFFFFFFFF
    entries = sorted([(0x01, 0o7, undefined), (0x04, 0o5, undefined), *named])
    entries += [(0x10, 0o7, undefined), (0x20, 0o5, undefined)]
    return struct.pack("<I", 2) + b"".join(struct.pack("<HHI", *entry) for entry in entries)


def set_times(root: Path, rng: random.Random) -> None:
    """Give every entry a random nanosecond mtime; directories last, deepest first."""
    entries = sorted(walk(root), key=lambda item: (item[1], -len(item[0].parts)))
    for path, _ in entries:
        stamp = rng.randrange(10**18, 2 * 10**18)
        os.utime(path, ns=(stamp, stamp + rng.randrange(10**9)), follow_symlinks=False)


def build_tree(root: Path, rng: random.Random, *, owners: bool = False) -> None:
    """A seeded tree with every kind of entry and attribute an unprivileged user can make.

    With ``owners`` (root only) entries also get foreign owners and a ``trusted.*`` xattr.
    """
    root.mkdir()
    dirs = [root]
    for index in range(25):
        sub = rng.choice(dirs) / f"dir{index}"
        sub.mkdir()
        dirs.append(sub)
    files = []
    for index in range(120):
        path = rng.choice(dirs) / f"file{index}.bin"
        path.write_bytes(rng.randbytes(rng.choice((0, 1, 511, 4096, 70_000, 300_000))))
        files.append(path)
    special = {
        files[0]: 0o4755,  # setuid
        files[1]: 0o2755,  # setgid
        files[2]: 0o6711,
        files[3]: 0o000,
        files[4]: 0o444,
        dirs[1]: 0o1777,  # sticky
        dirs[2]: 0o2775,
    }
    for path in files[5:]:
        special[path] = rng.choice((0o644, 0o600, 0o755, 0o640, 0o700))
    os.link(files[5], dirs[3] / "hardlink-a")
    os.link(files[5], dirs[4] / "hardlink-b")
    os.link(files[6], root / "hardlink-c")
    (root / "rel-link").symlink_to("dir0/../file7.bin")
    (root / "abs-link").symlink_to("/etc/passwd")
    (root / "dangling").symlink_to("nowhere/at/all")
    (dirs[5] / "dir-link").symlink_to("..")
    os.link(root / "rel-link", root / "linked-symlink", follow_symlinks=False)
    os.mkfifo(dirs[6] / "fifo", 0o640)
    os.mknod(dirs[6] / "socket", stat.S_IFSOCK | 0o600)
    (dirs[10] / "before-acl").write_bytes(b"has no ACL of its own")
    os.setxattr(dirs[10], "system.posix_acl_default", posix_acl((0x02, 0o7, 4321)))
    os.setxattr(files[8], "user.digest", rng.randbytes(40))
    os.setxattr(files[8], "user.empty", b"")
    os.setxattr(dirs[7], "user.dir", b"value")
    os.setxattr(root, "user.root", b"top")
    readonly = dirs[8]
    (readonly / "inside").write_bytes(b"under a read-only directory")
    special[readonly] = 0o555
    if owners:
        for index, path in enumerate([*files[:12], dirs[9], dirs[2], root / "dangling"]):
            os.chown(path, 1000 + index, 2000 + index, follow_symlinks=False)
        os.setxattr(files[9], "trusted.pydock", b"only root sees this")
    for path, mode in special.items():
        os.chmod(path, mode)  # after chown, which clears setuid and setgid
    set_times(root, rng)


def as_nobody(action: Callable[[], object]) -> tuple[int, str]:
    """Run ``action`` in a forked child as uid/gid 65534; its exit status and message.

    Status 0 means it returned; 3 means it raised, and the message is ``errno message``.
    """
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        status = 0
        try:
            os.close(read_end)
            os.setgroups([])
            os.setgid(NOBODY)
            os.setuid(NOBODY)
            action()
        except BaseException as exc:
            os.write(write_end, f"{getattr(exc, 'errno', None)} {exc}".encode())
            status = 3
        finally:
            os._exit(status)
    os.close(write_end)
    with os.fdopen(read_end, "rb") as pipe:
        message = pipe.read().decode()
    return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]), message
