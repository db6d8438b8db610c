"""The userspace overlay filesystem through real FUSE mounts of ``pydock-fuse-overlay``."""

from __future__ import annotations

import errno
import fcntl
import os
import random
import stat
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from .fusemount import Layers, missing_fuse, mounted

_missing = missing_fuse()
pytestmark = [pytest.mark.fuse, pytest.mark.skipif(_missing is not None, reason=_missing or "")]
_root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0")


def needs_root(test: Callable[..., None]) -> Callable[..., None]:
    """Mark ``test`` as needing uid 0 and skip it without."""
    marked: Callable[..., None] = pytest.mark.root(_root_only(test))
    return marked


SEED = 4242


@pytest.fixture
def layers(tmp_path: Path) -> Layers:
    return Layers(tmp_path)


@pytest.fixture
def mount(layers: Layers) -> Iterator[Path]:
    """The overlay of ``layers`` as built by the test before it first uses this fixture."""
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        yield mnt


def whiteout(directory: Path, name: str) -> None:
    os.mknod(directory / name, stat.S_IFCHR | 0o600, os.makedev(0, 0))


# -- the merged view --------------------------------------------------------------------------


def test_merged_view_of_three_lowers_and_upper(layers: Layers) -> None:
    layers.write(layers.bottom, "a", b"bottom a")
    layers.write(layers.bottom, "dir/only-bottom", b"1")
    layers.write(layers.lowers[1], "a", b"middle a")
    layers.write(layers.lowers[1], "dir/only-middle", b"2")
    layers.write(layers.top, "b", b"top b")
    layers.write(layers.top, "dir/only-top", b"3")
    layers.write(layers.upper, "dir/only-upper", b"4")
    layers.write(layers.upper, "b", b"upper b")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert (mnt / "a").read_bytes() == b"middle a"
        assert (mnt / "b").read_bytes() == b"upper b"
        assert sorted(os.listdir(mnt)) == ["a", "b", "dir"]
        assert sorted(os.listdir(mnt / "dir")) == [
            "only-bottom", "only-middle", "only-top", "only-upper",
        ]  # fmt: skip
        assert (mnt / "dir" / "only-bottom").read_bytes() == b"1"
        assert os.stat(mnt / "dir").st_nlink == 1  # merged directory, as overlayfs
        assert os.statvfs(mnt).f_blocks == os.statvfs(layers.upper).f_blocks


def test_read_only_mount_without_upper(layers: Layers) -> None:
    layers.write(layers.bottom, "f", b"data")
    with mounted(layers.lowers, None, None, layers.mnt) as mnt:
        assert (mnt / "f").read_bytes() == b"data"
        with pytest.raises(OSError) as caught:
            (mnt / "f").write_bytes(b"x")
        assert caught.value.errno == errno.EROFS


def test_whiteouts_in_every_encoding_are_hidden_and_honoured(layers: Layers) -> None:
    for name in ("by-chardev", "by-wh-file", "by-upper", "kept"):
        layers.write(layers.bottom, name, b"lower")
    layers.write(layers.bottom, "dir/x", b"x")
    whiteout(layers.top, "by-chardev")
    layers.write(layers.lowers[1], ".wh.by-wh-file")
    whiteout(layers.upper, "by-upper")
    layers.write(layers.top, ".wh.dir")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert os.listdir(mnt) == ["kept"]
        for name in ("by-chardev", "by-wh-file", "by-upper", "dir", ".wh.dir", ".wh.by-wh-file"):
            assert not os.path.lexists(mnt / name), name


@pytest.mark.parametrize("marker", ["trusted", "user", "file"])
def test_opaque_directory_hides_lower_entries(layers: Layers, marker: str) -> None:
    if marker == "trusted" and os.geteuid() != 0:
        pytest.skip("trusted xattrs need uid 0")
    layers.write(layers.bottom, "d/hidden", b"old")
    layers.write(layers.top, "d/shown", b"new")
    if marker == "file":
        layers.write(layers.top, "d/.wh..wh..opq")
    else:
        os.setxattr(layers.top / "d", f"{marker}.overlay.opaque", b"y")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert os.listdir(mnt / "d") == ["shown"]
        assert not any("overlay" in name for name in os.listxattr(mnt / "d"))


# -- copy-up ------------------------------------------------------------------------------------


@needs_root
def test_copy_up_keeps_mode_owner_times_and_xattrs(layers: Layers) -> None:
    path = layers.write(layers.bottom, "sub/f", b"original", mode=0o4750)
    os.chown(path, 1234, 5678)
    os.chmod(path, 0o4750)  # chown cleared the set-user-id bit
    os.setxattr(path, "user.note", b"kept")
    mtime = 1_000_000_000_123_456_789
    os.utime(path, ns=(mtime, mtime))
    os.utime(path.parent, ns=(mtime, mtime))
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        os.setxattr(mnt / "sub" / "f", "user.added", b"1")  # copy-up without touching data
        upper = layers.upper / "sub" / "f"
        st = os.lstat(upper)
        assert (st.st_uid, st.st_gid, stat.S_IMODE(st.st_mode)) == (1234, 5678, 0o4750)
        assert st.st_mtime_ns == mtime
        assert os.lstat(layers.upper / "sub").st_mtime_ns == mtime
        assert os.getxattr(upper, "user.note") == b"kept"
        assert upper.read_bytes() == b"original"
        seen = os.stat(mnt / "sub" / "f")
        assert (seen.st_uid, seen.st_mtime_ns) == (1234, mtime)
        with open(mnt / "sub" / "f", "ab") as out:
            out.write(b"+")
        assert (mnt / "sub" / "f").read_bytes() == b"original+"
    assert path.read_bytes() == b"original"  # the lower layer is never written


def test_copy_up_is_lazy(layers: Layers) -> None:
    layers.write(layers.bottom, "d/f", b"data")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        with open(mnt / "d" / "f", "rb") as source:
            assert source.read() == b"data"
        os.stat(mnt / "d" / "f")
        assert os.listdir(layers.upper) == []
        with open(mnt / "d" / "f", "r+b") as target:
            assert os.path.exists(layers.upper / "d" / "f")
            target.write(b"DA")
        assert (mnt / "d" / "f").read_bytes() == b"DAta"


def test_truncate_and_chmod_copy_up(layers: Layers) -> None:
    layers.write(layers.bottom, "t", b"0123456789")
    layers.write(layers.bottom, "m", b"m", mode=0o600)
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        os.truncate(mnt / "t", 4)
        assert (mnt / "t").read_bytes() == b"0123"
        with open(mnt / "t", "wb"):
            pass
        assert (mnt / "t").read_bytes() == b""
        os.chmod(mnt / "m", 0o640)
        assert stat.S_IMODE(os.stat(layers.upper / "m").st_mode) == 0o640
        assert (layers.upper / "m").read_bytes() == b"m"
    assert (layers.bottom / "t").read_bytes() == b"0123456789"


# -- names ----------------------------------------------------------------------------------------


def test_rename_files_and_upper_dirs_and_exdev_for_lower_dirs(layers: Layers) -> None:
    layers.write(layers.bottom, "lowerfile", b"L")
    layers.write(layers.bottom, "lowerdir/x", b"x")
    layers.write(layers.bottom, "target", b"old target")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        os.rename(mnt / "lowerfile", mnt / "moved")
        assert (mnt / "moved").read_bytes() == b"L"
        assert not os.path.lexists(mnt / "lowerfile")
        os.rename(mnt / "moved", mnt / "target")
        assert (mnt / "target").read_bytes() == b"L"
        os.makedirs(mnt / "newdir" / "inner")
        (mnt / "newdir" / "inner" / "f").write_bytes(b"f")
        os.rename(mnt / "newdir", mnt / "renamed")
        assert (mnt / "renamed" / "inner" / "f").read_bytes() == b"f"
        with pytest.raises(OSError) as caught:
            os.rename(mnt / "lowerdir", mnt / "elsewhere")
        assert caught.value.errno == errno.EXDEV
        assert (mnt / "lowerdir" / "x").read_bytes() == b"x"
        with pytest.raises(OSError) as caught:
            os.rename(mnt / "renamed", mnt / "lowerdir")
        assert caught.value.errno == errno.ENOTEMPTY
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert sorted(os.listdir(mnt)) == ["lowerdir", "renamed", "target"]


def test_rename_dir_over_empty_lower_dir_is_opaque(layers: Layers) -> None:
    layers.write(layers.bottom, "old/gone", b"g")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        os.unlink(mnt / "old" / "gone")
        os.mkdir(mnt / "fresh")
        (mnt / "fresh" / "new").write_bytes(b"n")
        os.rename(mnt / "fresh", mnt / "old")
        assert os.listdir(mnt / "old") == ["new"]
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert os.listdir(mnt / "old") == ["new"]


def test_unlink_and_rmdir_leave_whiteouts_and_recreate(layers: Layers) -> None:
    layers.write(layers.bottom, "f", b"lower f")
    layers.write(layers.bottom, "d/a", b"a")
    layers.write(layers.top, "d/b", b"b")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        os.unlink(mnt / "f")
        assert not os.path.lexists(mnt / "f")
        (mnt / "f").write_bytes(b"new f")
        for name in ("a", "b"):
            os.unlink(mnt / "d" / name)
        os.rmdir(mnt / "d")
        assert not os.path.lexists(mnt / "d")
        os.mkdir(mnt / "d")
        assert os.listdir(mnt / "d") == []
        (mnt / "d" / "c").write_bytes(b"c")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert (mnt / "f").read_bytes() == b"new f"
        assert os.listdir(mnt / "d") == ["c"]
        os.unlink(mnt / "f")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert sorted(os.listdir(mnt)) == ["d"]


def test_whiteout_names_cannot_be_created(mount: Path) -> None:
    with pytest.raises(OSError) as caught:
        (mount / ".wh.sneaky").write_bytes(b"")
    assert caught.value.errno == errno.EINVAL


def test_symlinks_fifos_and_devices(layers: Layers) -> None:
    os.symlink("target/path", layers.bottom / "link")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        assert os.readlink(mnt / "link") == "target/path"
        os.symlink("../x", mnt / "newlink")
        assert os.readlink(mnt / "newlink") == "../x"
        os.mkfifo(mnt / "fifo", 0o640)
        assert stat.S_ISFIFO(os.lstat(mnt / "fifo").st_mode)
        if os.geteuid() == 0:
            os.mknod(mnt / "null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
            assert os.lstat(mnt / "null").st_rdev == os.makedev(1, 3)
            with open(mnt / "null", "wb") as sink:
                sink.write(b"discarded")
        os.lchown(mnt / "link", os.getuid(), os.getgid())
        assert os.path.islink(layers.upper / "link")


# -- inode numbers ------------------------------------------------------------------------------


def test_hard_links_share_one_inode_across_layers_and_copy_up(layers: Layers) -> None:
    first = layers.write(layers.bottom, "first", b"shared")
    os.link(first, layers.bottom / "second")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        ino = os.stat(mnt / "first").st_ino
        assert os.stat(mnt / "second").st_ino == ino
        assert os.stat(mnt / "first").st_nlink == 2
        with open(mnt / "first", "ab") as out:
            out.write(b"!")
        assert (mnt / "second").read_bytes() == b"shared!"
        assert os.stat(mnt / "second").st_ino == ino
        os.link(mnt / "second", mnt / "third")
        assert os.stat(mnt / "third").st_ino == ino
        assert os.stat(mnt / "third").st_nlink == 3
        new = mnt / "new"
        new.write_bytes(b"n")
        os.link(new, mnt / "new2")
        assert os.stat(mnt / "new2").st_ino == os.stat(new).st_ino
    upper = {name: os.stat(layers.upper / name).st_ino for name in ("first", "second", "third")}
    assert len(set(upper.values())) == 1


@needs_root
def test_inode_numbers_are_stable_across_copy_up_and_cache_drops(layers: Layers) -> None:
    for index in range(50):
        layers.write(layers.bottom, f"d/f{index}", b"x")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        before = {p.name: p.stat().st_ino for p in (mnt / "d").iterdir()}
        assert len(set(before.values())) == 50
        dir_ino = os.stat(mnt / "d").st_ino
        os.chmod(mnt / "d" / "f7", 0o600)
        (mnt / "d" / "f8").write_bytes(b"rewritten")
        Path("/proc/sys/vm/drop_caches").write_text("2\n")  # the kernel forgets the inodes
        after = {p.name: p.stat().st_ino for p in (mnt / "d").iterdir()}
        assert after == before
        assert os.stat(mnt / "d").st_ino == dir_ino


# -- listings and concurrency --------------------------------------------------------------------


def test_readdir_of_five_thousand_entries(layers: Layers) -> None:
    expected = set()
    for index in range(5000):
        layer = layers.lowers[index % 3]
        layers.write(layer, f"big/n{index:05d}")
        expected.add(f"n{index:05d}")
    (layers.upper / "big").mkdir()
    for index in range(0, 5000, 100):
        whiteout(layers.upper / "big", f"n{index:05d}")
        expected.discard(f"n{index:05d}")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        names = os.listdir(mnt / "big")
        assert len(names) == len(set(names)) == 4950
        assert set(names) == expected
        with os.scandir(mnt / "big") as entries:
            assert all(entry.is_file() for entry in entries)


def test_concurrent_readers(layers: Layers) -> None:
    rng = random.Random(SEED)
    contents = {}
    for index in range(40):
        data = rng.randbytes(rng.randint(1, 300_000))
        layers.write(layers.lowers[index % 3], f"r/f{index}", data)
        contents[f"f{index}"] = data
    errors: list[BaseException] = []
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:

        def reader(seed: int) -> None:
            local = random.Random(seed)
            try:
                for _ in range(60):
                    name = local.choice(sorted(contents))
                    with open(mnt / "r" / name, "rb") as source:
                        offset = local.randrange(len(contents[name]))
                        source.seek(offset)
                        assert source.read(4096) == contents[name][offset : offset + 4096]
            except BaseException as exc:  # reported by the main thread
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(SEED + n,)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
    assert errors == []


def test_xattrs_and_locks(mount: Path) -> None:
    path = mount / "f"
    path.write_bytes(b"x")
    os.setxattr(path, "user.k", b"v")
    assert os.getxattr(path, "user.k") == b"v"
    assert "user.k" in os.listxattr(path)
    os.removexattr(path, "user.k")
    assert "user.k" not in os.listxattr(path)
    with pytest.raises(OSError) as caught:
        os.setxattr(path, "user.overlay.opaque", b"y")
    assert caught.value.errno == errno.EPERM
    with open(path, "rb") as one, open(path, "rb") as two:
        fcntl.flock(one, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(BlockingIOError):
            fcntl.flock(two, fcntl.LOCK_EX | fcntl.LOCK_NB)
        fcntl.lockf(one, fcntl.LOCK_SH)
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


@pytest.fixture
def open_layers() -> Iterator[Layers]:
    """Layers in a directory other users can reach (pytest's tmp dirs are private)."""
    with tempfile.TemporaryDirectory(prefix="fuse-owners-") as base:
        os.chmod(base, 0o755)
        yield Layers(Path(base))


@needs_root
def test_new_files_belong_to_the_caller_and_inherit_set_group_id(open_layers: Layers) -> None:
    layers = open_layers
    (layers.bottom / "open").mkdir(mode=0o777)
    os.chmod(layers.bottom / "open", 0o777)
    shared = layers.bottom / "shared"
    shared.mkdir()
    os.chown(shared, 0, 4321)
    os.chmod(shared, 0o2777)
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        as_user = ["setpriv", "--reuid=1234", "--regid=1234", "--clear-groups"]
        for target in (mnt / "open" / "mine", mnt / "shared" / "group"):
            subprocess.run([*as_user, "touch", str(target)], check=True, timeout=30)
        subprocess.run([*as_user, "mkdir", str(mnt / "shared" / "sub")], check=True, timeout=30)
        (mnt / "rootfile").write_bytes(b"")
        assert (os.stat(mnt / "open" / "mine").st_uid, os.stat(mnt / "open" / "mine").st_gid) == (
            1234,
            1234,
        )
        assert os.stat(mnt / "shared" / "group").st_gid == 4321
        sub = os.stat(mnt / "shared" / "sub")
        assert (sub.st_uid, sub.st_gid) == (1234, 4321) and sub.st_mode & stat.S_ISGID
        assert os.stat(layers.upper / "rootfile").st_uid == 0
