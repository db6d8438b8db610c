"""Container lifecycle through the CLI, as root: -d, logs, wait, ps, create/start, stop, kill,
rm, exec, inspect, and signal forwarding of a foreground run."""

from __future__ import annotations

import json
import re
import signal
import time
from pathlib import Path

from .containers_support import (
    CONTAINER_ID,
    ROOT_CONTAINER_TESTS,
    Done,
    Snapshot,
    Workspace,
    assert_no_leaks,
    fails,
    mounts_under,
)

pytestmark = ROOT_CONTAINER_TESTS


def ps_status(ws: Workspace, name: str) -> str:
    """The STATUS column of container ``name`` in ``ps -a``."""
    for line in ws.pydock.ok("ps", "-a").splitlines()[1:]:
        cells = re.split(r"\s{2,}", line)
        if cells[-1] == name:
            return cells[-2]
    return ""


def wait_for(condition: object, timeout: float = 10.0) -> bool:
    """Poll ``condition()`` until it is true or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.05)
    return False


def test_detached_logs_wait_rm(ws: Workspace, tmp_path: Path) -> None:
    before = Snapshot.take(ws.root)
    # The container waits for the test to create /ctl/go on the host side of a volume.
    script = (
        "echo out; echo err >&2; while [ ! -e /ctl/go ]; do sleep 0.05; done; echo late; exit 5"
    )
    container_id = ws.pydock.ok(
        "run", "-d", "--name", "d1", "-v", f"{tmp_path}:/ctl", "busybox", "sh", "-c", script
    )
    assert CONTAINER_ID.fullmatch(container_id.strip())
    assert ps_status(ws, "d1").startswith("Up")
    if ws.driver != "vfs":
        assert mounts_under(ws.root), "the running container's root file system is mounted"
    follow = ws.pydock.spawn("logs", "-f", "d1")
    (tmp_path / "go").touch()
    out, err = follow.communicate(timeout=30)
    assert (follow.returncode, out, err) == (0, b"out\nlate\n", b"err\n")
    assert ws.pydock.ok("wait", "d1") == "5\n"
    assert ps_status(ws, "d1").startswith("Exited (5)")
    # The monitor's exit command released the mount without anyone asking.
    assert wait_for(lambda: mounts_under(ws.root) == before.mounts)
    assert ws.pydock.run("logs", "d1") == Done(0, "out\nlate\n", "err\n")
    assert ws.pydock.ok("rm", "d1") == "d1\n"
    assert_no_leaks(ws.root, before)


def test_create_start_attach_restart(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    container_id = one.pydock.ok(
        "create", "--name", "c1", "busybox", "sh", "-c", "echo run; exit 4"
    )
    assert CONTAINER_ID.fullmatch(container_id.strip())
    assert ps_status(one, "c1") == "Created"
    assert one.pydock.ok("ps", "-q") == ""  # not running
    done = one.pydock.run("start", "-a", "c1")
    assert (done.status, done.out) == (4, "run\n")
    assert one.pydock.ok("start", "c1") == "c1\n"  # a restart, detached
    assert one.pydock.ok("wait", "c1") == "4\n"
    assert one.pydock.ok("logs", "c1") == "run\nrun\n"
    one.pydock.ok("rm", "c1")
    assert_no_leaks(one.root, before)


def test_stop_kill_and_forced_rm(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    one.pydock.ok("run", "-d", "--name", "s1", "busybox", "sleep", "60")
    assert one.pydock.ok("stop", "-t", "1", "s1") == "s1\n"
    # sleep as pid 1 ignores SIGTERM: only the SIGKILL after the grace period ends it.
    assert ps_status(one, "s1").startswith("Exited (137)")
    trap = "trap 'exit 7' TERM; while true; do sleep 0.1; done"
    one.pydock.ok("run", "-d", "--name", "s2", "busybox", "sh", "-c", trap)
    one.pydock.ok("stop", "s2")
    assert one.pydock.ok("wait", "s2") == "7\n"
    one.pydock.ok("run", "-d", "--name", "s3", "busybox", "sh", "-c", trap.replace("7", "9"))
    assert one.pydock.ok("kill", "-s", "TERM", "s3") == "s3\n"
    assert one.pydock.ok("wait", "s3") == "9\n"
    one.pydock.ok("run", "-d", "--name", "s4", "busybox", "sleep", "60")
    fails(one.pydock.run("rm", "s4"), "is running", "rm -f")
    one.pydock.ok("kill", "s4")
    assert one.pydock.ok("wait", "s4") == "137\n"
    fails(one.pydock.run("kill", "s4"), "not running")
    one.pydock.ok("start", "s4")
    assert one.pydock.ok("rm", "-f", "s1", "s2", "s3", "s4") == "s1\ns2\ns3\ns4\n"
    assert_no_leaks(one.root, before)


def test_auto_remove_of_a_detached_container(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    one.pydock.ok("run", "-d", "--rm", "--name", "gone", "busybox", "sleep", "0.5")
    assert wait_for(lambda: "gone" not in one.pydock.ok("ps", "-a"), timeout=15)
    assert_no_leaks(one.root, before)


def test_exec(one: Workspace) -> None:
    one.pydock.ok(
        "run", "-d", "--name", "x1", "--hostname", "xbox", "-e", "A=1", "busybox", "sleep", "60"
    )
    try:
        out = one.pydock.ok(
            "exec",
            "-e",
            "B=2",
            "x1",
            "sh",
            "-c",
            "hostname; echo $A$B; cat /proc/1/cmdline; echo; id -u",
        )
        assert out.splitlines() == ["xbox", "12", "sleep\x0060\x00", "0"]
        assert (
            one.pydock.ok("exec", "-u", "daemon", "-w", "/tmp", "x1", "sh", "-c", "id -u; pwd")
            == "1\n/tmp\n"
        )
        assert one.pydock.run("exec", "x1", "sh", "-c", "exit 3").status == 3
        fails(one.pydock.run("exec", "x1", "no-such-command"), "not found", status=127)
        out = one.pydock.ok("exec", "-t", "x1", "tty")
        assert re.fullmatch(r"/dev/pts/\d+\r\n", out)
    finally:
        one.pydock.run("rm", "-f", "x1")
    one.pydock.ok("create", "--name", "x2", "busybox", "true")
    fails(one.pydock.run("exec", "x2", "true"), "not running")
    one.pydock.ok("rm", "x2")


def test_ps_formats_and_inspect(one: Workspace) -> None:
    done = one.pydock.run("run", "--name", "p1", "busybox", "sh", "-c", "echo hi; exit 2")
    assert (done.status, done.out) == (2, "hi\n")
    try:
        lines = one.pydock.ok("ps", "-a").splitlines()
        assert re.split(r"\s{2,}", lines[0]) == [
            "CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES",
        ]  # fmt: skip
        [row] = [
            json.loads(line) for line in one.pydock.ok("ps", "-a", "--format", "json").splitlines()
        ]
        assert row["Names"] == "p1" and row["State"] == "exited" and row["Image"] == "busybox"
        assert row["Command"] == '"sh -c echo hi; exit\u2026"'  # cut at 20, as Docker
        assert row["Status"].startswith("Exited (2)")
        [info] = json.loads(one.pydock.ok("inspect", "p1"))
        assert info["Name"] == "/p1" and info["Id"].startswith(row["ID"])
        assert info["State"]["ExitCode"] == 2 and info["State"]["Status"] == "exited"
        assert info["Path"] == "sh" and info["Args"] == ["-c", "echo hi; exit 2"]
        assert info["Driver"] == one.driver
        assert one.pydock.ok("logs", "p1") == "hi\n"  # a foreground run keeps its logs too
        [image] = json.loads(one.pydock.ok("inspect", "busybox"))
        assert image["RepoTags"] == ["busybox:latest"]
        fails(one.pydock.run("rmi", "busybox"), "used by container")
    finally:
        one.pydock.run("rm", "-f", "p1")


def test_foreground_run_forwards_signals(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    process = one.pydock.spawn("run", "--rm", "--init", "busybox", "sleep", "30")
    try:
        assert wait_for(lambda: "sleep 30" in one.pydock.ok("ps"), timeout=20)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)
        assert process.returncode == 128 + signal.SIGTERM
    finally:
        process.kill()
        process.communicate()
    assert_no_leaks(one.root, before)
