"""The userspace overlay against kernel overlayfs: the same random operations on the same layers
must give the same results, the same trees, and upper dirs each can read back."""

from __future__ import annotations

import errno
import hashlib
import os
import random
import shutil
import stat
import subprocess
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from .fusemount import missing_fuse, mounted

_missing = missing_fuse()
pytestmark = [
    pytest.mark.fuse,
    pytest.mark.overlay,
    pytest.mark.root,
    pytest.mark.skipif(_missing is not None, reason=_missing or ""),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 for kernel overlayfs"),
]
NAMES = ["a", "b", "c", "d", "e"]
# Kernel overlayfs without redirects, index or metacopy: the semantics the fuse filesystem has.
KERNEL_OPTIONS = "redirect_dir=off,index=off,metacopy=off,xino=off"
OPERATIONS = [
    "append", "create", "truncate", "chmod", "unlink", "rmdir", "mkdir", "rename", "symlink",
    "link", "xattr", "rmtree", "read",
]  # fmt: skip


def build(layer: Path, depth: int, rng: random.Random, *, bottom: bool) -> None:
    layer.mkdir(parents=True, exist_ok=True)
    for name in NAMES:
        roll, path = rng.random(), layer / name
        if roll < 0.3:
            path.write_bytes(rng.randbytes(rng.randint(0, 100)))
        elif roll < 0.5 and depth < 2:
            build(path, depth + 1, rng, bottom=bottom)
        elif roll < 0.55:
            os.symlink(f"target-{name}", path)
        elif roll < 0.6 and depth == 0 and not bottom:
            # Only in merged dirs: the kernel lists whiteouts of directories that do not merge.
            os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))
    if depth > 0 and rng.random() < 0.15:
        os.setxattr(layer, "trusted.overlay.opaque", b"y")


def visible(root: Path) -> list[str]:
    found = []
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if not (stat.S_ISCHR(st.st_mode) and st.st_rdev == 0):
                found.append(os.path.relpath(path, root))
    return sorted(found)


def apply(op: str, root: Path, a: str, b: str, data: bytes) -> str:
    """Run one operation; returns ``ok``, a digest, or the errno name."""
    pa, pb = root / a, root / b
    actions: dict[str, Callable[[], object]] = {
        "append": lambda: _append(pa, data),
        "create": lambda: pa.write_bytes(data),
        "truncate": lambda: os.truncate(pa, len(data) // 2),
        "chmod": lambda: os.chmod(pa, 0o600 + len(data) % 8),
        "unlink": lambda: os.unlink(pa),
        "rmdir": lambda: os.rmdir(pa),
        "mkdir": lambda: os.mkdir(pa),
        "rename": lambda: os.rename(pa, pb),
        "symlink": lambda: os.symlink(f"s-{b}", pa),
        "link": lambda: os.link(pa, pb),
        "xattr": lambda: os.setxattr(pa, "user.t", data[:4] or b"0"),
        "rmtree": lambda: shutil.rmtree(pa),
    }
    try:
        if op == "read":
            return hashlib.sha256(pa.read_bytes()).hexdigest()
        actions[op]()
    except OSError as exc:
        return errno.errorcode.get(exc.errno or 0, str(exc.errno))
    return "ok"


def _append(path: Path, data: bytes) -> None:
    with path.open("ab") as out:
        out.write(data)


def snapshot(root: Path) -> tuple[dict[str, list[object]], list[list[str]]]:
    entries: dict[str, list[object]] = {}
    inodes: dict[int, list[str]] = {}
    for rel in visible(root):
        path = root / rel
        st = os.lstat(path)
        item: list[object] = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode)]
        if stat.S_ISREG(st.st_mode):
            item += [hashlib.sha256(path.read_bytes()).hexdigest(), st.st_nlink]
            inodes.setdefault(st.st_ino, []).append(rel)
        if stat.S_ISLNK(st.st_mode):
            item.append(os.readlink(path))
        else:
            item.append(sorted(x for x in os.listxattr(path) if x.startswith("user.")))
        entries[rel] = item
    return entries, sorted(sorted(group) for group in inodes.values() if len(group) > 1)


@contextmanager
def kernel_overlay(lowers: list[Path], upper: Path, work: Path, mnt: Path) -> Iterator[Path]:
    options = f"lowerdir={':'.join(map(str, lowers))},upperdir={upper},workdir={work}"
    done = subprocess.run(
        ["mount", "-t", "overlay", "overlay", "-o", f"{options},{KERNEL_OPTIONS}", str(mnt)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    if done.returncode != 0:
        pytest.skip(f"kernel overlayfs cannot mount here: {done.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], timeout=30)


@pytest.mark.parametrize("seed", [11, 12])
def test_same_results_as_kernel_overlayfs(tmp_path: Path, seed: int) -> None:
    rng = random.Random(seed)
    lowers = [tmp_path / f"l{i}" for i in range(3)]
    for index, lower in enumerate(lowers):
        build(lower, 0, rng, bottom=index == len(lowers) - 1)
    dirs = {n: tmp_path / n for n in ("ku", "kw", "km", "pu", "pw", "pm")}
    for path in dirs.values():
        path.mkdir()
    with (
        kernel_overlay(lowers, dirs["ku"], dirs["kw"], dirs["km"]) as kernel,
        mounted(lowers, dirs["pu"], dirs["pw"], dirs["pm"]) as ours,
    ):
        for step in range(150):
            paths = sorted(set(visible(kernel)) | set(visible(ours)))
            candidates = paths + NAMES + [f"{p}/{n}" for p in paths for n in NAMES[:2]]
            op = rng.choice(OPERATIONS)
            a, b, data = rng.choice(candidates), rng.choice(candidates), rng.randbytes(20)
            expected = apply(op, kernel, a, b, data)
            assert apply(op, ours, a, b, data) == expected, (step, op, a, b)
        assert snapshot(ours) == snapshot(kernel)
    # The upper dir the fuse filesystem wrote reads back the same through kernel overlayfs.
    with kernel_overlay(lowers, dirs["ku"], dirs["kw"], dirs["km"]) as kernel:
        expected_tree = snapshot(kernel)
    with kernel_overlay(lowers, dirs["pu"], dirs["pw"], dirs["pm"]) as again:
        assert snapshot(again) == expected_tree
