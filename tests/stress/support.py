"""Helpers of the stress suite: the CLI as a subprocess, kills, and "nothing left over".

The suite runs short in CI and long with ``PYDOCK_STRESS=long`` (the figures the reliability
issue asks for). Every random choice comes from a seeded generator; every wait is bounded.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from integration.containers_support import clean_env, processes_of

from graphdriver.mountutil import mounts_under

LONG = os.environ.get("PYDOCK_STRESS") == "long"
SEED = int(os.environ.get("PYDOCK_STRESS_SEED", "20261206"))


def command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pydock", "--root", str(root), *args]


def pydock(root: Path, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = clean_env()
    return subprocess.run(
        command(root, *args), capture_output=True, text=True, timeout=timeout, env=env
    )


def ok(root: Path, *args: str) -> str:
    done = pydock(root, *args)
    assert done.returncode == 0, (args, done.stdout, done.stderr)
    return done.stdout


def run_and_kill(root: Path, args: list[str], after: float) -> int | None:
    """Start ``pydock ARGS``, SIGKILL it after ``after`` seconds; its status if it ended first."""
    env = clean_env()
    process = subprocess.Popen(
        command(root, *args),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        return process.wait(timeout=after)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        return None


def processes_under(root: Path) -> list[str]:
    """Processes (but this test's) whose command line names the root: monitors, FUSE servers."""
    found = []
    for pid in processes_of(root):
        try:
            found.append(Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def settle(root: Path, timeout: float = 30) -> None:
    """Wait until no container of ``root`` runs any more (``ps`` records those that ended)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        running = ok(root, "ps", "-q")
        if not running.strip():
            return
        time.sleep(0.2)
    raise AssertionError(f"containers still running after {timeout} s: {running}")


def assert_nothing_left(root: Path) -> None:
    """The store agrees with the disk: system check is clean, no mount, no stray process."""
    settle(root)
    done = pydock(root, "system", "check")
    assert (done.returncode, done.stdout) == (0, "no problems found\n"), done.stdout + done.stderr
    assert mounts_under(root) == [], mounts_under(root)
    deadline = time.monotonic() + 10
    while (left := processes_under(root)) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert left == []
    stray = [
        name
        for home in ("overlay", "vfs")
        if (root / home).is_dir()
        for name in os.listdir(root / home)
        if name.startswith((".creating-", ".removing-", ".probe-"))
    ]
    assert stray == []
    temporary = [n for n in os.listdir(root / "blobs" / "sha256") if n.startswith(".tmp-")]
    assert temporary == []
