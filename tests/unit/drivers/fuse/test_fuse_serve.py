"""Building one mount before anything is mounted: libfuse's options and the work dir."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.fuse.errors import SetupError
from drivers.fuse.options import parse
from drivers.fuse.serve import FSNAME, build, fuse_options


def test_a_given_fsname_replaces_the_default_and_ro_follows_the_upper() -> None:
    chosen = fuse_options(parse(["lowerdir=/l,fsname=images,relatime"]).options, read_only=True)
    assert "fsname=images" in chosen and f"fsname={FSNAME}" not in chosen
    assert f"subtype={FSNAME}" in chosen and "default_permissions" in chosen
    assert "ro" in chosen
    assert "atime" in chosen and "noatime" not in chosen  # an atime flag given: no default
    writable = fuse_options(parse(["lowerdir=/l"]).options, read_only=False)
    assert "ro" not in writable and "noatime" in writable and f"fsname={FSNAME}" in writable


def test_a_work_dir_that_cannot_be_prepared_is_refused_before_mounting(tmp_path: Path) -> None:
    for name in ("lower", "upper", "work"):
        (tmp_path / name).mkdir()
    # The filesystem's private dir in the work dir is taken by a file it cannot empty.
    (tmp_path / "work" / "pydock-fuse").write_text("not a directory")
    options = parse(["lowerdir=lower,upperdir=upper,workdir=work"], cwd=str(tmp_path)).options
    with pytest.raises(SetupError) as caught:
        build([str(tmp_path / "lower")], str(tmp_path / "upper"), str(tmp_path / "work"), options)
    assert str(caught.value) == f"preparing work dir {tmp_path}/work: Not a directory"
    assert caught.value.path == str(tmp_path / "work")
