"""Real FUSE mounts of ``pydock-fuse-overlay`` for tests: skip reasons, mount and cleanup.

Every wait is bounded. Cleanup unmounts with ``fusermount3 -u``, falls back to ``umount -l``,
and kills the filesystem process, whatever state the test left it in.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from drivers.fuse import client
from graphdriver.mountutil import mount_points

REPO = Path(__file__).resolve().parents[2]
COMMAND = [sys.executable, "-m", "drivers.fuse.cli"]
TIMEOUT = 30.0


def missing_fuse() -> str | None:
    """Why real FUSE mounts cannot run here, or ``None`` if they can."""
    if not os.path.exists("/dev/fuse"):
        return "no /dev/fuse"
    if shutil.which("fusermount3") is None:
        return "fusermount3 not found"
    try:
        os.close(os.open("/dev/fuse", os.O_RDWR))
    except OSError as exc:
        return f"cannot open /dev/fuse: {exc.strerror}"
    try:
        import pyfuse3  # noqa: F401
        import trio  # noqa: F401
    except ImportError as exc:
        return f"{exc.name} not installed"
    return None


def run_cli(*args: str, timeout: float = TIMEOUT) -> subprocess.CompletedProcess[str]:
    """Run the command (daemon mode unless ``-f`` is passed) and capture its output."""
    return subprocess.run(
        [*COMMAND, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout
    )


def is_mounted(mountpoint: Path) -> bool:
    return os.path.realpath(mountpoint) in mount_points()


def server_pids(mountpoint: Path) -> list[int]:
    """Process ids of standalone filesystem processes serving ``mountpoint``."""
    return client.standalone_pids(mountpoint)


def unmount(mountpoint: Path) -> None:
    """Unmount and make sure no filesystem process is left, without ever hanging."""
    pids = server_pids(mountpoint)
    if is_mounted(mountpoint):
        done = subprocess.run(
            ["fusermount3", "-u", str(mountpoint)], capture_output=True, timeout=TIMEOUT
        )
        if done.returncode != 0 and is_mounted(mountpoint):
            subprocess.run(["umount", "-l", str(mountpoint)], capture_output=True, timeout=TIMEOUT)
    deadline = time.monotonic() + 10
    for pid in pids:
        while _alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        if _alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[1].split()[0] != "Z"
    except OSError:
        return False


def overlay_options(lowers: list[Path], upper: Path | None, work: Path | None) -> str:
    options = "lowerdir=" + ":".join(str(p) for p in lowers)
    if upper is not None and work is not None:
        options += f",upperdir={upper},workdir={work}"
    return options


@contextlib.contextmanager
def mounted(
    lowers: list[Path], upper: Path | None, work: Path | None, mountpoint: Path, *extra: str
) -> Iterator[Path]:
    """Mount with the command in daemon mode; always unmounted and reaped afterwards."""
    options = overlay_options(lowers, upper, work)
    if extra:
        options += "," + ",".join(extra)
    try:
        done = run_cli("-o", options, str(mountpoint))
        if done.returncode != 0:
            raise AssertionError(f"mount failed ({done.returncode}): {done.stderr.strip()}")
        assert is_mounted(mountpoint)
        yield mountpoint
    finally:
        unmount(mountpoint)


class Layers:
    """Three lower dirs (nearest first), an upper and a work dir, and the mountpoint."""

    def __init__(self, base: Path) -> None:
        self.lowers = [base / f"lower{i}" for i in range(3)]
        self.upper, self.work, self.mnt = base / "upper", base / "work", base / "mnt"
        for path in (*self.lowers, self.upper, self.work, self.mnt):
            path.mkdir()

    def write(self, layer: Path, rel: str, data: bytes = b"", mode: int = 0o644) -> Path:
        path = layer / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        os.chmod(path, mode)
        return path

    @property
    def top(self) -> Path:
        return self.lowers[0]

    @property
    def bottom(self) -> Path:
        return self.lowers[-1]
