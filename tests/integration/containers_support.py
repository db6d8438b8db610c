"""Shared pieces of the container CLI tests: running ``python -m pydock`` and looking for leaks.

Every command runs as a subprocess with its own root, through the real CLI. A leak snapshot
records what a failed command must not leave behind: mounts under the root, container cgroups,
processes forked from pydock (their command line names the root), container rows, container
directories and writable layer directories.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import graphdriver
from graphdriver import mountutil

CONTAINER_ID = re.compile(r"[0-9a-f]{64}")
IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
CGROUP_ROOT = Path("/sys/fs/cgroup")
DRIVER_MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "overlay2": (pytest.mark.overlay,),
    "fuse": (pytest.mark.fuse,),
}

# The marks of every container test that runs as root (the rootless run is its own module).
ROOT_CONTAINER_TESTS = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 (the rootless run is its own test)"),
    pytest.mark.timeout(180),
]


CONTAINER_DRIVERS = ("overlay2", "fuse", "vfs")
# Drivers a developer's machine may lack (PYDOCK_TEST_SKIP_DRIVERS=fuse,...): skipped with
# the reason. Everywhere else every driver must work, and one that does not fails its tests.
_SKIPPABLE = {n for n in os.environ.get("PYDOCK_TEST_SKIP_DRIVERS", "").split(",") if n}


def container_drivers() -> list[str]:
    """The drivers that must hold containers here, best first."""
    return [name for name in graphdriver.registered() if name in CONTAINER_DRIVERS]


def driver_params() -> list[object]:
    """``pytest.param`` per container driver, with the markers that say what it needs."""
    return [
        pytest.param(name, id=name, marks=DRIVER_MARKS.get(name, ()))
        for name in container_drivers()
    ]


def require_driver(name: str, root: Path) -> None:
    """Fail (or, where allowed, skip) loudly when driver ``name`` does not work here."""
    reason = graphdriver.probe(name, root)
    if reason is None:
        return
    if name in _SKIPPABLE:
        pytest.skip(f"driver {name} does not work here: {reason}")
    pytest.fail(f"driver {name} must work on this machine but does not: {reason}")


# The suite's own PYDOCK_* settings, which every command it runs keeps (tests/conftest.py).
SUITE_SETTINGS = ("PYDOCK_NETWORK",)


@dataclass(frozen=True)
class Done:
    """A finished pydock command."""

    status: int
    out: str
    err: str


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The test's environment without PYDOCK_* settings, except the suite's own (the default
    network it pins, see tests/conftest.py)."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("PYDOCK_") or key in SUITE_SETTINGS
    }
    return env | (extra or {})


class Pydock:
    """Runs ``python -m pydock --root ROOT [--storage DRIVER] ...`` as a subprocess."""

    def __init__(self, root: Path, storage: str | None = None) -> None:
        self.root = root
        self.storage = storage

    def command(self, *args: str) -> list[str]:
        """The argv of one pydock command."""
        prefix = [sys.executable, "-m", "pydock", "--root", str(self.root)]
        if self.storage:
            prefix += ["--storage", self.storage]
        return [*prefix, *args]

    def run(self, *args: str, stdin: bytes | None = None, timeout: float = 60) -> Done:
        """Run one command to completion."""
        done = subprocess.run(
            self.command(*args),
            input=stdin if stdin is not None else b"",
            capture_output=True,
            timeout=timeout,
            env=clean_env(),
            check=False,
        )
        return Done(done.returncode, done.stdout.decode(), done.stderr.decode())

    def ok(self, *args: str, stdin: bytes | None = None, timeout: float = 60) -> str:
        """Run; assert success and a silent stderr; return stdout."""
        done = self.run(*args, stdin=stdin, timeout=timeout)
        assert done.status == 0, (args, done)
        assert done.err == "", (args, done.err)
        return done.out

    def spawn(self, *args: str) -> subprocess.Popen[bytes]:
        """Start a command in the background (stdout and stderr piped)."""
        return subprocess.Popen(
            self.command(*args),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )

    def remove_all(self) -> None:
        """Force-remove every container (test clean-up)."""
        ids = self.run("ps", "-a", "-q").out.split()
        if ids:
            self.run("rm", "-f", *ids)


def fails(done: Done, *needles: str, status: int = 125) -> str:
    """Assert a failure with ``status`` and one ``pydock:`` line on stderr; return the line."""
    assert done.status == status, done
    lines = done.err.splitlines()
    assert len(lines) == 1, done.err
    assert lines[0].startswith("pydock: "), done.err
    assert "Traceback" not in done.err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# -- leaks --------------------------------------------------------------------------------------


def mounts_under(root: Path) -> list[str]:
    """Mount points at or below ``root`` in this mount namespace."""
    return sorted(mountutil.mounts_under(root))


def container_cgroups() -> list[str]:
    """Cgroup directories named like container ids (64 hex digits), in every hierarchy."""
    found = []
    for top, dirs, _files in os.walk(CGROUP_ROOT):
        for name in dirs:
            if CONTAINER_ID.fullmatch(name):
                found.append(os.path.join(top, name))
        if top.count("/") > 9:
            dirs.clear()
    return sorted(found)


def left_cgroups(before: list[str], after: list[str], *, settle: float = 1.0) -> list[str]:
    """Container cgroups that appeared since ``before`` and hold no process: what a container of
    this test that is gone would leave. Cgroups are host-wide, and containers of other tests
    and other roots come and go meanwhile: one of theirs holds its processes (or is gone again
    once ``settle`` seconds have passed), so only a cgroup empty for all that time counts."""

    def empty(path: str) -> bool:
        try:
            return Path(path, "cgroup.procs").read_text().strip() == ""
        except FileNotFoundError:
            return False  # removed: not left over

    suspects = [path for path in sorted(set(after) - set(before)) if empty(path)]
    deadline = time.monotonic() + settle
    while suspects and time.monotonic() < deadline:
        time.sleep(0.05)
        suspects = [path for path in suspects if empty(path)]
    return suspects


def processes_of(root: Path) -> list[int]:
    """Processes forked from pydock for ``root`` (monitors, init before exec, copiers, hooks)."""
    needle = str(root).encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
            state = Path(f"/proc/{entry}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        # A zombie is gone already; reaping it is up to whoever inherited it (pid 1 here).
        if needle in cmdline and state != "Z":
            found.append(int(entry))
    return sorted(found)


def container_rows(root: Path) -> list[tuple[str, str]]:
    """(name, state) of every container row."""
    database = root / "pydock.db"
    if not database.exists():
        return []
    with sqlite3.connect(database) as conn:
        return sorted(conn.execute("SELECT name, state FROM containers").fetchall())


def layer_dirs(root: Path) -> list[str]:
    """Layer directories of every driver home (overlay layout and vfs)."""
    found = []
    overlay = root / "overlay"
    if overlay.is_dir():
        found += [f"overlay/{n}" for n in os.listdir(overlay) if n != "l"]
    vfs = root / "vfs" / "dir"
    if vfs.is_dir():
        found += [f"vfs/{n}" for n in os.listdir(vfs)]
    return sorted(found)


def container_dirs(root: Path) -> list[str]:
    """Directories under ``<root>/containers``."""
    directory = root / "containers"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


@dataclass(frozen=True)
class Snapshot:
    """What a pydock root and the host hold that a failure must not change."""

    mounts: list[str]
    cgroups: list[str]
    processes: list[int]
    rows: list[tuple[str, str]]
    containers: list[str]
    layers: list[str]

    @classmethod
    def take(cls, root: Path) -> Snapshot:
        """Look now."""
        return cls(
            mounts_under(root),
            container_cgroups(),
            processes_of(root),
            container_rows(root),
            container_dirs(root),
            layer_dirs(root),
        )


def assert_no_leaks(root: Path, before: Snapshot, *, settle: float = 5.0) -> None:
    """Assert the snapshot is back to ``before`` (processes get ``settle`` seconds to go)."""
    deadline = time.monotonic() + settle
    while processes_of(root) != before.processes and time.monotonic() < deadline:
        time.sleep(0.05)
    after = Snapshot.take(root)
    assert after.mounts == before.mounts
    assert left_cgroups(before.cgroups, after.cgroups) == []
    assert after.processes == before.processes
    assert after.rows == before.rows
    assert after.containers == before.containers
    assert after.layers == before.layers


def kill_leftovers(root: Path) -> None:
    """Kill processes a failed test left behind, and unmount what is left under ``root``."""
    for pid in processes_of(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    for target in reversed(mounts_under(root)):
        subprocess.run(["umount", "-l", target], capture_output=True, check=False)


@dataclass
class Workspace:
    """A pydock root with the busybox image, for one driver."""

    pydock: Pydock
    driver: str

    @property
    def root(self) -> Path:
        """The pydock root."""
        return self.pydock.root


def workspace(root: Path, driver: str) -> Iterator[Workspace]:
    """A root with ``busybox`` imported under ``driver``; everything removed at the end."""
    root.mkdir(parents=True, exist_ok=True)
    require_driver(driver, root / graphdriver.home_name(driver))
    pydock = Pydock(root, driver)
    pydock.ok("import", "builtin:busybox", "busybox")
    try:
        yield Workspace(pydock, driver)
    finally:
        pydock.remove_all()
        kill_leftovers(root)
