"""Monitors forked by a spawner process (the API service's way) instead of by the caller."""

from __future__ import annotations

import os
import signal
import socket
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runtime
from runtime import spawner as spawners

from .runtime_support import Runner, build_busybox_rootfs, parent_of

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="creates namespaces and cgroups as root"),
    pytest.mark.timeout(60),
]


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    runner = Runner(build_busybox_rootfs(tmp_path / "rootfs"))
    yield runner
    runner.cleanup()


@pytest.fixture
def spawner() -> Iterator[spawners.Spawner]:
    made = spawners.Spawner()
    spawners.install(made)
    try:
        yield made
    finally:
        spawners.install(None)
        made.close()


def _fds(pid: int) -> list[str]:
    return sorted(os.listdir(f"/proc/{pid}/fd"), key=int)


def test_a_spawned_monitor_runs_the_container_and_its_status_comes_back(
    runner: Runner, spawner: spawners.Spawner, tmp_path: Path
) -> None:
    exit_file = tmp_path / "exit"
    with tempfile.TemporaryFile() as out:
        spec = runner.spec("sh", "-c", "echo hi from $$; exit 7")
        container = runner.create(spec, stdout=out.fileno(), exit_file=exit_file)
        assert parent_of(container.monitor_pid) == spawner.process.pid
        container.start()
        assert container.wait(timeout=20) == 7
        out.seek(0)
        assert out.read() == b"hi from 1\n"
    assert runtime.read_exit_file(exit_file) == 7


def test_the_command_holds_nothing_but_its_stdio(
    runner: Runner, spawner: spawners.Spawner, tmp_path: Path
) -> None:
    """The descriptors travel to the spawner close-on-exec, as the caller's own are: the
    channel ends when the command starts (a start that waits for it would hang), and no
    descriptor of the set-up reaches the container."""
    container = runner.create(runner.spec("sleep", "30"), exit_file=tmp_path / "exit")
    container.start(timeout=10)
    assert _fds(container.pid) == ["0", "1", "2"]
    container.kill(signal.SIGKILL)
    assert container.wait(timeout=10) == 137


def test_containers_outlive_their_spawner(
    runner: Runner, spawner: spawners.Spawner, tmp_path: Path
) -> None:
    go = runner.rootfs / "tmp" / "go"
    go.parent.mkdir(exist_ok=True)
    script = "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 5"
    container = runner.create(runner.spec("sh", "-c", script), exit_file=tmp_path / "exit")
    container.start()
    spawner.close()
    assert not spawner.alive()
    assert spawners.installed() is None
    os.kill(container.pid, 0)  # still running
    go.touch()
    assert container.wait(timeout=20) == 5  # the monitor recorded it, unparented


def test_without_a_live_spawner_the_caller_forks_the_monitor(
    runner: Runner, spawner: spawners.Spawner
) -> None:
    spawner.process.kill()
    spawner.process.wait()
    assert spawners.installed() is None
    container = runner.create(runner.spec("true"))
    assert parent_of(container.monitor_pid) == os.getpid()
    container.start()
    assert container.wait(timeout=20) == 0


def test_a_request_that_is_not_a_job_is_refused_and_the_spawner_goes_on(
    runner: Runner, spawner: spawners.Spawner, tmp_path: Path
) -> None:
    sock = spawner._sock  # the caller's end: only the caller can write to a spawner
    socket.send_fds(sock, [b"not a pickle"], [])
    reply = sock.recv(4096).decode()
    assert reply and not reply.isdigit()
    container = runner.create(runner.spec("true"), exit_file=tmp_path / "exit")
    assert parent_of(container.monitor_pid) == spawner.process.pid
    container.start()
    assert container.wait(timeout=20) == 0


def test_the_exit_command_runs_from_a_helper_the_spawner_started(
    runner: Runner, spawner: spawners.Spawner, tmp_path: Path
) -> None:
    """The spawner starts the exit command's helper beside the monitor (the monitor did it on
    its way to init); it still runs the command once the monitor is gone."""
    done = tmp_path / "done"
    command = ("/bin/sh", "-c", f"echo recorded > {done}")
    container = runner.create(
        runner.spec("sleep", "30"), exit_file=tmp_path / "exit", exit_command=command
    )
    container.start()
    helpers = [
        int(entry.name)
        for entry in Path("/proc").iterdir()
        if entry.name.isdigit() and _is_helper_of(int(entry.name), spawner.process.pid)
    ]
    assert len(helpers) == 1
    assert not done.exists()
    container.kill(signal.SIGKILL)
    assert container.wait(timeout=10) == 137
    deadline = time.monotonic() + 20
    while not done.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert done.read_text() == "recorded\n"


def _is_helper_of(pid: int, parent: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        return parent_of(pid) == parent and b"read -r _" in cmdline
    except (FileNotFoundError, ProcessLookupError, AssertionError):
        return False
