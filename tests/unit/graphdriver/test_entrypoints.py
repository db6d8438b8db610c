"""The entry-point reader against hand-made metadata directories and against importlib.metadata."""

from __future__ import annotations

import sys
from importlib import metadata
from pathlib import Path

from graphdriver.entrypoints import entry_points


def _dist(where: Path, directory: str, text: str | None) -> None:
    meta = where / directory
    meta.mkdir(parents=True)
    if text is not None:
        (meta / "entry_points.txt").write_text(text)


def test_reads_one_group_and_the_first_distribution_of_a_name_wins(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    _dist(first, "extra_drivers-1.0.dist-info",
          "# a comment\n[pydock.graphdrivers]\nzfs = extra.zfs:ZfsDriver\n\n"
          "[console_scripts]\nextra = extra:main\n")  # fmt: skip
    _dist(second, "Extra.Drivers-2.0.dist-info", "[pydock.graphdrivers]\nold = extra.old:Old\n")
    _dist(second, "other-0.1.egg-info", "[pydock.graphdrivers]\n btrfs =  other:Btrfs \n")
    _dist(second, "no_entry_points-1.dist-info", None)
    (second / "not-metadata.txt").write_text("[pydock.graphdrivers]\nx = y:z\n")

    found = entry_points("pydock.graphdrivers", [str(first), str(second), str(tmp_path / "none")])

    assert [(e.name, e.value, e.distribution) for e in found] == [
        ("zfs", "extra.zfs:ZfsDriver", "extra_drivers"),
        ("btrfs", "other:Btrfs", "other"),
    ]


def test_load_imports_the_named_attribute(tmp_path: Path) -> None:
    _dist(tmp_path, "demo-1.dist-info", "[g]\npath = os.path:join\nmodule = json\n")
    loaded = {e.name: e.load() for e in entry_points("g", [str(tmp_path)])}
    import json
    import os.path

    assert loaded == {"path": os.path.join, "module": json}


def test_agrees_with_importlib_metadata_on_this_environment() -> None:
    for group in ("pydock.graphdrivers", "console_scripts", "pytest11"):
        ours = sorted((e.name, e.value) for e in entry_points(group, sys.path))
        reference = sorted((e.name, e.value) for e in metadata.entry_points(group=group))
        assert ours == reference, group
    assert {e.name for e in entry_points("pydock.graphdrivers")} >= {"overlay2", "vfs", "fuse"}
