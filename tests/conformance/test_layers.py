"""Layer life cycle: create, exists, list, remove, errors for unknown and duplicate ids."""

from __future__ import annotations

import io
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

import graphdriver

from .helpers import Workspace, close_driver, mounted, mounts_under, open_driver, write


def _expected_owner() -> tuple[int, int]:
    return (0, 0) if os.geteuid() == 0 else (os.getuid(), os.getgid())


def test_vfs_is_registered() -> None:
    # vfs is the driver that works everywhere; without it the suite would run on nothing.
    assert "vfs" in graphdriver.registered()


@pytest.mark.parametrize("make", ["create", "create_read_write"])
def test_create_empty(driver: graphdriver.Driver, make: str) -> None:
    getattr(driver, make)("empty", None)
    assert driver.exists("empty")
    assert driver.list_layers() == ["empty"]
    with mounted(driver, "empty") as root:
        st = os.lstat(root)
        assert stat.S_ISDIR(st.st_mode)
        assert stat.S_IMODE(st.st_mode) == 0o755, oct(st.st_mode)
        assert (st.st_uid, st.st_gid) == _expected_owner()
        assert os.listdir(root) == []


def test_create_empty_ignores_umask(driver: graphdriver.Driver) -> None:
    old = os.umask(0o077)
    try:
        driver.create("strict-umask", None)
        root = driver.get("strict-umask")
    finally:
        os.umask(old)
    try:
        assert stat.S_IMODE(os.lstat(root).st_mode) == 0o755
    finally:
        driver.put("strict-umask")


def test_list_and_remove(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    driver.create("mid", "base")
    driver.create_read_write("top", "mid")
    assert driver.list_layers() == ["base", "mid", "top"]
    assert all(driver.exists(i) for i in ("base", "mid", "top"))

    driver.remove("top")
    assert not driver.exists("top")
    assert driver.list_layers() == ["base", "mid"]
    with pytest.raises(graphdriver.LayerUnknownError):
        driver.get("top")


def test_create_twice(driver: graphdriver.Driver) -> None:
    driver.create("dup", None)
    with mounted(driver, "dup") as root:
        write(root / "marker", b"first")
    with pytest.raises(graphdriver.LayerExistsError) as info:
        driver.create("dup", None)
    assert info.value.layer_id == "dup"
    with pytest.raises(graphdriver.LayerExistsError):
        driver.create_read_write("dup", None)
    # The failed creates left the first layer alone.
    with mounted(driver, "dup") as root:
        assert (root / "marker").read_bytes() == b"first"


_UNKNOWN_OPERATIONS: dict[str, Callable[[graphdriver.Driver], object]] = {
    "get": lambda d: d.get("nope"),
    "remove": lambda d: d.remove("nope"),
    "metadata": lambda d: d.metadata("nope"),
    "changes": lambda d: d.changes("nope", None),
    "diff": lambda d: d.diff("nope", None),
    "diff_size": lambda d: d.diff_size("nope", None),
    "apply_diff": lambda d: d.apply_diff("nope", None, io.BytesIO(b"\0" * 1024)),
}


@pytest.mark.parametrize("operation", sorted(_UNKNOWN_OPERATIONS))
def test_unknown_layer(driver: graphdriver.Driver, operation: str) -> None:
    driver.create("known", None)
    with pytest.raises(graphdriver.LayerUnknownError) as info:
        _UNKNOWN_OPERATIONS[operation](driver)
    assert info.value.layer_id == "nope"
    assert driver.list_layers() == ["known"]


@pytest.mark.parametrize("make", ["create", "create_read_write"])
def test_create_on_unknown_parent(driver: graphdriver.Driver, make: str) -> None:
    with pytest.raises(graphdriver.LayerUnknownError):
        getattr(driver, make)("orphan", "no-such-parent")
    assert not driver.exists("orphan")
    assert driver.list_layers() == []


def test_errors_name_layer_and_driver(driver: graphdriver.Driver, driver_name: str) -> None:
    driver.create("named", None)
    with pytest.raises(graphdriver.LayerUnknownError) as unknown:
        driver.get("missing")
    with pytest.raises(graphdriver.LayerExistsError) as exists:
        driver.create("named", None)
    for error in (unknown.value, exists.value):
        assert isinstance(error, graphdriver.GraphDriverError)
        assert error.driver == driver_name, f"{type(error).__name__}.driver = {error.driver!r}"


def test_status_and_metadata(driver: graphdriver.Driver) -> None:
    driver.create("meta", None)
    status = driver.status()
    assert isinstance(status, list)
    assert all(
        isinstance(item, tuple) and len(item) == 2 and all(isinstance(s, str) for s in item)
        for item in status
    ), status
    meta = driver.metadata("meta")
    assert isinstance(meta, dict)
    assert all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()), meta


def test_unknown_option(driver_name: str, workspace: Workspace) -> None:
    with pytest.raises(graphdriver.InvalidOptionError):
        graphdriver.get_driver(driver_name, workspace.home, {"no-such-option": "1"})


def test_layers_survive_restart(driver_name: str, tmp_path: Path) -> None:
    home = tmp_path / "restart-home"
    first = open_driver(driver_name, home)
    try:
        first.create("base", None)
        with mounted(first, "base") as root:
            write(root / "kept", b"written before the restart")
        first.create_read_write("rw", "base")
    finally:
        first.cleanup()

    second = open_driver(driver_name, home)
    try:
        assert second.list_layers() == ["base", "rw"]
        with mounted(second, "rw") as root:
            assert (root / "kept").read_bytes() == b"written before the restart"
    finally:
        close_driver(second, home)


class SharedHome:
    """Two drivers on one home, as two processes (or two threads' engines) have: the first
    made ``base`` and ``rw`` on it; both are cleaned up on the way out."""

    def __init__(self, driver_name: str, home: Path) -> None:
        self.name, self.home = driver_name, home
        self.first = open_driver(driver_name, home)
        self.second: graphdriver.Driver | None = None

    def __enter__(self) -> SharedHome:
        try:
            self.first.create("base", None)
            self.first.create_read_write("rw", "base")
        except BaseException:
            close_driver(self.first, self.home)
            raise
        return self

    def open_second(self) -> graphdriver.Driver:
        self.second = open_driver(self.name, self.home)
        return self.second

    def __exit__(self, *exc_info: object) -> None:
        if self.second is not None:
            self.second.cleanup()
        close_driver(self.first, self.home)


def test_mount_adopted_after_restart(driver_name: str, tmp_path: Path) -> None:
    """A driver started again finds the mounts an earlier one left and does not stack another."""
    with SharedHome(driver_name, tmp_path / "adopt-home") as shared:
        path = shared.first.get("rw")
        write(Path(path) / "through-first", b"1")
        before = mounts_under(shared.home)
        # The first driver is now abandoned with its mount up, as after a crash.
        second = shared.open_second()
        assert second.get("rw") == path
        assert mounts_under(shared.home) == before
        assert (Path(path) / "through-first").read_bytes() == b"1"
        second.put("rw")


def test_put_after_another_driver_removed_the_layer(driver_name: str, tmp_path: Path) -> None:
    """A reference held while another driver on the same home (another thread's engine, or
    another process) takes the mount down and removes the layer is dropped by the next put:
    the layer is gone, and a caller that puts until the layer is unmounted must get there."""
    with SharedHome(driver_name, tmp_path / "shared-home") as shared:
        first = shared.first
        first.get("rw")
        second = shared.open_second()
        second.get("rw")  # adopts the first one's mount
        second.put("rw")  # its last reference: the mount goes
        second.remove("rw")
        assert not first.exists("rw")
        first.put("rw")
        assert not first.is_mounted("rw")
        assert mounts_under(shared.home) == []


def test_adopt_takes_a_mount_that_is_up_and_never_mounts(driver_name: str, tmp_path: Path) -> None:
    """``adopt`` (how whoever sees a container exit releases its mount) takes a reference to a
    mount another driver on the same home made, and mounts nothing when none is up: a
    second recorder of the same exit must not mount a layer the first is removing."""
    with SharedHome(driver_name, tmp_path / "adopt-only-home") as shared:
        first, home = shared.first, shared.home
        nothing = mounts_under(home)
        if first.adopt("rw"):  # a driver whose get mounts nothing counts a reference
            assert mounts_under(home) == nothing
            first.put("rw")
        assert mounts_under(home) == nothing
        path = first.get("rw")
        write(Path(path) / "through-first", b"1")
        mounted = mounts_under(home)
        second = shared.open_second()
        assert second.adopt("rw")
        assert second.is_mounted("rw")
        assert mounts_under(home) == mounted  # taken over, not stacked
        second.put("rw")  # its last reference: the mount goes
        assert mounts_under(home) == nothing
        assert not second.adopt("rw") or mounts_under(home) == nothing
