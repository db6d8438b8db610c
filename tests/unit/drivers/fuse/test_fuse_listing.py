"""Merging one directory over its layers: whiteouts, opaque markers, what lies below a name."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from drivers.fuse.layers import LayerStack
from drivers.fuse.listing import Merged, merge


@pytest.fixture
def stack(tmp_path: Path) -> LayerStack:
    for name in ("upper", "l1", "l2", "work"):
        (tmp_path / name / "d").mkdir(parents=True)
    return LayerStack(
        [str(tmp_path / "l1"), str(tmp_path / "l2")],
        str(tmp_path / "upper"),
        str(tmp_path / "work"),
    )


def touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")


def whiteout(path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("0/0 character devices need uid 0")
    os.mknod(path, stat.S_IFCHR, os.makedev(0, 0))


def merged(stack: LayerStack) -> Merged:
    return merge(stack, b"d", [0, 1, 2])


def layer(stack: LayerStack, index: int) -> Path:
    return Path(os.fsdecode(stack.layers[index].root)) / "d"


def test_nearest_layer_wins_and_records_what_is_below(stack: LayerStack) -> None:
    touch(layer(stack, 0) / "both")
    touch(layer(stack, 2) / "both")
    touch(layer(stack, 2) / "only-low")
    result = merged(stack)
    assert set(result.entries) == {b"both", b"only-low"}
    assert result.entries[b"both"].layer == 0 and result.entries[b"both"].below
    assert result.entries[b"only-low"].layer == 2 and not result.entries[b"only-low"].below


def test_whiteout_file_hides_lower_layers_only(stack: LayerStack) -> None:
    touch(layer(stack, 1) / ".wh.x")
    touch(layer(stack, 2) / "x")
    touch(layer(stack, 0) / ".wh.y")
    touch(layer(stack, 0) / "y")  # deleted and made again in the same layer
    touch(layer(stack, 2) / "y")
    result = merged(stack)
    assert b"x" not in result.entries
    assert result.entries[b"y"].layer == 0
    assert not result.entries[b"y"].below  # the lower y stays hidden by .wh.y
    assert result.upper_whiteouts == {b"y"}


def test_chardev_whiteout(stack: LayerStack) -> None:
    whiteout(layer(stack, 0) / "gone")
    touch(layer(stack, 1) / "gone")
    result = merged(stack)
    assert b"gone" not in result.entries
    assert result.upper_whiteouts == {b"gone"}


def test_directories_merge_until_a_non_directory(stack: LayerStack) -> None:
    (layer(stack, 0) / "sub").mkdir()
    (layer(stack, 1) / "sub").mkdir()
    touch(layer(stack, 2) / "sub")
    entry = merged(stack).entries[b"sub"]
    assert entry.dirlayers == [0, 1]
    assert entry.below and entry.sealed


def test_directory_over_whiteout_does_not_merge(stack: LayerStack) -> None:
    (layer(stack, 0) / "sub").mkdir()
    touch(layer(stack, 1) / ".wh.sub")
    (layer(stack, 2) / "sub").mkdir()
    entry = merged(stack).entries[b"sub"]
    assert entry.dirlayers == [0]
    assert not entry.below


@pytest.mark.parametrize("marker", ["file", "user"])
def test_opaque_directory_stops_the_merge(stack: LayerStack, marker: str) -> None:
    if marker == "file":
        touch(layer(stack, 1) / ".wh..wh..opq")
    else:
        os.setxattr(layer(stack, 1), "user.overlay.opaque", b"y")
    touch(layer(stack, 1) / "kept")
    touch(layer(stack, 2) / "hidden")
    result = merged(stack)
    assert result.layers == [0, 1]
    assert set(result.entries) == {b"kept"}


def test_meta_names_are_never_shown(stack: LayerStack) -> None:
    touch(layer(stack, 2) / ".wh..wh.plnk")
    touch(layer(stack, 2) / "real")
    assert set(merged(stack).entries) == {b"real"}


def test_missing_layer_directory_is_skipped(stack: LayerStack) -> None:
    os.rmdir(layer(stack, 1))
    touch(layer(stack, 2) / "low")
    result = merged(stack)
    assert result.layers == [0, 2]
    assert set(result.entries) == {b"low"}
