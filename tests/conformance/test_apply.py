"""``apply_diff`` entry by entry: whiteouts, replacements, links, owners, devices, and the
layers below the one being filled."""

from __future__ import annotations

import io
import os
import stat
import struct

import pytest

import graphdriver
from graphdriver import Change, ChangeKind

from .helpers import can_chown, can_mknod, make_dir, mounted, write
from .tarbuild import LayerTar
from .treesnap import assert_same_tree, snapshot


def test_apply_device_node(driver: graphdriver.Driver) -> None:
    """A device entry is made, or refused with an error; it is never silently left out."""
    tar = LayerTar().device("dev/null-copy", 1, 3).file("after", b"1")
    driver.create("layer", None)
    with mounted(driver, "layer") as root:
        privileged = can_mknod(root)
    if privileged:
        driver.apply_diff("layer", None, io.BytesIO(tar.getvalue()))
        with mounted(driver, "layer") as root:
            st = os.lstat(root / "dev" / "null-copy")
            assert stat.S_ISCHR(st.st_mode)
            assert (os.major(st.st_rdev), os.minor(st.st_rdev)) == (1, 3)
    else:
        with pytest.raises(graphdriver.GraphDriverError):
            driver.apply_diff("layer", None, io.BytesIO(tar.getvalue()))
        with mounted(driver, "layer") as root:
            assert os.listdir(root) == []


def test_apply_opaque_directory(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "opaque" / "old-1", b"1")
        write(root / "opaque" / "sub" / "old-2", b"2")
        write(root / "other" / "kept", b"3")
    tar = (
        LayerTar()
        .dir("opaque", mode=0o750)
        .whiteout("opaque/.wh..wh..opq")
        .file("opaque/new", b"fresh")
        .whiteout("other/.wh.not-there")
    )
    driver.create("layer", "base")
    size = driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue()))
    assert size == len(b"fresh")
    with mounted(driver, "layer") as root:
        assert sorted(os.listdir(root / "opaque")) == ["new"]
        assert (root / "opaque" / "new").read_bytes() == b"fresh"
        assert (root / "other" / "kept").read_bytes() == b"3"
        assert not (root / "opaque" / ".wh..wh..opq").exists()
        assert not (root / "other" / ".wh.not-there").exists()
    assert sorted(driver.changes("layer", "base")) == sorted(
        [
            Change("/opaque", ChangeKind.MODIFY),
            Change("/opaque/new", ChangeKind.ADD),
            Change("/opaque/old-1", ChangeKind.DELETE),
            Change("/opaque/sub", ChangeKind.DELETE),
        ]
    )


def _opaque_base(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "opaque" / "old-1", b"1")
        write(root / "opaque" / "sub" / "old-2", b"2")
    driver.create("layer", "base")


@pytest.mark.parametrize("kind", ["file", "dir", "symlink", "hardlink"])
def test_apply_opaque_marker_of_any_type(driver: graphdriver.Driver, kind: str) -> None:
    """``.wh..wh..opq`` marks its directory opaque whatever its entry type (as in moby)."""
    _opaque_base(driver)
    tar = LayerTar().dir("opaque").file("opaque/new", b"fresh").file("other", b"o")
    marker = "opaque/.wh..wh..opq"
    if kind == "file":
        tar.whiteout(marker)
    elif kind == "dir":
        tar.dir(marker)
    elif kind == "symlink":
        tar.symlink(marker, "../other")
    else:
        tar.hardlink(marker, "other")
    driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        assert sorted(os.listdir(root / "opaque")) == ["new"]
        assert not os.path.lexists(root / marker)


@pytest.mark.parametrize(
    "name", ["opaque/.wh..wh..opq/inside", ".wh..wh..opq/inside", "opaque/.wh.old-1/inside"]
)
def test_apply_entry_under_whiteout_refused(driver: graphdriver.Driver, name: str) -> None:
    """An entry under a whiteout name would create a directory the marker stands for."""
    _opaque_base(driver)
    with mounted(driver, "layer") as root:
        before = snapshot(root, root_mtime=True)
    tar = (
        LayerTar()
        .dir("opaque")
        .file("opaque/new", b"unpacked before the bad entry")
        .dir(name.rsplit("/", 1)[0])
        .file(name, b"x")
    )
    with pytest.raises(graphdriver.ArchiveError, match="under the whiteout"):
        driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        assert_same_tree(before, snapshot(root, root_mtime=True), "layer after a refused tar")
        assert sorted(os.listdir(root / "opaque")) == ["old-1", "sub"]


def test_apply_whiteouts_and_replacements(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "gone-file", b"x")
        write(root / "gone-dir" / "a" / "b", b"y")
        write(root / "file-becomes-dir", b"z")
        write(root / "dir-becomes-file" / "inner", b"w")
        make_dir(root / "dir-stays")
        write(root / "dir-stays" / "old", b"v")
    tar = (
        LayerTar()
        .whiteout(".wh.gone-file")
        .whiteout(".wh.gone-dir")
        .dir("file-becomes-dir")
        .file("file-becomes-dir/now", b"1")
        .file("dir-becomes-file", b"22")
        .dir("dir-stays", mode=0o700)
        .file("dir-stays/new", b"333")
    )
    driver.create("layer", "base")
    assert driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue())) == 6
    with mounted(driver, "layer") as root:
        assert sorted(os.listdir(root)) == [
            "dir-becomes-file",
            "dir-stays",
            "file-becomes-dir",
        ]
        assert (root / "dir-becomes-file").read_bytes() == b"22"
        assert os.listdir(root / "file-becomes-dir") == ["now"]
        # A directory entry over an existing directory merges: old content stays.
        assert sorted(os.listdir(root / "dir-stays")) == ["new", "old"]
        assert os.lstat(root / "dir-stays").st_mode & 0o777 == 0o700


def test_apply_hard_links_count_once(driver: graphdriver.Driver) -> None:
    tar = (
        LayerTar()
        .file("a", b"0123456789")
        .hardlink("b", "a")
        .dir("d")
        .hardlink("d/c", "a")
        .file("e", b"xyz")
    )
    driver.create("layer", None)
    assert driver.apply_diff("layer", None, io.BytesIO(tar.getvalue())) == 13
    assert driver.diff_size("layer", None) == 13
    with mounted(driver, "layer") as root:
        inodes = {os.lstat(root / p).st_ino for p in ("a", "b", "d/c")}
        assert len(inodes) == 1
        assert os.lstat(root / "a").st_nlink == 3


@pytest.mark.root
def test_apply_sets_ownership(driver: graphdriver.Driver) -> None:
    driver.create("layer", None)
    with mounted(driver, "layer") as root:
        if not can_chown(root):
            pytest.skip("needs uid 0 (or a mapped user namespace) to own files as other users")
    tar = LayerTar().file("owned", b"data", mode=0o4750, owner=(1234, 5678))
    driver.apply_diff("layer", None, io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        st = os.lstat(root / "owned")
        assert (st.st_uid, st.st_gid) == (1234, 5678)
        assert st.st_mode & 0o7777 == 0o4750


def test_apply_hard_link_to_parent_file(driver: graphdriver.Driver) -> None:
    """A link to a file of a parent layer links to this layer's copy, never the parent's."""
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "lib" / "a", b"from the parent")
        parent_before = snapshot(root)
    tar = LayerTar().hardlink("lib/b", "lib/a")
    driver.create("layer", "base")
    assert driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue())) == 0
    with mounted(driver, "layer") as root:
        assert (root / "lib" / "b").read_bytes() == b"from the parent"
        assert os.lstat(root / "lib" / "b").st_nlink == 2
        with open(root / "lib" / "b", "ab") as fh:
            fh.write(b", changed in the layer")
        assert (root / "lib" / "a").read_bytes() == b"from the parent, changed in the layer"
    with mounted(driver, "base") as root:
        assert_same_tree(parent_before, snapshot(root), "parent after a link to its file")


def test_apply_through_parent_symlink_inside(driver: graphdriver.Driver) -> None:
    """A parent's ``lib -> usr/lib`` (a merged-/usr image) is followed inside the layer."""
    driver.create("base", None)
    with mounted(driver, "base") as root:
        make_dir(root / "usr" / "lib")
        os.symlink("usr/lib", root / "lib")
        os.symlink("/usr/lib", root / "lib-absolute")
    tar = LayerTar().file("lib/via-relative", b"1").file("lib-absolute/via-absolute", b"2")
    driver.create("layer", "base")
    driver.apply_diff("layer", "base", io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        assert os.readlink(root / "lib") == "usr/lib"
        assert sorted(os.listdir(root / "usr" / "lib")) == ["via-absolute", "via-relative"]
    assert sorted(driver.changes("layer", "base")) == [
        Change("/usr", ChangeKind.MODIFY),
        Change("/usr/lib", ChangeKind.MODIFY),
        Change("/usr/lib/via-absolute", ChangeKind.ADD),
        Change("/usr/lib/via-relative", ChangeKind.ADD),
    ]


def test_apply_directory_after_its_entries(driver: graphdriver.Driver) -> None:
    """A directory's own entry may come after its content; its mode and mtime still win."""
    tar = LayerTar(mtime=1_234_567_890).file("d/f", b"x").dir("d", mode=0o700)
    driver.create("layer", None)
    driver.apply_diff("layer", None, io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        st = os.lstat(root / "d")
        assert stat.S_IMODE(st.st_mode) == 0o700
        assert st.st_mtime_ns == 1_234_567_890 * 10**9
        assert (root / "d" / "f").read_bytes() == b"x"


def test_apply_same_name_twice(driver: graphdriver.Driver) -> None:
    tar = LayerTar().file("twice", b"first").file("twice", b"second, longer")
    driver.create("layer", None)
    driver.apply_diff("layer", None, io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        assert (root / "twice").read_bytes() == b"second, longer"
        assert os.listdir(root) == ["twice"]


def _file_capability() -> bytes:
    # vfs_cap_data, revision 2, effective bit set, permitted = cap_net_raw (13).
    return struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def test_apply_file_capability(driver: graphdriver.Driver) -> None:
    """``SCHILY.xattr.security.capability`` (ping's cap_net_raw) lands on the file."""
    driver.create("layer", None)
    with mounted(driver, "layer") as root:
        probe = write(root / "probe", b"")
        try:
            os.setxattr(probe, "security.capability", _file_capability())
        except OSError as exc:
            pytest.skip(f"cannot set file capabilities here: {exc.strerror}")
        finally:
            probe.unlink()
    value = _file_capability().decode("ascii")
    tar = LayerTar().file(
        "ping", b"\x7fELF", mode=0o755, pax={"SCHILY.xattr.security.capability": value}
    )
    driver.apply_diff("layer", None, io.BytesIO(tar.getvalue()))
    with mounted(driver, "layer") as root:
        assert os.getxattr(root / "ping", "security.capability") == _file_capability()
    driver.create("child", "layer")
    with mounted(driver, "child") as root:
        assert os.getxattr(root / "ping", "security.capability") == _file_capability()
