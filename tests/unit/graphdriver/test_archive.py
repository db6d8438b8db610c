"""Unpacking and packing layer tars: formats, metadata, whiteouts, breakouts, rollback."""

from __future__ import annotations

import gzip
import io
import os
import random
import shutil
import stat
import tarfile
import tempfile
from pathlib import Path

import pytest
import zstandard

from graphdriver import ArchiveError, BreakoutError, Change, ChangeKind
from graphdriver.archive import (
    DeleteWhiteouts,
    OverlayWhiteouts,
    apply_layer,
    export_changes,
    pack_tree,
)
from graphdriver.changes import changes_dirs
from unit.drivers.vfs.vfstrees import NOBODY, as_nobody
from unit.graphdriver.tarmaker import Item, make_tar

IS_ROOT = os.geteuid() == 0


def tree(root: Path) -> list[tuple[str, int, int, int, int, int, str, bytes]]:
    """Everything observable about a tree, for before/after comparisons."""
    out = []
    for directory, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            path = Path(directory, name)
            st = path.lstat()
            link = os.readlink(path) if path.is_symlink() else ""
            data = path.read_bytes() if stat.S_ISREG(st.st_mode) else b""
            out.append(
                (
                    str(path.relative_to(root)),
                    st.st_mode,
                    st.st_uid,
                    st.st_gid,
                    st.st_mtime_ns,
                    st.st_nlink,
                    link,
                    data,
                )
            )
    root_st = root.lstat()
    out.append(
        (".", root_st.st_mode, root_st.st_uid, root_st.st_gid, root_st.st_mtime_ns, 0, "", b"")
    )
    return sorted(out)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    layer = tmp_path / "layer"
    layer.mkdir()
    (tmp_path / "outside").mkdir()
    return layer


def test_unpacks_every_entry_type_with_metadata(root: Path) -> None:
    items = [
        Item("etc", "dir", mode=0o755, mtime=1_600_000_000.5),
        Item("etc/passwd", data=b"root:x:0:0::/root:/bin/sh\n", mode=0o644, uid=1, gid=2),
        Item("bin", "dir"),
        Item("bin/su", data=b"\x7fELF", mode=0o4755),
        Item("bin/sgid", data=b"x", mode=0o2755),
        Item("tmp", "dir", mode=0o1777),
        Item("bin/sh", "symlink", link="/bin/su"),
        Item("bin/su2", "hardlink", link="bin/su"),
        Item("run.fifo", "fifo", mode=0o600),
        Item("tagged", data=b"t", xattrs={"user.color": "blue"}),
    ]
    size = apply_layer(root, io.BytesIO(make_tar(items)))
    assert size == len(b"root:x:0:0::/root:/bin/sh\n") + 4 + 1 + 1
    st = (root / "etc/passwd").lstat()
    if IS_ROOT:
        assert (st.st_uid, st.st_gid) == (1, 2)
    assert stat.S_IMODE((root / "bin/su").lstat().st_mode) == 0o4755
    assert stat.S_IMODE((root / "bin/sgid").lstat().st_mode) == 0o2755
    assert stat.S_IMODE((root / "tmp").lstat().st_mode) == 0o1777
    assert os.readlink(root / "bin/sh") == "/bin/su"
    assert (root / "bin/su").stat().st_ino == (root / "bin/su2").stat().st_ino
    assert stat.S_ISFIFO((root / "run.fifo").lstat().st_mode)
    assert os.getxattr(root / "tagged", "user.color") == b"blue"
    assert (root / "etc").lstat().st_mtime_ns == 1_600_000_000_500_000_000
    assert (root / "bin/su").lstat().st_mtime_ns == 1_700_000_000_250_000_000


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, zstandard.compress])
def test_reads_plain_gzip_and_zstd(root: Path, compress: object) -> None:
    data = make_tar([Item("a", data=b"hello")])
    assert callable(compress)
    assert apply_layer(root, io.BytesIO(compress(data))) == 5
    assert (root / "a").read_bytes() == b"hello"


def test_gnu_long_names_and_ustar_prefix(root: Path) -> None:
    long = "d" * 60 + "/" + "e" * 60 + "/" + "f" * 120
    for fmt in (tarfile.GNU_FORMAT, tarfile.PAX_FORMAT):
        apply_layer(root, io.BytesIO(make_tar([Item(long, data=b"x")], fmt=fmt)))
        assert (root / long).read_bytes() == b"x"
    short_dir = "p" * 90 + "/" + "q" * 40
    apply_layer(root, io.BytesIO(make_tar([Item(short_dir, data=b"y")], fmt=tarfile.USTAR_FORMAT)))
    assert (root / short_dir).read_bytes() == b"y"


def test_empty_stream_is_an_empty_layer(root: Path) -> None:
    assert apply_layer(root, io.BytesIO(b"")) == 0
    assert list(root.iterdir()) == []


def test_delete_whiteouts_and_opaque_dirs(root: Path) -> None:
    apply_layer(
        root,
        io.BytesIO(
            make_tar(
                [
                    Item("a", "dir"),
                    Item("a/old", data=b"1"),
                    Item("a/keep", data=b"2"),
                    Item("b", "dir"),
                    Item("b/gone", data=b"3"),
                    Item("c", "dir"),
                    Item("c/sub", "dir"),
                    Item("c/sub/x", data=b"4"),
                ]
            )
        ),
    )
    upper = make_tar(
        [
            Item("a/.wh.old"),
            Item("b", "dir"),
            Item("b/new", data=b"5"),
            Item("b/.wh..wh..opq"),
            Item(".wh.c"),
        ]
    )
    apply_layer(root, io.BytesIO(upper), whiteouts=DeleteWhiteouts())
    assert sorted(p.name for p in (root / "a").iterdir()) == ["keep"]
    assert sorted(p.name for p in (root / "b").iterdir()) == ["new"]
    assert not (root / "c").exists()
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []


@pytest.mark.skipif(not IS_ROOT, reason="overlay whiteouts need mknod and trusted xattrs (root)")
def test_overlay_whiteouts(root: Path) -> None:
    tar = make_tar([Item("d", "dir"), Item("d/.wh..wh..opq"), Item(".wh.gone")])
    apply_layer(root, io.BytesIO(tar), whiteouts=OverlayWhiteouts("trusted"))
    st = (root / "gone").lstat()
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0)
    assert os.getxattr(root / "d", "trusted.overlay.opaque") == b"y"


@pytest.mark.parametrize(
    "items",
    [
        [Item("ok", data=b"1"), Item("../escape", data=b"2")],
        [Item("ok", data=b"1"), Item("a/../../escape", data=b"2")],
        [
            Item("d", "dir"),
            Item("d/link", "symlink", link="../../outside"),
            Item("d/link/x", data=b"2"),
        ],
        [
            Item("l1", "symlink", link="l2"),
            Item("l2", "symlink", link="../.."),
            Item("l1/outside/x", data=b"2"),
        ],
        [Item("ok", data=b"1"), Item("hl", "hardlink", link="../outside/x")],
        [Item("ok", data=b"1"), Item(".wh.")],
        [Item(".wh..")],
        [Item(".wh...")],
    ],
    ids=[
        "dotdot",
        "deep-dotdot",
        "symlink-out",
        "symlink-chain",
        "hardlink-out",
        "wh",
        "wh.",
        "wh..",
    ],
)
def test_breakouts_are_refused_and_rolled_back(root: Path, items: list[Item]) -> None:
    (root / "existing").write_bytes(b"before")
    before = tree(root)
    outside = root.parent / "outside"
    with pytest.raises(BreakoutError):
        apply_layer(root, io.BytesIO(make_tar(items)))
    assert tree(root) == before
    assert list(outside.iterdir()) == []
    assert sorted(p.name for p in root.parent.iterdir()) == ["layer", "outside"]


def test_symlink_target_is_stored_verbatim(root: Path) -> None:
    """A symlink's target is data (as in Docker); only names resolved through it are scoped."""
    tar = make_tar([Item("etc", "dir"), Item("etc/link", "symlink", link="../../../../etc/passwd")])
    apply_layer(root, io.BytesIO(tar))
    assert os.readlink(root / "etc/link") == "../../../../etc/passwd"


def test_write_through_parent_layer_symlink_is_refused(root: Path) -> None:
    (root / "evil").symlink_to("../outside")
    before = tree(root)
    with pytest.raises(BreakoutError):
        apply_layer(root, io.BytesIO(make_tar([Item("evil/pwned", data=b"x")])))
    assert tree(root) == before
    assert list((root.parent / "outside").iterdir()) == []


def test_absolute_names_and_links_stay_inside(root: Path) -> None:
    (root / "etc").mkdir()
    (root / "abs").symlink_to("/etc")
    tar = make_tar(
        [
            Item("/etc/hosts", data=b"h"),
            Item("abs/through", data=b"t"),
            Item("hl", "hardlink", link="/etc/hosts"),
        ]
    )
    apply_layer(root, io.BytesIO(tar))
    assert (root / "etc/hosts").read_bytes() == b"h"
    assert (root / "etc/through").read_bytes() == b"t"
    assert (root / "hl").stat().st_ino == (root / "etc/hosts").stat().st_ino


def test_existing_symlink_is_replaced_not_followed(root: Path) -> None:
    target = root.parent / "outside" / "victim"
    target.write_bytes(b"safe")
    (root / "f").symlink_to(target)
    apply_layer(root, io.BytesIO(make_tar([Item("f", data=b"new")])))
    assert target.read_bytes() == b"safe"
    assert not (root / "f").is_symlink() and (root / "f").read_bytes() == b"new"


def test_truncated_tar_rolls_back_everything(root: Path) -> None:
    (root / "keep").write_bytes(b"k")
    (root / "d").mkdir()
    (root / "d" / "old").write_bytes(b"o")
    before = tree(root)
    rng = random.Random(7)
    data = make_tar(
        [
            Item("d", "dir", mode=0o700),
            Item("d/.wh.old"),
            Item(".wh.keep"),
            Item("new", data=rng.randbytes(3000)),
            Item("big", data=rng.randbytes(100_000)),
        ]
    )
    with pytest.raises(ArchiveError):
        apply_layer(root, io.BytesIO(data[: len(data) // 2]))
    assert tree(root) == before


@pytest.mark.parametrize(
    "blob",
    [
        b"BZh91AY&SY" + b"\0" * 600,
        b"\xfd7zXZ\x00" + b"\0" * 600,
        b"this is not a tar at all" * 40,
    ],
    ids=["bzip2", "xz", "garbage"],
)
def test_unreadable_input_is_an_archive_error(root: Path, blob: bytes) -> None:
    with pytest.raises(ArchiveError):
        apply_layer(root, io.BytesIO(blob))
    assert list(root.iterdir()) == []


def test_gzip_with_bad_crc(root: Path) -> None:
    data = bytearray(gzip.compress(make_tar([Item("a", data=b"x" * 5000)])))
    data[-8] ^= 0xFF  # the CRC32 in the gzip trailer
    with pytest.raises(ArchiveError, match="gzip"):
        apply_layer(root, io.BytesIO(bytes(data)))
    assert list(root.iterdir()) == []


def test_device_node_unprivileged_is_a_clear_error(tmp_path: Path) -> None:
    """Without CAP_MKNOD a device entry is an error naming skip_devices, or left out with it.

    As root (always, in CI) the unpacking runs in a child that has become ``nobody``."""
    tar = make_tar([Item("null", "chr")])
    layer = Path(tempfile.mkdtemp(prefix="pydock-archive-", dir="/var/tmp"))
    try:
        if IS_ROOT:
            os.chown(layer, NOBODY, NOBODY)

        def refused() -> None:
            try:
                apply_layer(layer, io.BytesIO(tar))
            except ArchiveError as exc:
                assert "skip_devices" in str(exc), exc
                assert os.listdir(layer) == []
                assert apply_layer(layer, io.BytesIO(tar), skip_devices=True) == 0
                return
            raise AssertionError("a device node was made without privilege")

        if IS_ROOT:
            status, message = as_nobody(refused)
            assert (status, message) == (0, "")
        else:
            refused()
        assert os.listdir(layer) == []
    finally:
        shutil.rmtree(layer)


def test_pack_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    src = tmp_path / "src"
    rng = random.Random(42)
    for i in range(30):
        d = src / f"d{i % 5}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}").write_bytes(rng.randbytes(rng.randrange(0, 5000)))
    os.link(src / "d0" / "f0", src / "d0" / "link")
    (src / "d1" / "sym").symlink_to("../d0/f0")
    os.setxattr(src / "d2", "user.k", b"\xff\x00binary")
    os.utime(src / "d3" / "f3", ns=(1, 1_234_567_891))
    first, second = io.BytesIO(), io.BytesIO()
    pack_tree(src, first)
    pack_tree(src, second)
    assert first.getvalue() == second.getvalue()
    dst = tmp_path / "dst"
    dst.mkdir()
    first.seek(0)
    apply_layer(dst, first)
    assert changes_dirs(dst, src) == []
    assert os.getxattr(dst / "d2", "user.k") == b"\xff\x00binary"
    assert (dst / "d3/f3").lstat().st_mtime_ns == 1_234_567_891


def test_export_changes_writes_whiteouts(tmp_path: Path) -> None:
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "a" / "new").write_bytes(b"n")
    out = io.BytesIO()
    export_changes(
        src,
        [
            Change("/a", ChangeKind.MODIFY),
            Change("/a/new", ChangeKind.ADD),
            Change("/a/old", ChangeKind.DELETE),
            Change("/top", ChangeKind.DELETE),
        ],
        out,
    )
    out.seek(0)
    with tarfile.open(fileobj=out) as tar:
        assert tar.getnames() == ["a", "a/.wh.old", "a/new", ".wh.top"] or sorted(
            tar.getnames()
        ) == sorted(["a", "a/.wh.old", "a/new", ".wh.top"])
        names = tar.getnames()
    assert names == sorted(names)


def test_large_entries_from_a_tar_file_are_copied_in_the_kernel(root: Path, tmp_path: Path) -> None:
    big = random.Random(3).randbytes(3 << 20)
    tar_path = tmp_path / "layer.tar"
    tar_path.write_bytes(make_tar([Item("big", data=big), Item("after", data=b"tail")]))
    with open(tar_path, "rb") as stream:
        assert apply_layer(root, stream) == len(big) + 4
    assert (root / "big").read_bytes() == big
    assert (root / "after").read_bytes() == b"tail"
    truncated = tmp_path / "truncated.tar"
    truncated.write_bytes(tar_path.read_bytes()[: 2 << 20])
    fresh = tmp_path / "fresh"
    fresh.mkdir()
    with open(truncated, "rb") as stream, pytest.raises(ArchiveError, match="truncated"):
        apply_layer(fresh, stream)
    assert list(fresh.iterdir()) == []
