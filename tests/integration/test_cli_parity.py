"""Docker parity of the container commands, as root, through the real CLI: failed starts kept
with their reason, OOMKilled read from the cgroup, typed-ahead input under ``-t``, and the
lifecycle verbs (restart, rename, pause, top, stats, update, restart policies, info)."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Snapshot,
    Workspace,
    assert_no_leaks,
    clean_env,
    container_rows,
    fails,
)
from .registry_support import running_registry

pytestmark = ROOT_CONTAINER_TESTS


def state(ws: Workspace, name: str) -> dict[str, object]:
    """``inspect NAME``'s ``State``."""
    [document] = json.loads(ws.pydock.ok("inspect", name))
    found = document["State"]
    assert isinstance(found, dict)
    return found


def test_a_failed_start_keeps_the_container_with_its_error(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    fails(one.pydock.run("run", "--name", "f1", "busybox", "no-such-command"), status=127)
    seen = state(one, "f1")
    assert seen["Status"] == "exited" and seen["ExitCode"] == 127
    assert "no-such-command" in str(seen["Error"]) and "not found" in str(seen["Error"])
    assert one.pydock.run("logs", "f1").status == 0
    # A set-up failure (before anything ran) leaves it created, with the reason.
    fails(one.pydock.run("run", "--name", "f2", "-u", "nosuchuser", "busybox", "true"))
    seen = state(one, "f2")
    assert seen["Status"] == "created" and "nosuchuser" in str(seen["Error"])
    fails(one.pydock.run("start", "-a", "f2"), "nosuchuser")
    assert "nosuchuser" in str(state(one, "f2")["Error"])
    # With --rm it is gone.
    fails(one.pydock.run("run", "--rm", "--name", "f3", "busybox", "no-such-command"), status=127)
    assert "f3" not in [name for name, _ in container_rows(one.root)]
    assert one.pydock.ok("rm", "f1", "f2") == "f1\nf2\n"
    assert_no_leaks(one.root, before)


def test_oom_killed_is_read_from_the_cgroup(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    # tail keeps the one endless "line" of /dev/zero in memory until the OOM killer ends it.
    done = one.pydock.run("run", "--name", "oom", "-m", "8m", "busybox", "tail", "/dev/zero")
    assert done.status == 137, done
    seen = state(one, "oom")
    assert (seen["OOMKilled"], seen["ExitCode"]) == (True, 137)
    # A run that ends normally, with or without a limit, was not OOM-killed.
    one.pydock.ok("run", "--name", "fine", "-m", "64m", "busybox", "true")
    assert state(one, "fine")["OOMKilled"] is False
    one.pydock.ok("run", "-d", "--name", "fine2", "busybox", "true")
    assert one.pydock.ok("wait", "fine2") == "0\n"
    assert state(one, "fine2")["OOMKilled"] is False
    one.pydock.ok("rm", "oom", "fine", "fine2")
    assert_no_leaks(one.root, before)


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script (util-linux)")
def test_input_typed_ahead_of_a_terminal_run_reaches_the_container(one: Workspace) -> None:
    # script gives pydock a terminal and writes "exit 7" to it at once, long before pydock
    # switches it to raw mode; then end of input. That line must reach the shell (status 7);
    # when it is flushed away, the shell reads end-of-file and exits 0.
    command = shlex.join(one.pydock.command("run", "--rm", "-it", "busybox", "sh"))
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        input=b"exit 7\n",
        capture_output=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 7, done


def test_run_and_create_pull_a_missing_image(one: Workspace, tmp_path: Path) -> None:
    with running_registry(tmp_path / "registry") as registry:
        name = f"{registry.address}/parity/bb:1"
        one.pydock.ok("tag", "busybox", name)
        # A registry on 127.0.0.1 is insecure by default, as in Docker: no --tls-verify=false.
        one.pydock.ok("push", "-q", name)
        one.pydock.ok("rmi", name)
        fails(one.pydock.run("run", "--rm", "--pull", "never", name, "true"), "no such image")
        done = one.pydock.run("run", "--rm", name, "echo", "pulled")
        assert (done.status, done.out) == (0, "pulled\n"), done
        assert f"Unable to find image '{name}' locally" in done.err
        # Present now: nothing pulled.
        assert one.pydock.run("run", "--rm", name, "true").err == ""
        done = one.pydock.run("create", "--pull", "always", "--name", "pulled", name, "true")
        assert done.status == 0 and "Unable" not in done.err, done
        one.pydock.ok("rm", "pulled")
        fails(
            one.pydock.run("run", "--rm", "--pull", "always", "--tls-verify=true", name, "true"),
            "reaching registry",
        )
        one.pydock.ok("rmi", name)


def host_cgroup_file(pid: int, controller: str, v1_name: str, v2_name: str) -> Path:
    """The control file of ``pid``'s cgroup for ``controller``, seen from the host."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return Path("/sys/fs/cgroup", controller, path.lstrip("/"), v1_name)
    unified = Path("/sys/fs/cgroup/cgroup.controllers")
    assert unified.exists(), f"no {controller} cgroup for {pid}"
    path = next(line for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines())
    return Path("/sys/fs/cgroup", path.split(":", 2)[2].lstrip("/"), v2_name)


def is_frozen(pid: int) -> bool:
    state = host_cgroup_file(pid, "freezer", "freezer.state", "cgroup.events").read_text()
    return "FROZEN" in state.split() or "frozen 1" in state.splitlines()


LOOP = "while true; do sleep 0.1; done"


def test_pause_top_stats_update_rename_and_info(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    one.pydock.ok("run", "-d", "--name", "p1", "busybox", "sh", "-c", LOOP)
    try:
        pid = state(one, "p1")["Pid"]
        assert isinstance(pid, int) and pid > 0
        assert one.pydock.ok("pause", "p1") == "p1\n"
        assert is_frozen(pid)
        assert (state(one, "p1")["Status"], state(one, "p1")["Paused"]) == ("paused", True)
        assert "(Paused)" in one.pydock.ok("ps")
        info = json.loads(one.pydock.ok("info", "--format", "json"))
        assert (info["ContainersPaused"], info["ContainersRunning"]) == (1, 0)
        assert info["CgroupDriver"] == "cgroupfs" and info["CgroupVersion"] in ("1", "2")
        fails(one.pydock.run("pause", "p1"), "already paused")
        assert one.pydock.ok("unpause", "p1") == "p1\n"
        assert not is_frozen(pid)
        assert state(one, "p1")["Status"] == "running"
        fails(one.pydock.run("unpause", "p1"), "not paused")
        assert "Running: 1" in one.pydock.ok("info")
        # top: the host's ps, only the container's processes.
        lines = one.pydock.ok("top", "p1").splitlines()
        assert lines[0].split()[:3] == ["UID", "PID", "PPID"]
        pids = {int(line.split()[1]) for line in lines[1:]}
        assert pid in pids and os.getpid() not in pids
        lines = one.pydock.ok("top", "p1", "-o", "pid,comm").splitlines()
        assert lines[0].split() == ["PID", "COMMAND"] and f"{pid} sh" in [
            " ".join(line.split()) for line in lines
        ]
        # stats: the cgroup's figures.
        lines = one.pydock.ok("stats", "--no-stream", "p1").splitlines()
        assert "MEM USAGE / LIMIT" in lines[0] and "p1" in lines[1]
        [sample] = [
            json.loads(x)
            for x in one.pydock.ok("stats", "--no-stream", "--format", "json").splitlines()
        ]
        assert sample["Name"] == "p1" and int(sample["PIDs"]) >= 1
        # update: live in the cgroup, and kept for the next start.
        assert one.pydock.ok("update", "-m", "32m", "--pids-limit", "40", "p1") == "p1\n"
        memory = host_cgroup_file(pid, "memory", "memory.limit_in_bytes", "memory.max")
        assert memory.read_text().strip() == str(32 << 20)
        pids_max = host_cgroup_file(pid, "pids", "pids.max", "pids.max")
        assert pids_max.read_text().strip() == "40"
        [document] = json.loads(one.pydock.ok("inspect", "p1"))
        assert (document["HostConfig"]["Memory"], document["HostConfig"]["PidsLimit"]) == (
            32 << 20,
            40,
        )
        # rename
        one.pydock.ok("run", "-d", "--name", "other", "busybox", "sh", "-c", LOOP)
        fails(one.pydock.run("rename", "p1", "other"), "already in use")
        one.pydock.ok("rename", "p1", "p2")
        fails(one.pydock.run("inspect", "p1"), "no such")
        assert state(one, "p2")["Pid"] == pid
    finally:
        one.pydock.run("rm", "-f", "p1", "p2", "other")
    assert_no_leaks(one.root, before)


def test_a_paused_container_can_be_killed(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    one.pydock.ok("run", "-d", "--name", "pk", "busybox", "sh", "-c", LOOP)
    one.pydock.ok("pause", "pk")
    one.pydock.ok("kill", "pk")
    assert one.pydock.ok("wait", "pk") == "137\n"
    one.pydock.ok("rm", "pk")
    assert_no_leaks(one.root, before)


def test_stop_signal_stop_timeout_and_restart(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    trap = f"trap 'echo got-usr1; exit 3' USR1; {LOOP}"
    one.pydock.ok(
        "run", "-d", "--name", "sig", "--stop-signal", "USR1", "--stop-timeout", "60",
        "busybox", "sh", "-c", trap,
    )  # fmt: skip
    [document] = json.loads(one.pydock.ok("inspect", "sig"))
    assert (document["Config"]["StopSignal"], document["Config"]["StopTimeout"]) == ("SIGUSR1", 60)
    assert one.pydock.ok("stop", "sig") == "sig\n"
    assert state(one, "sig")["ExitCode"] == 3
    assert one.pydock.ok("logs", "sig") == "got-usr1\n"
    first = state(one, "sig")["StartedAt"]
    assert one.pydock.ok("restart", "sig") == "sig\n"
    assert state(one, "sig")["Status"] == "running" and state(one, "sig")["StartedAt"] != first
    assert one.pydock.ok("restart", "sig") == "sig\n"  # a running one is stopped first
    assert one.pydock.ok("logs", "sig") == "got-usr1\ngot-usr1\n"
    # pid 1 ignores SIGTERM it has no handler for: SIGKILL once --stop-timeout has passed.
    one.pydock.ok("run", "-d", "--name", "slow", "--stop-timeout", "1", "busybox", "sleep", "60")
    one.pydock.ok("stop", "slow")
    assert state(one, "slow")["ExitCode"] == 137
    fails(one.pydock.run("run", "--stop-signal", "NOPE", "busybox", "true"), "no such signal")
    one.pydock.ok("rm", "-f", "sig", "slow")
    assert_no_leaks(one.root, before)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


def test_restart_policies(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    one.pydock.ok(
        "run", "-d", "--name", "onfail", "--restart", "on-failure:2",
        "busybox", "sh", "-c", "echo ran; exit 3",
    )  # fmt: skip

    def settled() -> bool:
        seen = json.loads(one.pydock.ok("inspect", "onfail"))[0]
        return bool(seen["RestartCount"] == 2 and seen["State"]["Status"] == "exited")

    assert wait_for(settled)
    assert one.pydock.ok("logs", "onfail") == "ran\nran\nran\n"
    [document] = json.loads(one.pydock.ok("inspect", "onfail"))
    assert document["HostConfig"]["RestartPolicy"] == {"Name": "on-failure", "MaximumRetryCount": 2}
    # A success is not restarted by on-failure; "always" restarts it until stopped.
    one.pydock.ok("run", "--name", "fine", "--restart", "on-failure", "busybox", "true")
    assert state(one, "fine")["Status"] == "exited"
    assert json.loads(one.pydock.ok("inspect", "fine"))[0]["RestartCount"] == 0
    one.pydock.ok("run", "-d", "--name", "again", "--restart", "always", "busybox", "true")
    assert wait_for(lambda: json.loads(one.pydock.ok("inspect", "again"))[0]["RestartCount"] >= 2)
    one.pydock.ok("stop", "again")
    fails(one.pydock.run("run", "--rm", "--restart", "always", "busybox", "true"), "--rm")
    fails(one.pydock.run("run", "--restart", "sometimes", "busybox", "true"), "on-failure")
    one.pydock.ok("rm", "-f", "onfail", "fine", "again")
    assert wait_for(lambda: Snapshot.take(one.root).processes == before.processes)
    assert_no_leaks(one.root, before)


def test_attach_follows_until_the_exit(one: Workspace, tmp_path: Path) -> None:
    before = Snapshot.take(one.root)
    script = "while [ ! -e /ctl/go ]; do echo tick; sleep 0.05; done; echo late; exit 4"
    one.pydock.ok(
        "run", "-d", "--name", "att", "-v", f"{tmp_path}:/ctl", "busybox", "sh", "-c", script
    )  # fmt: skip
    attached = one.pydock.spawn("attach", "att")
    try:
        assert attached.stdout is not None
        # A tick through attach: it follows the container's output; now let it finish.
        assert attached.stdout.readline() == b"tick\n"
        (tmp_path / "go").touch()
        out, err = attached.communicate(timeout=60)
    finally:
        if attached.poll() is None:
            attached.kill()
            attached.wait(timeout=30)
    assert (attached.returncode, out.splitlines()[-1:], err) == (4, [b"late"], b"")
    assert set(out.splitlines()) <= {b"tick", b"late"}
    fails(one.pydock.run("attach", "att"), "not running")
    one.pydock.ok("rm", "att")
    assert_no_leaks(one.root, before)


def monitor_pid(root: Path, name: str) -> int:
    """The pid of the monitor of container ``name``'s current run, from the store."""
    with sqlite3.connect(root / "pydock.db") as conn:
        [(monitor,)] = conn.execute("SELECT monitor FROM containers WHERE name = ?", [name])
    return int(str(monitor).partition(":")[0])


def test_always_containers_come_back_when_pydock_next_runs(one: Workspace) -> None:
    # A monitor killed (as at a reboot, which also takes init): the next pydock command
    # records the lost run and starts "always" and "unless-stopped" containers again.
    before = Snapshot.take(one.root)
    for name, policy in (("back", "always"), ("back2", "unless-stopped"), ("gone", "no")):
        one.pydock.ok("run", "-d", "--name", name, "--restart", policy, "busybox", "sleep", "60")
    try:
        first = state(one, "back")["Pid"]
        for name in ("back", "back2", "gone"):
            pid = monitor_pid(one.root, name)
            os.kill(pid, signal.SIGKILL)
            assert wait_for(lambda pid=pid: not Path(f"/proc/{pid}").exists())
        one.pydock.ok("ps")
        for name in ("back", "back2"):
            [document] = json.loads(one.pydock.ok("inspect", name))
            assert document["State"]["Status"] == "running", document["State"]
            assert document["RestartCount"] == 1
        assert state(one, "back")["Pid"] != first
        seen = state(one, "gone")
        assert (seen["Status"], seen["ExitCode"]) == ("exited", 137)
    finally:
        one.pydock.run("rm", "-f", "back", "back2", "gone")
    assert_no_leaks(one.root, before)
