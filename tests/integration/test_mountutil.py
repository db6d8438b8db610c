"""graphdriver.mountutil against real mounts, with the names mountinfo has to escape."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from graphdriver.mountutil import detach, filesystem_type, mount_table, mounts_under

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (mount)"),
]


def test_mounts_with_spaces_tabs_and_backslashes_are_found_deepest_first(tmp_path: Path) -> None:
    outer = tmp_path / "a b\tc\\d"
    inner = outer / "in ner"
    outer.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(outer)], check=True)
    try:
        inner.mkdir()
        subprocess.run(["mount", "-t", "ramfs", "ramfs", str(inner)], check=True)
        assert mounts_under(tmp_path) == [str(inner), str(outer)]
        assert mounts_under(outer) == [str(inner), str(outer)]
        assert mounts_under(inner) == [str(inner)]
        assert mounts_under(tmp_path / "a") == []  # a prefix of a name is not a parent
        assert (str(outer), "tmpfs") in mount_table()
        assert filesystem_type(outer / "file") == "tmpfs"
        assert filesystem_type(inner / "deeper" / "x") == "ramfs"
        detach(inner)
        assert filesystem_type(inner) == "tmpfs"
    finally:
        for point in mounts_under(tmp_path):
            detach(Path(point))
    assert mounts_under(tmp_path) == []
    assert filesystem_type(outer) not in ("tmpfs", "unknown")
