"""A container's writable layer through the CLI, as root: ``diff``, ``commit`` then run the new
image, ``export``, and image layers made present in another driver on demand."""

from __future__ import annotations

import io
import json
import sqlite3
import subprocess
import tarfile
from pathlib import Path

import pytest

from .containers_support import (
    IMAGE_ID,
    ROOT_CONTAINER_TESTS,
    Pydock,
    Snapshot,
    Workspace,
    assert_no_leaks,
    clean_env,
    container_drivers,
)

pytestmark = ROOT_CONTAINER_TESTS

CHANGES = (
    "echo new > /newfile; rm /etc/group; mkdir -p /tmp/made/deeper; "
    "echo more >> /etc/passwd; ln -s /newfile /bin/newlink"
)


def test_diff_commit_export(ws: Workspace, tmp_path: Path) -> None:
    before = Snapshot.take(ws.root)
    assert ws.pydock.run("run", "--name", "w1", "busybox", "sh", "-c", CHANGES).status == 0
    assert ws.pydock.ok("diff", "w1").splitlines() == [
        "C /bin",
        "A /bin/newlink",
        "C /etc",
        "D /etc/group",
        "C /etc/passwd",
        "A /newfile",
        "C /tmp",
        "A /tmp/made",
        "A /tmp/made/deeper",
    ]

    image_id = ws.pydock.ok("commit", "-m", "made by a test", "w1", "committed:v1").strip()
    assert IMAGE_ID.fullmatch(image_id)
    [info] = json.loads(ws.pydock.ok("inspect", "committed:v1"))
    assert info["Id"] == image_id and info["Comment"] == "made by a test"
    assert len(info["RootFS"]["Layers"]) == 2
    [base] = json.loads(ws.pydock.ok("inspect", "busybox"))
    assert info["RootFS"]["Layers"][0] == base["RootFS"]["Layers"][0]
    out = ws.pydock.ok(
        "run", "--rm", "committed:v1", "sh", "-c", "cat /newfile; ls /etc; readlink /bin/newlink"
    )
    # /etc/group is gone; hostname, hosts and resolv.conf are every container's own files.
    assert out == "new\nhostname\nhosts\npasswd\nresolv.conf\n/newfile\n"

    target = tmp_path / "w1.tar"
    ws.pydock.ok("export", "-o", str(target), "w1")
    with tarfile.open(target) as tar:
        names = set(tar.getnames())
        member = tar.extractfile("newfile")
        assert member is not None and member.read() == b"new\n"
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read().endswith(b"more\n")
        assert tar.getmember("bin/newlink").linkname == "/newfile"
    assert "etc/group" not in names and "bin/busybox" in names and "tmp/made/deeper" in names
    assert not any(".wh." in name for name in names)
    streamed = subprocess.run(
        ws.pydock.command("export", "w1"), capture_output=True, timeout=60, env=clean_env()
    )
    assert streamed.returncode == 0, streamed.stderr
    with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
        assert set(tar.getnames()) == names

    ws.pydock.ok("rm", "w1")
    ws.pydock.ok("rmi", "committed:v1")
    assert_no_leaks(ws.root, before)


def test_commit_of_a_running_container_keeps_it_running(ws: Workspace) -> None:
    if ws.driver == "vfs":
        pytest.skip("vfs mounts nothing: there is no mount to keep")
    ws.pydock.ok("run", "-d", "--name", "live", "busybox", "sh", "-c", "echo x > /x; sleep 60")
    try:
        # Wait (20 s at most) for the container to have written /x.
        wait_x = "i=0; while [ ! -e /x ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
        ws.pydock.ok("exec", "live", "sh", "-c", f"{wait_x}; test -e /x")
        ws.pydock.ok("commit", "live", "live:snap")
        assert "A /x" in ws.pydock.ok("diff", "live").splitlines()
        assert ws.pydock.ok("exec", "live", "cat", "/x") == "x\n"  # still has its file system
        assert ws.pydock.ok("run", "--rm", "live:snap", "cat", "/x") == "x\n"
    finally:
        ws.pydock.run("rm", "-f", "live")
        ws.pydock.run("rmi", "live:snap")


def test_layers_unpacked_on_demand_in_another_driver(tmp_path: Path) -> None:
    drivers = container_drivers()
    if len(drivers) < 2:
        pytest.skip(f"needs two storage drivers, only {drivers} work here")
    first, second = drivers[0], drivers[-1]
    pydock = Pydock(tmp_path / "root", first)
    pydock.ok("import", "builtin:busybox", "busybox")
    assert pydock.ok("run", "--rm", "--storage", second, "busybox", "echo", "hi") == "hi\n"
    assert pydock.ok("run", "--rm", "busybox", "echo", "again") == "again\n"
    with sqlite3.connect(tmp_path / "root" / "pydock.db") as conn:
        homes = sorted(row[0] for row in conn.execute("SELECT driver FROM layer_cache"))
    expected = sorted({"overlay" if name in ("overlay2", "fuse") else name for name in drivers})
    assert homes == sorted({expected[0], expected[-1]})
    # The second run on the second driver reuses the layer it unpacked.
    pydock.ok("run", "--rm", "--storage", second, "busybox", "true")
    with sqlite3.connect(tmp_path / "root" / "pydock.db") as conn:
        assert conn.execute("SELECT count(*) FROM layer_cache").fetchone()[0] == 2
