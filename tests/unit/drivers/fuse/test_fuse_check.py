"""The checks made before mounting, on real directories: each refusal is one clear line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from drivers.fuse import check
from drivers.fuse.check import check_fuse, check_layers, check_mountpoint
from drivers.fuse.errors import SetupError


def refusal(call: object, *args: object) -> str:
    assert callable(call)
    with pytest.raises(SetupError) as caught:
        call(*args)
    return str(caught.value)


def test_a_missing_or_unopenable_dev_fuse_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(check, "DEV_FUSE", str(tmp_path / "fuse"))
    assert refusal(check_fuse) == "no /dev/fuse"
    (tmp_path / "fuse").mkdir()  # there, but not a device that opens read-write
    assert refusal(check_fuse) == f"cannot open {tmp_path}/fuse: Is a directory"


@pytest.fixture
def dirs(tmp_path: Path) -> dict[str, str]:
    for name in ("lower", "upper", "work", "mnt"):
        (tmp_path / name).mkdir()
    (tmp_path / "file").write_text("")
    return {name: str(tmp_path / name) for name in ("lower", "upper", "work", "mnt", "file")}


def test_good_layers_pass(dirs: dict[str, str]) -> None:
    check_layers((dirs["lower"],), dirs["upper"], dirs["work"])
    check_layers((dirs["lower"],), None, None)
    check_mountpoint(dirs["mnt"])


def test_layers_that_are_missing_or_not_directories_are_refused(dirs: dict[str, str]) -> None:
    lower, upper, work, file = dirs["lower"], dirs["upper"], dirs["work"], dirs["file"]
    assert refusal(check_layers, (), None, None) == "no lower dir given"
    not_dir = f"lower dir {file} is not a directory"
    assert refusal(check_layers, (lower, file), None, None) == not_dir
    below = f"{file}/below"
    assert refusal(check_layers, (below,), None, None) == f"lower dir {below}: Not a directory"
    missing = f"{work}/x"
    assert refusal(check_layers, (lower,), upper, missing) == f"work dir {missing} does not exist"
    assert refusal(check_layers, (lower,), file, work) == f"upper dir {file} is not a directory"


def test_work_dir_on_another_filesystem_is_refused(dirs: dict[str, str]) -> None:
    # The copy-up renames from the work dir into the upper dir: both on one filesystem.
    assert os.stat("/proc").st_dev != os.stat(dirs["upper"]).st_dev
    message = refusal(check_layers, (dirs["lower"],), dirs["upper"], "/proc")
    assert message == f"work dir /proc is not on the filesystem of upper dir {dirs['upper']}"


@pytest.mark.parametrize(
    ("upper", "work", "message"),
    [
        ("upper", "upper/w", "upper dir {upper} and work dir {upper}/w overlap"),
        ("lower/u", "lower/w", "lower dir {lower} and upper dir {lower}/u overlap"),
        ("upper", "lower/w", "lower dir {lower} and work dir {lower}/w overlap"),
        ("upper", "upper", "upper dir {upper} and work dir {upper} overlap"),
    ],
)
def test_overlapping_layers_are_refused(
    dirs: dict[str, str], upper: str, work: str, message: str
) -> None:
    base = Path(dirs["lower"]).parent
    for name in (upper, work):
        (base / name).mkdir(exist_ok=True)
    got = refusal(check_layers, (dirs["lower"],), str(base / upper), str(base / work))
    assert got == message.format(lower=dirs["lower"], upper=dirs["upper"])


def test_a_mountpoint_that_is_no_directory_or_already_mounted_is_refused(
    dirs: dict[str, str],
) -> None:
    file = dirs["file"]
    assert refusal(check_mountpoint, file) == f"mountpoint {file} is not a directory"
    missing = f"{dirs['mnt']}/missing"
    assert refusal(check_mountpoint, missing) == f"mountpoint {missing} does not exist"
    assert refusal(check_mountpoint, "/proc") == "mountpoint /proc is busy: already a mount point"
