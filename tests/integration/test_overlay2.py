"""overlay2 specifics the shared conformance suite does not cover: restarts, mount failures,
the legacy mount API and its depth limit, the 500-lower-layer limit, native vs naive diff."""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from unit.graphdriver.tarmaker import Item, make_tar

import graphdriver
from graphdriver import LayerInUseError, MountError, NotSupportedError
from graphdriver.changes import changes_dirs
from graphdriver.mountutil import detach, mount_table, mounts_under

pytestmark = [pytest.mark.overlay, pytest.mark.root]


def mounts_at(path: Path) -> int:
    target = os.fspath(path)
    return sum(1 for point, _ in mount_table() if point == target)


@pytest.fixture
def home(tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "overlay"
    yield home
    # Whatever a test left mounted goes, so tmp_path can be removed.
    for target in mounts_under(home):
        with contextlib.suppress(OSError):
            detach(Path(target))


def open_overlay(home: Path, **options: str) -> graphdriver.Driver:
    try:
        return graphdriver.get_driver("overlay2", home, options)
    except NotSupportedError as exc:
        pytest.skip(f"overlay2 not supported here: {exc}")


def chain(driver: graphdriver.Driver, count: int, prefix: str = "l") -> list[str]:
    ids: list[str] = []
    for k in range(count):
        layer_id = f"{prefix}{k:04d}"
        driver.create(layer_id, ids[-1] if ids else None)
        ids.append(layer_id)
    return ids


def test_restart_adopts_existing_mount(home: Path) -> None:
    first = open_overlay(home)
    ids = chain(first, 3)
    merged = first.get(ids[-1])
    assert mounts_at(merged) == 1
    second = open_overlay(home)  # a new process's driver: knows no refcounts
    assert second.get(ids[-1]) == merged
    assert mounts_at(merged) == 1, "the existing mount must be adopted, not mounted again"
    second.put(ids[-1])
    assert mounts_at(merged) == 0
    second.put(ids[-1])  # a put with no get: nothing happens
    assert mounts_at(merged) == 0


def test_missing_lower_is_a_mount_error_and_leaves_nothing(home: Path) -> None:
    driver = open_overlay(home)
    ids = chain(driver, 3)
    shutil.rmtree(home / ids[1] / "diff")
    with pytest.raises(MountError, match=ids[2]) as info:
        driver.get(ids[2])
    assert info.value.layer_id == ids[2]
    assert mounts_at(home / ids[2] / "merged") == 0
    assert driver.counter.count(ids[2]) == 0
    driver.remove(ids[2])  # no stale reference keeps it "in use"
    assert not driver.exists(ids[2])


def test_remove_mounted_layer_is_refused(home: Path) -> None:
    driver = open_overlay(home)
    ids = chain(driver, 2)
    driver.get(ids[1])
    with pytest.raises(LayerInUseError):
        driver.remove(ids[1])
    driver.put(ids[1])
    driver.remove(ids[1])


def test_busy_mount_is_detached_on_put(home: Path) -> None:
    driver = open_overlay(home)
    ids = chain(driver, 2)
    merged = driver.get(ids[1])
    handle = open(merged / "busy", "w")  # noqa: SIM115
    try:
        driver.put(ids[1])  # EBUSY on a plain unmount: falls back to a lazy detach
        assert mounts_at(merged) == 0
    finally:
        handle.close()


def test_legacy_mount_api_and_its_depth_limit(home: Path) -> None:
    driver = open_overlay(home, mount_api="legacy")
    assert ("Mount API", "legacy mount(2)") in driver.status()
    ids = chain(driver, 129)  # 128 lowers under the top layer: the most one page allows
    top = driver.get(ids[-1])
    assert sorted(os.listdir(top)) == []
    driver.put(ids[-1])
    with pytest.raises(graphdriver.GraphDriverError, match="128"):
        driver.create("too-deep", ids[-1])


def test_new_api_stacks_500_lower_layers_and_refuses_501(home: Path) -> None:
    driver = open_overlay(home)
    if ("Mount API", "new (fsopen, lowerdir+)") not in driver.status():
        pytest.skip("the kernel lacks overlay lowerdir+ (Linux 6.8+)")
    ids = chain(driver, 501)
    data = make_tar([Item("deep", data=b"from layer 500")])
    driver.apply_diff(ids[-1], ids[-2], io.BytesIO(data))
    top = driver.get(ids[-1])
    try:
        assert (top / "deep").read_bytes() == b"from layer 500"
        assert mounts_at(top) == 1
    finally:
        driver.put(ids[-1])
    with pytest.raises(graphdriver.GraphDriverError, match="500"):
        driver.create("layer-502", ids[-1])


def test_native_diff_matches_naive_diff(home: Path) -> None:
    driver = open_overlay(home)
    driver.create("base", None)
    base_tar = make_tar(
        [
            Item("etc", "dir", mode=0o755),
            Item("etc/a", data=b"a"),
            Item("etc/b", data=b"b"),
            Item("opt", "dir"),
            Item("opt/x", data=b"x"),
            Item("opt/sub", "dir"),
            Item("opt/sub/y", data=b"y"),
            Item("lib", "symlink", link="etc"),
        ]
    )
    driver.apply_diff("base", None, io.BytesIO(base_tar))
    driver.create_read_write("rw", "base")
    root = driver.get("rw")
    try:
        (root / "etc" / "a").write_bytes(b"changed")
        os.unlink(root / "etc" / "b")
        shutil.rmtree(root / "opt")
        (root / "opt").mkdir()
        (root / "opt" / "fresh").write_bytes(b"f")
        (root / "new").mkdir()
        (root / "new" / "file").write_bytes(b"n")
        native = driver.changes("rw", "base")
        base_root = driver.get("base")
        try:
            naive = changes_dirs(root, base_root)
        finally:
            driver.put("base")
    finally:
        driver.put("rw")
    assert native == naive
    assert {str(c) for c in native} >= {"D /etc/b", "C /etc/a", "A /opt/fresh", "D /opt/x"}


def test_apply_follows_parent_layer_symlinks_like_a_full_copy(home: Path) -> None:
    driver = open_overlay(home)
    driver.create("base", None)
    driver.apply_diff(
        "base",
        None,
        io.BytesIO(
            make_tar(
                [Item("usr", "dir"), Item("usr/lib", "dir"), Item("lib", "symlink", link="usr/lib")]
            )
        ),
    )
    driver.create("child", "base")
    driver.apply_diff("child", "base", io.BytesIO(make_tar([Item("lib/libc.so", data=b"elf")])))
    root = driver.get("child")
    try:
        assert (root / "lib").is_symlink()
        assert (root / "usr" / "lib" / "libc.so").read_bytes() == b"elf"
    finally:
        driver.put("child")
