"""Layers kept in another driver's home (``DriverSet.for_home``): removed with their image and
recovered after a crash by a command whose own driver is another one.

A root whose default driver is vfs also holds copies in the overlay home once a container ran
with ``--storage overlay2``. ``rmi``, start-up recovery and a home no driver here can open
are driven through the real command.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest

import graphdriver

from .containers_support import ROOT_CONTAINER_TESTS, Pydock, require_driver

pytestmark = [*ROOT_CONTAINER_TESTS, pytest.mark.overlay]


def caches(root: Path) -> list[tuple[str, str, int]]:
    """(home, cache id, complete) of every layer copy."""
    with sqlite3.connect(root / "pydock.db") as conn:
        rows = conn.execute("SELECT driver, cache_id, complete FROM layer_cache ORDER BY driver")
        return [(str(a), str(b), int(c)) for a, b, c in rows]


def overlay_dirs(root: Path) -> list[str]:
    home = root / "overlay"
    names = os.listdir(home) if home.is_dir() else []
    return sorted(n for n in names if n != "l" and not n.startswith("."))


def vfs_dirs(root: Path) -> list[str]:
    home = root / "vfs" / "dir"
    return sorted(os.listdir(home)) if home.is_dir() else []


@pytest.fixture
def two_homes(tmp_path: Path) -> Pydock:
    """busybox imported under vfs, and unpacked into the overlay home by a run on overlay2."""
    root = tmp_path / "root"
    root.mkdir()
    for name in ("vfs", "overlay2"):
        if name not in graphdriver.registered():
            pytest.fail(f"driver {name} is not installed")
        require_driver(name, root / graphdriver.home_name(name))
    pydock = Pydock(root, "vfs")
    pydock.ok("import", "builtin:busybox", "busybox")
    assert pydock.ok("run", "--rm", "--storage", "overlay2", "busybox", "echo", "hi") == "hi\n"
    [(home_a, id_a, done_a), (home_b, id_b, done_b)] = caches(root)
    assert (home_a, done_a, home_b, done_b) == ("overlay", 1, "vfs", 1)
    assert overlay_dirs(root) == [id_a] and vfs_dirs(root) == [id_b]
    return pydock


def test_rmi_removes_the_copy_in_the_other_home(two_homes: Pydock) -> None:
    root = two_homes.root
    two_homes.ok("rmi", "busybox")  # vfs is this command's driver; overlay2 opened on demand
    assert caches(root) == []
    assert overlay_dirs(root) == [] and vfs_dirs(root) == []
    with sqlite3.connect(root / "pydock.db") as conn:
        assert conn.execute("SELECT count(*) FROM layers").fetchone() == (0,)


def test_start_up_recovers_a_crashed_copy_in_the_other_home(two_homes: Pydock) -> None:
    """An overlay copy left incomplete by a process that died: the next vfs command removes
    its directory and its row, and leaves the image and its vfs copy alone."""
    root = two_homes.root
    [(_, overlay_id, _), (_, vfs_id, _)] = caches(root)
    with sqlite3.connect(root / "pydock.db") as conn:
        conn.execute("UPDATE layer_cache SET complete = 0, owner = NULL WHERE driver = 'overlay'")
    assert two_homes.ok("images", "-q").strip()
    assert caches(root) == [("vfs", vfs_id, 1)]
    assert overlay_dirs(root) == [] and vfs_dirs(root) == [vfs_id]
    assert overlay_id not in overlay_dirs(root)
    # The image still runs, on either driver (overlay2 unpacks its copy again).
    assert two_homes.ok("run", "--rm", "busybox", "echo", "ok") == "ok\n"
    assert two_homes.ok("run", "--rm", "--storage", "overlay2", "busybox", "echo", "ok") == "ok\n"
    assert [home for home, _, complete in caches(root) if complete] == ["overlay", "vfs"]


def test_a_copy_in_a_home_no_driver_opens_stays_for_later(two_homes: Pydock) -> None:
    """A copy recorded in a home no driver here can open (a driver since uninstalled): rmi
    removes what it can reach and keeps that row, incomplete, for a later start-up."""
    root = two_homes.root
    (root / "gone").mkdir()
    (root / "gone" / "layer-gone").mkdir()
    with sqlite3.connect(root / "pydock.db") as conn:
        chain, created = conn.execute("SELECT chain_id, created FROM layer_cache").fetchone()
        conn.execute(
            "INSERT INTO layer_cache (chain_id, driver, cache_id, complete, owner, created)"
            " VALUES (?, 'gone', 'layer-gone', 1, NULL, ?)",
            (chain, created),
        )
    two_homes.ok("rmi", "busybox")
    assert two_homes.ok("images", "-q") == ""
    assert caches(root) == [("gone", "layer-gone", 0)]
    assert overlay_dirs(root) == [] and vfs_dirs(root) == []
    assert (root / "gone" / "layer-gone").is_dir()  # nothing here may touch it
    with sqlite3.connect(root / "pydock.db") as conn:
        assert conn.execute("SELECT complete FROM layers").fetchall() == [(0,)]
