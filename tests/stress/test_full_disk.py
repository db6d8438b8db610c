"""A full disk: every command that reads or frees space works; a write fails in one line that
says it was the write, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 to mount a small tmpfs"),
    pytest.mark.timeout(180),
]


def pydock(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pydock", "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def ok(root: Path, *args: str) -> str:
    done = pydock(root, *args)
    assert done.returncode == 0 and done.stderr == "", (args, done.stderr)
    return done.stdout


@pytest.fixture
def disk(tmp_path: Path) -> Iterator[Path]:
    """A 64 MiB file system of the test's own."""
    mountpoint = tmp_path / "disk"
    mountpoint.mkdir()
    subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mountpoint)], check=True, timeout=30
    )
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", "-R", "-l", str(mountpoint)], capture_output=True, timeout=30)


def fill(disk: Path) -> None:
    with open(disk / "filler", "wb") as out:
        chunk = bytes(1 << 20)
        try:
            while True:
                out.write(chunk)
                out.flush()
        except OSError:
            pass
    free = os.statvfs(disk)
    assert free.f_bavail * free.f_frsize < (1 << 20)


@pytest.mark.parametrize("storage", ["overlay2", "vfs"])
def test_reading_and_freeing_commands_work_on_a_full_disk(disk: Path, storage: str) -> None:
    root = disk / "root"
    ok(root, "--storage", storage, "import", "builtin:busybox", "busybox")
    ok(root, "--storage", storage, "tag", "busybox", "other:1")
    name = ok(root, "--storage", storage, "create", "--name", "c1", "busybox", "true").strip()
    assert name
    rnd = disk.parent / "layer.tar"
    (disk.parent / "big").write_bytes(os.urandom(4 << 20))
    subprocess.run(["tar", "-cf", str(rnd), "-C", str(disk.parent), "big"], check=True)
    fill(disk)

    for command in (["images"], ["ps", "-a"], ["inspect", "busybox"], ["system", "df"],
                    ["history", "busybox"], ["info"]):  # fmt: skip
        ok(root, "--storage", storage, *command)
    blobs_before = sorted(os.listdir(root / "blobs" / "sha256"))
    failed = pydock(root, "--storage", storage, "import", str(rnd), "big:1")
    assert failed.returncode == 125
    assert failed.stderr.startswith("pydock: importing ") and "writing to " in failed.stderr
    assert "no space left on device" in failed.stderr and len(failed.stderr.splitlines()) == 1
    assert sorted(os.listdir(root / "blobs" / "sha256")) == blobs_before

    assert ok(root, "--storage", storage, "rm", "c1") == "c1\n"
    ok(root, "--storage", storage, "rmi", "other:1")
    ok(root, "--storage", storage, "rmi", "busybox")
    ok(root, "--storage", storage, "system", "prune", "-f")
    assert ok(root, "--storage", storage, "images", "-q") == ""
    assert os.listdir(root / "blobs" / "sha256") == []
