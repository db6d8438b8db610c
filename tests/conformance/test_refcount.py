"""Mount reference counting: ``get``/``put`` pairs, and removal while mounted."""

from __future__ import annotations

import pytest

import graphdriver

from .helpers import write


def test_nested_get_returns_same_path(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    driver.create_read_write("rw", "base")
    first = driver.get("rw")
    try:
        second = driver.get("rw")
        try:
            assert second == first
            write(first / "through-first", b"1")
            assert (second / "through-first").read_bytes() == b"1"
        finally:
            driver.put("rw")
        # One reference is still held: the tree stays readable.
        assert (first / "through-first").read_bytes() == b"1"
    finally:
        driver.put("rw")


def test_remove_while_mounted(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    driver.create_read_write("rw", "base")
    driver.get("rw")
    driver.get("rw")
    with pytest.raises(graphdriver.LayerInUseError) as info:
        driver.remove("rw")
    assert info.value.layer_id == "rw"
    driver.put("rw")
    with pytest.raises(graphdriver.LayerInUseError):
        driver.remove("rw")
    assert driver.exists("rw")
    driver.put("rw")
    driver.remove("rw")
    assert not driver.exists("rw")
    assert driver.list_layers() == ["base"]


def test_put_without_get_is_a_no_op(driver: graphdriver.Driver) -> None:
    driver.create("layer", None)
    driver.put("layer")
    root = driver.get("layer")
    driver.put("layer")
    driver.put("layer")
    # The extra put did not leave a negative count behind: one get, one put, then remove.
    root = driver.get("layer")
    write(root / "f", b"still usable")
    driver.put("layer")
    driver.remove("layer")
    assert not driver.exists("layer")


def test_get_after_put_works_again(driver: graphdriver.Driver) -> None:
    driver.create("layer", None)
    root = driver.get("layer")
    write(root / "f", b"kept across mounts")
    driver.put("layer")
    again = driver.get("layer")
    try:
        assert (again / "f").read_bytes() == b"kept across mounts"
    finally:
        driver.put("layer")


def test_is_mounted_follows_references(driver: graphdriver.Driver) -> None:
    driver.create("layer", None)
    assert not driver.is_mounted("layer")
    driver.get("layer")
    driver.get("layer")
    assert driver.is_mounted("layer")
    driver.put("layer")
    assert driver.is_mounted("layer")
    driver.put("layer")
    assert not driver.is_mounted("layer")


def test_cleanup_releases_everything(driver: graphdriver.Driver) -> None:
    driver.create("a", None)
    driver.create_read_write("b", "a")
    driver.get("a")
    driver.get("b")
    driver.get("b")
    driver.cleanup()
    # After cleanup nothing is held, so both layers can go.
    driver.remove("b")
    driver.remove("a")
    assert driver.list_layers() == []
