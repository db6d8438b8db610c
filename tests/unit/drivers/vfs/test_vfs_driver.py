"""Tests of the vfs graph driver on the real filesystem: layers, references, options, errors."""

from __future__ import annotations

import errno
import io
import os
import random
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import graphdriver
from drivers.vfs import VfsDriver
from drivers.vfs.copy import METHODS, probe_method
from drivers.vfs.fs import remove_tree, rename_noreplace

from .vfstrees import IS_ROOT, NOBODY, as_nobody, build_tree, needs_root, tree_state


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "vfs"


@pytest.fixture
def driver(home: Path) -> Iterator[VfsDriver]:
    drv = graphdriver.get_driver("vfs", home)
    assert isinstance(drv, VfsDriver)
    try:
        yield drv
    finally:
        drv.cleanup()


def fill(driver: VfsDriver, layer_id: str, files: dict[str, bytes]) -> None:
    """Write ``files`` (relative path -> content) into a layer."""
    root = driver.get(layer_id)
    try:
        for rel, content in files.items():
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            (root / rel).write_bytes(content)
    finally:
        driver.put(layer_id)


def hidden_entries(driver: VfsDriver) -> list[str]:
    return sorted(name for name in os.listdir(driver.layers_dir) if name.startswith("."))


def test_vfs_is_registered_through_its_entry_point() -> None:
    assert graphdriver.registered()["vfs"] is VfsDriver
    assert (VfsDriver.name, VfsDriver.priority) == ("vfs", 10)
    assert "vfs" in graphdriver.available()


def test_new_empty_layer_is_a_0755_dir_owned_by_the_caller(driver: VfsDriver) -> None:
    old_umask = os.umask(0o077)
    try:
        driver.create("base", None)
    finally:
        os.umask(old_umask)

    root = driver.get("base")
    st = os.lstat(root)
    assert root == driver.layers_dir / "base"
    assert stat.S_ISDIR(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o755
    assert (st.st_uid, st.st_gid) == (os.geteuid(), os.getegid())
    assert os.listdir(root) == []
    driver.put("base")


def test_child_layer_shows_its_parents_tree_exactly(driver: VfsDriver) -> None:
    driver.create("base", None)
    parent_root = driver.get("base")
    remove_tree(str(parent_root))
    build_tree(parent_root, random.Random(7), owners=IS_ROOT)
    driver.put("base")

    driver.create_read_write("child", "base")

    assert tree_state(driver.get("child")) == tree_state(driver.get("base"))
    driver.put("child")
    driver.put("base")


def test_child_is_a_copy_not_a_view(driver: VfsDriver) -> None:
    driver.create("base", None)
    fill(driver, "base", {"etc/hostname": b"base\n"})
    driver.create("child", "base")

    fill(driver, "child", {"etc/hostname": b"child\n", "new": b"only in child"})

    base = driver.get("base")
    assert (base / "etc/hostname").read_bytes() == b"base\n"
    assert not (base / "new").exists()
    driver.put("base")
    driver.remove("base")
    assert (driver.get("child") / "etc/hostname").read_bytes() == b"child\n"
    driver.put("child")


def test_create_refuses_an_existing_id(driver: VfsDriver) -> None:
    driver.create("base", None)
    fill(driver, "base", {"keep": b"me"})

    with pytest.raises(graphdriver.LayerExistsError) as caught:
        driver.create("base", None)

    assert (caught.value.layer_id, caught.value.driver) == ("base", "vfs")
    assert caught.value.path == str(driver.layers_dir / "base")
    assert "creating layer base" in str(caught.value)
    assert (driver.get("base") / "keep").read_bytes() == b"me"
    driver.put("base")


def test_create_on_an_unknown_parent_makes_nothing(driver: VfsDriver) -> None:
    with pytest.raises(graphdriver.LayerUnknownError) as caught:
        driver.create("child", "missing")

    assert caught.value.layer_id == "missing"
    assert str(caught.value) == "creating layer child: parent layer missing does not exist"
    assert not driver.exists("child")
    assert os.listdir(driver.layers_dir) == []


@pytest.mark.parametrize("bad_id", ["", ".hidden", "a/b", "..", "nul\0"])
def test_ids_that_cannot_name_a_layer(driver: VfsDriver, bad_id: str) -> None:
    with pytest.raises(graphdriver.GraphDriverError, match="not a valid layer id"):
        driver.create(bad_id, None)
    with pytest.raises(graphdriver.LayerUnknownError):
        driver.get(bad_id)
    with pytest.raises(graphdriver.LayerUnknownError):
        driver.remove(bad_id)
    assert not driver.exists(bad_id)
    assert os.listdir(driver.layers_dir) == []


def test_per_layer_options_are_refused(driver: VfsDriver) -> None:
    with pytest.raises(graphdriver.InvalidOptionError, match="size"):
        driver.create("base", None, opts={"size": "10G"})
    assert not driver.exists("base")


def test_nested_get_and_put_count_references(driver: VfsDriver) -> None:
    driver.create("layer", None)
    first = driver.get("layer")
    assert driver.get("layer") == first
    assert driver.is_mounted("layer")

    with pytest.raises(graphdriver.LayerInUseError) as caught:
        driver.remove("layer")
    assert caught.value.layer_id == "layer"

    driver.put("layer")
    with pytest.raises(graphdriver.LayerInUseError):
        driver.remove("layer")
    driver.put("layer")
    assert not driver.is_mounted("layer")
    driver.put("layer")  # one put too many does nothing
    driver.remove("layer")
    assert not driver.exists("layer")
    assert not first.exists()
    assert hidden_entries(driver) == []


def test_put_without_get_does_nothing(driver: VfsDriver) -> None:
    driver.put("never-created")
    driver.create("layer", None)
    driver.put("layer")
    assert driver.get("layer").is_dir()
    with pytest.raises(graphdriver.LayerInUseError):
        driver.remove("layer")
    driver.put("layer")


def test_unknown_layers(driver: VfsDriver) -> None:
    for action in (driver.get, driver.remove, driver.metadata):
        with pytest.raises(graphdriver.LayerUnknownError) as caught:
            action("ghost")
        assert (caught.value.layer_id, caught.value.driver) == ("ghost", "vfs")
        assert "ghost: no such layer" in str(caught.value)
    assert not driver.exists("ghost")
    assert not driver.is_mounted("ghost")


def test_remove_of_unknown_layer_chains_the_cause(driver: VfsDriver) -> None:
    with pytest.raises(graphdriver.LayerUnknownError) as caught:
        driver.remove("ghost")
    assert isinstance(caught.value.__cause__, FileNotFoundError)


def test_list_layers_is_sorted_and_hides_dot_entries(driver: VfsDriver) -> None:
    for layer_id in ("c", "a", "b"):
        driver.create(layer_id, None)
    (driver.layers_dir / f".create-{os.getpid()}-abc").mkdir()
    (driver.layers_dir / "stray-file").write_bytes(b"not a layer")

    assert driver.list_layers() == ["a", "b", "c"]
    assert not driver.exists(f".create-{os.getpid()}-abc")


def dead_pid() -> int:
    """The pid of a process that has exited and been reaped."""
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_leftovers_of_dead_processes_are_removed_at_start(home: Path) -> None:
    layers = home / "dir"
    stale = layers / f".create-{dead_pid()}-0a0b"
    (stale / "usr" / "bin").mkdir(parents=True)
    (stale / "usr" / "bin" / "half").write_bytes(b"half a layer")
    os.chmod(stale / "usr", 0o555)
    gone = layers / f".remove-{dead_pid()}-0c0d"
    gone.mkdir()
    ours = layers / f".create-{os.getpid()}-0e0f"
    ours.mkdir()

    drv = graphdriver.get_driver("vfs", home)

    assert not stale.exists()
    assert not gone.exists()
    assert ours.exists()
    assert drv.list_layers() == []


def test_status_and_metadata(driver: VfsDriver) -> None:
    driver.create("a", None)
    driver.create("b", "a")

    status = dict(driver.status())

    assert list(status) == ["Backing Filesystem", "Copy", "Layers"]
    assert status["Layers"] == "2"
    assert status["Copy"] == probe_method(driver.layers_dir)
    assert status["Copy"] in METHODS
    assert status["Backing Filesystem"] not in ("", "unknown")
    assert driver.metadata("b") == {"Path": str(driver.layers_dir / "b")}


def test_cleanup_drops_every_reference(driver: VfsDriver) -> None:
    driver.create("a", None)
    driver.create("b", None)
    driver.get("a")
    driver.get("a")
    driver.get("b")

    driver.cleanup()

    assert not driver.is_mounted("a")
    driver.remove("a")
    driver.remove("b")
    assert driver.list_layers() == []


@pytest.mark.parametrize(
    "options",
    [{"bogus": "1"}, {"copy": "fast"}, {"vfs.copy": ""}, {"skip_devices": "maybe"}],
)
def test_bad_options_are_refused(home: Path, options: dict[str, str]) -> None:
    with pytest.raises(graphdriver.InvalidOptionError) as caught:
        graphdriver.get_driver("vfs", home, options)
    assert caught.value.driver == "vfs"
    assert next(iter(options)) in str(caught.value)


def test_explicit_copy_mode_is_used(home: Path) -> None:
    drv = graphdriver.get_driver("vfs", home, {"vfs.copy": "readwrite", "skip_devices": "yes"})
    assert isinstance(drv, VfsDriver)
    drv.create("a", None)
    fill(drv, "a", {"f": b"x" * 10_000})
    drv.create("b", "a")

    assert dict(drv.status())["Copy"] == "readwrite"
    assert (drv.get("b") / "f").read_bytes() == b"x" * 10_000
    assert drv.unpack_options() == {"skip_devices": True}
    drv.cleanup()


def test_skip_devices_defaults_to_false(driver: VfsDriver) -> None:
    assert driver.unpack_options() == {"skip_devices": False}


def test_reflink_mode_is_refused_where_the_filesystem_has_none(home: Path) -> None:
    home.mkdir(parents=True)
    if probe_method(home) == "reflink":
        pytest.skip("the filesystem of the home supports reflinks")
    with pytest.raises(graphdriver.InvalidOptionError, match="copy=reflink") as caught:
        graphdriver.get_driver("vfs", home, {"copy": "reflink"})
    assert isinstance(caught.value.__cause__, OSError)


def test_apply_diff_unpacks_a_layer_tar(driver: VfsDriver) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, content in (("etc/motd", b"hello\n"), ("bin/tool", b"\x7fELF" + bytes(100))):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(content), 0o755, 1_600_000_000
            tar.addfile(info, io.BytesIO(content))
    buffer.seek(0)
    driver.create("layer", None)

    size = driver.apply_diff("layer", None, buffer)

    root = driver.get("layer")
    assert size == 6 + 104
    assert (root / "etc/motd").read_bytes() == b"hello\n"
    assert os.lstat(root / "bin/tool").st_mtime == 1_600_000_000
    driver.put("layer")
    assert not driver.is_mounted("layer")


def test_rename_noreplace_refuses_even_an_empty_target(tmp_path: Path) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "taken").mkdir()
    with pytest.raises(FileExistsError):
        rename_noreplace(str(tmp_path / "new"), str(tmp_path / "taken"))
    rename_noreplace(str(tmp_path / "new"), str(tmp_path / "free"))
    assert (tmp_path / "free").is_dir()
    assert not (tmp_path / "new").exists()


# -- with privilege: a full filesystem, and the driver as an unprivileged user ---------------


@pytest.fixture
def small_fs(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs mounted under tmp_path, unmounted even when the test fails."""
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", mount_point],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {result.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", mount_point], check=True)


@pytest.mark.root
@needs_root
def test_a_failed_copy_leaves_no_layer_and_no_leftovers(small_fs: Path) -> None:
    drv = graphdriver.get_driver("vfs", small_fs / "vfs")
    assert isinstance(drv, VfsDriver)
    drv.create("base", None)
    fill(drv, "base", {"big": random.Random(1).randbytes(3 << 20)})

    with pytest.raises(graphdriver.GraphDriverError) as caught:
        drv.create("child", "base")

    assert caught.value.layer_id == "child"
    assert "creating layer child: copying parent layer base" in str(caught.value)
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__cause__.errno == errno.ENOSPC
    assert drv.list_layers() == ["base"]
    assert hidden_entries(drv) == []


@pytest.fixture
def nobody_home() -> Iterator[Path]:
    """A driver home outside the root-only pytest tmp tree, owned by nobody."""
    parent = Path(tempfile.mkdtemp(prefix="pydock-vfs-", dir="/var/tmp"))
    os.chmod(parent, 0o755)
    os.chown(parent, NOBODY, NOBODY)
    try:
        yield parent / "vfs"
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", parent], check=True)


@pytest.mark.root
@needs_root
def test_unprivileged_driver_owns_its_layers_and_removes_read_only_trees(
    nobody_home: Path,
) -> None:
    def scenario() -> None:
        drv = graphdriver.get_driver("vfs", nobody_home)
        drv.create("base", None)
        root = drv.get("base")
        assert (os.lstat(root).st_uid, os.lstat(root).st_gid) == (NOBODY, NOBODY)
        (root / "ro" / "deeper").mkdir(parents=True)
        (root / "ro" / "deeper" / "file").write_bytes(b"locked in")
        os.chmod(root / "ro" / "deeper", 0o500)
        os.chmod(root / "ro", 0o555)
        drv.put("base")
        drv.create("child", "base")
        assert tree_state(drv.get("child")) == tree_state(drv.get("base"))
        drv.cleanup()
        drv.remove("child")
        drv.remove("base")
        assert drv.list_layers() == []

    status, message = as_nobody(scenario)

    assert status == 0, message
    assert not any(name.startswith(".") for name in os.listdir(nobody_home / "dir"))
