"""What start-up recovery and ``system check`` do with what crashes leave behind: a FUSE
process that died under a running container, a ``run`` killed before its container started,
blobs, layer copies and mounts that the store and the disk disagree on."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from graphdriver.mountutil import mounts_under

from .support import assert_nothing_left, ok, processes_under, pydock

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="containers, overlay2 and FUSE need uid 0 here"),
    pytest.mark.timeout(180),
]


def _fuse_servers(root: Path) -> list[int]:
    """The processes serving the FUSE mounts under ``root`` (forked by the mount server)."""
    from drivers.fuse import client

    pids: list[int] = []
    for point in mounts_under(root):
        pids += client.mount_pids(Path(point))
    return pids


@pytest.mark.fuse
def test_a_container_whose_fuse_process_died_is_stopped_with_the_reason(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(root, "--storage", "fuse", "run", "-d", "--name", "victim", "busybox", "sleep", "60")
    assert "Up " in ok(root, "ps")
    [server] = _fuse_servers(root)
    os.kill(server, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{server}") and time.monotonic() < deadline:
        time.sleep(0.05)
    listed = ok(root, "ps", "-a")
    assert "Exited (137)" in listed, listed
    [state] = [doc["State"] for doc in json.loads(ok(root, "inspect", "victim"))]
    assert state["Running"] is False and state["ExitCode"] == 137
    assert "filesystem process serving layer" in state["Error"]
    ok(root, "rm", "victim")
    assert_nothing_left(root)


def test_a_run_killed_before_its_start_is_finished_by_the_next_command(tmp_path: Path) -> None:
    root = tmp_path / "root"
    kept = ok(root, "create", "--name", "kept", "busybox", "true").strip()
    doomed = ok(root, "create", "--rm", "--name", "doomed", "busybox", "true").strip()
    # What a `run` killed between create and start leaves: its owner is a dead process.
    with sqlite3.connect(root / "pydock.db") as db:
        for container in (kept, doomed):
            db.execute("UPDATE containers SET owner = ? WHERE id = ?", ["999999:1", container])
    names = {
        json.loads(line)["Names"] for line in ok(root, "ps", "-a", "--format", "json").splitlines()
    }
    assert names == {"kept"}  # --rm: gone; without --rm: kept, settled
    with sqlite3.connect(root / "pydock.db") as db:
        [(owner,)] = db.execute("SELECT owner FROM containers WHERE id = ?", [kept]).fetchall()
    assert owner is None
    ok(root, "rm", "kept")
    assert_nothing_left(root)


def test_system_check_finds_and_repairs(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(root, "--storage", "overlay2", "import", "builtin:busybox", "busybox")
    ok(root, "--storage", "overlay2", "run", "--rm", "busybox", "true")
    assert ok(root, "system", "check") == "no problems found\n"

    # A layer copy the store names but the disk lost: repair forgets it, and the next run
    # unpacks it again from the content store.
    with sqlite3.connect(root / "pydock.db") as db:
        [(cache_id,)] = db.execute("SELECT cache_id FROM layer_cache").fetchall()
    subprocess.run(["rm", "-rf", str(root / "overlay" / cache_id)], check=True)
    # A mount no container uses.
    stray = root / "overlay" / "stray-mount"
    stray.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "stray", str(stray)], check=True, timeout=30)
    try:
        found = pydock(root, "system", "check")
        assert found.returncode == 1
        lines = found.stdout.splitlines()
        assert any(line.startswith("layer sha256:") and "is missing" in line for line in lines)
        assert f"mount {stray}: no running container uses it" in lines
        repaired = ok(root, "system", "check", "--repair").splitlines()
        assert all(line.startswith("repaired: ") for line in repaired) and len(repaired) == 2
        assert mounts_under(root) == []
    finally:
        subprocess.run(["umount", "-l", str(stray)], capture_output=True, timeout=30)
    assert ok(root, "system", "check") == "no problems found\n"
    assert ok(root, "--storage", "overlay2", "run", "--rm", "busybox", "echo", "back") == "back\n"

    # A blob an image needs, lost: reported, not repairable here.
    config = json.loads(ok(root, "inspect", "busybox"))[0]
    layer_blob = config["RootFS"]["Layers"][0]
    (root / "blobs" / "sha256" / layer_blob[7:]).unlink()
    found = pydock(root, "system", "check", "--repair")
    assert found.returncode == 1
    assert f"blob {layer_blob}: missing, needed by a layer of image" in found.stdout
    assert processes_under(root) == []
