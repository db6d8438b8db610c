"""Tests of ``drivers.vfs.copy``: trees copied on the real filesystem, compared entry by entry."""

from __future__ import annotations

import errno
import os
import random
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.vfs.copy import METHODS, CopyError, copy_tree, probe_method
from drivers.vfs.fs import remove_tree

from .vfstrees import (
    NOBODY,
    PORTABLE_MODES,
    as_nobody,
    build_tree,
    needs_root,
    set_times,
    tree_state,
    walk,
)


@pytest.fixture
def rng() -> random.Random:
    return random.Random(20240611)


@pytest.mark.parametrize("mode", PORTABLE_MODES)
def test_copy_keeps_every_entry_and_attribute(
    tmp_path: Path, rng: random.Random, mode: str
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    build_tree(src, rng)
    before = tree_state(src)

    used = copy_tree(src, dst, mode=mode)

    assert tree_state(dst) == before
    assert tree_state(src) == before
    assert used in METHODS
    if mode != "auto":
        assert used == mode


@pytest.mark.root
@needs_root
def test_copy_keeps_foreign_owners_setuid_and_trusted_xattrs(
    tmp_path: Path, rng: random.Random
) -> None:
    src, dst = tmp_path / "src", tmp_path / "dst"
    build_tree(src, rng, owners=True)
    before = tree_state(src)

    copy_tree(src, dst)

    after = tree_state(dst)
    assert after == before
    # The tree really holds what this test is about.
    assert any(e["mode"] & stat.S_ISUID and e["owner"] != (0, 0) for e in after.values())
    assert any("trusted.pydock" in e["xattrs"] for e in after.values())


def test_copy_keeps_hard_links_as_links(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "one").write_bytes(b"shared content")
    os.link(src / "one", src / "a" / "two")
    os.link(src / "one", src / "three")
    (src / "single").write_bytes(b"shared content")

    copy_tree(src, tmp_path / "dst")

    dst = tmp_path / "dst"
    inodes = {os.lstat(dst / rel).st_ino for rel in ("one", "a/two", "three")}
    assert len(inodes) == 1
    assert os.lstat(dst / "one").st_nlink == 3
    assert os.lstat(dst / "single").st_ino not in inodes
    assert os.lstat(dst / "one").st_ino != os.lstat(src / "one").st_ino


def make_sparse(path: Path, rng: random.Random) -> bytes:
    """A 64 MiB file with two 8 KiB data regions, ending in a hole; returns its content."""
    size = 64 << 20
    with open(path, "wb") as out:
        out.truncate(size)
        for offset in (1 << 20, 40 << 20):
            out.seek(offset)
            out.write(rng.randbytes(8192))
    content = path.read_bytes()
    assert os.stat(path).st_blocks * 512 < (1 << 20)
    return content


def copy_modes_here(directory: Path) -> list[str]:
    """The modes that work on the filesystem of ``directory``."""
    return PORTABLE_MODES + (["reflink"] if probe_method(directory) == "reflink" else [])


def test_copy_keeps_sparse_files_sparse(tmp_path: Path, rng: random.Random) -> None:
    src = tmp_path / "src"
    src.mkdir()
    content = make_sparse(src / "sparse", rng)
    for mode in copy_modes_here(tmp_path):
        dst = tmp_path / f"dst-{mode}"
        copy_tree(src, dst, mode=mode)
        copied = os.stat(dst / "sparse")
        assert copied.st_size == 64 << 20, mode
        assert copied.st_blocks * 512 < (1 << 20), mode
        assert (dst / "sparse").read_bytes() == content, mode


def test_copy_of_file_without_holes_allocates_it_fully(tmp_path: Path, rng: random.Random) -> None:
    src = tmp_path / "src"
    src.mkdir()
    data = rng.randbytes(3 << 20)
    (src / "dense").write_bytes(data)
    for mode in PORTABLE_MODES:
        dst = tmp_path / f"dst-{mode}"
        copy_tree(src, dst, mode=mode)
        assert (dst / "dense").read_bytes() == data
        assert os.stat(dst / "dense").st_blocks * 512 >= len(data)


@pytest.mark.root
@needs_root
def test_copy_makes_device_nodes(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    os.mknod(src / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(src / "loop", stat.S_IFBLK | 0o660, os.makedev(7, 0))
    os.chown(src / "loop", 0, 6)
    before = tree_state(src)

    copy_tree(src, tmp_path / "dst")

    assert tree_state(tmp_path / "dst") == before


def test_copy_walks_deeper_than_the_recursion_limit(tmp_path: Path) -> None:
    names = ["d"] * (sys.getrecursionlimit() + 200)
    src = tmp_path / "src"
    src.mkdir()
    os.close(open_chain(src, names, create=True))
    (src.joinpath(*names) / "leaf").write_bytes(b"at the bottom")
    try:
        copy_tree(src, tmp_path / "dst")

        assert (tmp_path / "dst").joinpath(*names, "leaf").read_bytes() == b"at the bottom"
    finally:
        # pytest's own clean-up recurses and would fail on this tree.
        for top in (src, tmp_path / "dst"):
            if top.exists():
                remove_tree(str(top))


def open_chain(root: Path, names: list[str], *, create: bool = False) -> int:
    """Open the directory ``root/names...`` one level at a time (paths beyond PATH_MAX)."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    for name in names:
        if create:
            os.mkdir(name, 0o755, dir_fd=fd)
        child = os.open(name, os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
        os.close(fd)
        fd = child
    return fd


def test_copy_handles_paths_longer_than_path_max(tmp_path: Path) -> None:
    names = [f"{index:02d}" + "n" * 200 for index in range(30)]  # about 6,100 bytes deep
    src = tmp_path / "src"
    src.mkdir()
    fd = open_chain(src, names, create=True)
    try:
        leaf = os.open("leaf", os.O_WRONLY | os.O_CREAT, 0o640, dir_fd=fd)
        os.write(leaf, b"far down")
        os.setxattr(leaf, "user.deep", b"yes")
        os.close(leaf)
        os.symlink("leaf", "link", dir_fd=fd)
        os.fchmod(fd, 0o750)
        os.utime(fd, ns=(1, 1_500_000_000_123_456_789))
    finally:
        os.close(fd)

    copy_tree(src, tmp_path / "dst")

    fd = open_chain(tmp_path / "dst", names)
    try:
        assert os.readlink("link", dir_fd=fd) == "leaf"
        leaf = os.open("leaf", os.O_RDONLY, dir_fd=fd)
        assert os.read(leaf, 100) == b"far down"
        assert os.getxattr(leaf, "user.deep") == b"yes"
        assert stat.S_IMODE(os.fstat(leaf).st_mode) == 0o640
        os.close(leaf)
        st = os.fstat(fd)
        assert stat.S_IMODE(st.st_mode) == 0o750
        assert st.st_mtime_ns == 1_500_000_000_123_456_789
    finally:
        os.close(fd)


def test_auto_mode_settles_on_the_method_the_filesystem_has(
    tmp_path: Path, rng: random.Random
) -> None:
    src = tmp_path / "src"
    build_tree(src, rng)
    assert copy_tree(src, tmp_path / "dst") == probe_method(tmp_path)


def test_explicit_reflink_fails_where_the_filesystem_has_none(tmp_path: Path) -> None:
    if probe_method(tmp_path) == "reflink":
        pytest.skip("the filesystem of tmp_path supports reflinks")
    src = tmp_path / "src"
    src.mkdir()
    (src / "file").write_bytes(b"data")

    with pytest.raises(CopyError) as caught:
        copy_tree(src, tmp_path / "dst", mode="reflink")

    assert caught.value.errno in (errno.EOPNOTSUPP, errno.EXDEV, errno.EINVAL, errno.ENOTTY)
    assert "reflink" in str(caught.value)
    assert str(src / "file") in str(caught.value)
    with pytest.raises(OSError):
        probe_method(tmp_path, mode="reflink")


def test_empty_files_copy_in_every_mode_even_reflink(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (src / "empty").touch()
    for mode in (*PORTABLE_MODES, "reflink"):
        copy_tree(src, tmp_path / mode, mode=mode)
        assert (tmp_path / mode / "empty").read_bytes() == b""


def test_bad_arguments(tmp_path: Path) -> None:
    src = tmp_path / "src"
    src.mkdir()
    (tmp_path / "taken").mkdir()
    (tmp_path / "file").touch()
    with pytest.raises(ValueError, match="copy mode"):
        copy_tree(src, tmp_path / "dst", mode="fast")
    with pytest.raises(FileExistsError):
        copy_tree(src, tmp_path / "taken")
    with pytest.raises(NotADirectoryError):
        copy_tree(tmp_path / "file", tmp_path / "dst2")
    assert not (tmp_path / "dst").exists()
    assert not (tmp_path / "dst2").exists()


# -- without privilege: run the copy as nobody in a child process ---------------------------


@pytest.fixture
def shared_dir() -> Iterator[Path]:
    """A directory outside the root-only pytest tmp tree, owned by nobody."""
    path = Path(tempfile.mkdtemp(prefix="pydock-vfs-", dir="/var/tmp"))
    os.chmod(path, 0o755)
    os.chown(path, NOBODY, NOBODY)
    try:
        yield path
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", path], check=True)


@pytest.mark.root
@needs_root
def test_unprivileged_copy_of_own_tree_succeeds(shared_dir: Path, rng: random.Random) -> None:
    src = shared_dir / "src"
    build_tree(src, rng)
    os.setxattr(src / "abs-link", "trusted.hidden", b"x", follow_symlinks=False)
    subprocess.run(["chown", "-hR", f"{NOBODY}:{NOBODY}", src], check=True)
    for path, _ in walk(src):
        if stat.S_IMODE(os.lstat(path).st_mode) == 0:
            os.chmod(path, 0o400)  # not even its owner may read a mode 000 file (cp -a fails too)
    set_times(src, rng)
    before = tree_state(src)

    status, message = as_nobody(lambda: copy_tree(src, shared_dir / "dst"))

    assert status == 0, message
    after = tree_state(shared_dir / "dst")
    # trusted.* is invisible without privilege, so it is the one thing not copied.
    del before["abs-link"]["xattrs"]["trusted.hidden"]
    assert after == before


@pytest.mark.root
@needs_root
def test_unprivileged_copy_refuses_to_lose_a_foreign_owner(shared_dir: Path) -> None:
    src = shared_dir / "src"
    src.mkdir()
    (src / "mine").write_bytes(b"mine")
    (src / "roots").write_bytes(b"owned by root, readable by all")
    os.chmod(src / "roots", 0o644)
    os.chown(src, NOBODY, NOBODY)
    os.chown(src / "mine", NOBODY, NOBODY)

    status, message = as_nobody(lambda: copy_tree(src, shared_dir / "dst"))

    assert status == 3
    assert message.startswith(f"{errno.EPERM} "), message
    assert str(src / "roots") in message
