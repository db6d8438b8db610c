"""The runtime's newer verbs, as root: ``--init`` (a reaper as pid 1), ``execute`` (a process
joining a running container), the monitor's exit command, and a caller that is itself inside
a user namespace (no mknod there: the devices are bound from the host)."""

from __future__ import annotations

import os
import select
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runtime

from .runtime_support import Runner, build_busybox_rootfs

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0: runs containers without userns"),
    pytest.mark.timeout(60),
]


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    return build_busybox_rootfs(tmp_path / "rootfs")


@pytest.fixture
def runner(rootfs: Path) -> Iterator[Runner]:
    runner = Runner(rootfs)
    yield runner
    runner.cleanup()


def test_init_is_pid_1_and_passes_the_status_on(runner: Runner) -> None:
    result = runner.run("sh", "-c", "echo $$; exit 5", init=True)
    assert (result.status, result.out) == (5, "2\n")


def test_init_reaps_orphans(runner: Runner) -> None:
    # The subshell exits at once, so its sleep is orphaned to init (pid 1). Until init reaps it
    # after it exits, /proc/PID stays (as a zombie); the loop waits for that, 20 s at most.
    script = (
        "p=$(sleep 0.1 >/dev/null 2>&1 & echo $!); n=0; "
        "while [ -e /proc/$p ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; "
        "if [ -e /proc/$p ]; then echo left; else echo reaped; fi; "
        "cat /proc/[0-9]*/status | grep -c zombie"
    )
    assert runner.run("sh", "-c", script, init=True).out == "reaped\n0\n"


def test_init_forwards_signals_and_reports_them(runner: Runner) -> None:
    spec = runner.spec("sh", "-c", "echo ready; exec sleep 30", init=True)
    readable, writable = os.pipe()
    try:
        container = runner.create(spec, stdout=writable)
        container.start()
        os.close(writable)
        writable = -1
        # The command has started, so init (which forks it) has its signal handlers set.
        ready, _, _ = select.select([readable], [], [], 30)
        assert ready and os.read(readable, 64) == b"ready\n"
        container.kill(15)
        assert container.wait(timeout=10) == 128 + 15
    finally:
        os.close(readable)
        if writable >= 0:
            os.close(writable)


def test_init_with_missing_command_is_127(runner: Runner) -> None:
    assert runner.run("no-such-command", init=True).status == 127


def test_execute_joins_the_container(runner: Runner) -> None:
    spec = runner.spec("sleep", "30", hostname="joined")
    container = runner.create(spec)
    container.start()
    with tempfile.TemporaryFile() as out:
        process = runtime.execute(
            runtime.ExecSpec(
                container_id=spec.container_id,
                target_pid=container.pid,
                args=("sh", "-c", "hostname; echo $$; cat /proc/1/comm; ls /sys/class/net"),
                user=runtime.User(1, 1),
            ),
            stdout=out.fileno(),
        )
        assert process.wait(timeout=10) == 0
        out.seek(0)
        assert out.read().decode().split() == ["joined", "2", "sleep", "lo"]
    with pytest.raises(runtime.CommandNotFoundError):
        runtime.execute(
            runtime.ExecSpec(spec.container_id, container.pid, args=("no-such-command",))
        )
    failing = runtime.ExecSpec(spec.container_id, container.pid, args=("sh", "-c", "exit 4"))
    assert runtime.execute(failing).wait(timeout=10) == 4


def test_exit_command_runs_after_the_exit_file(runner: Runner, tmp_path: Path) -> None:
    exit_file, marker = tmp_path / "exit", tmp_path / "marker"
    # Written aside and renamed, so that the marker appears only once it is complete.
    command = ("/bin/sh", "-c", f"cat {exit_file} > {marker}.part && mv {marker}.part {marker}")
    container = runner.create(runner.spec("sh", "-c", "exit 6"), exit_file=exit_file,
                              exit_command=command)  # fmt: skip
    container.start()
    assert container.wait(timeout=10) == 6
    deadline = time.monotonic() + 10
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert marker.read_text() == "6\n"


NESTED = textwrap.dedent(
    """
    import sys, tempfile
    from pathlib import Path
    import runtime
    from runtime import idmap, userns

    userns.enter(idmap.single())
    spec = runtime.ContainerSpec(container_id="nested", rootfs=Path(sys.argv[1]),
                                 args=("sh", "-c", "id -u; ls -l /dev/null; echo x > /dev/null"))
    with tempfile.TemporaryFile() as out:
        container = runtime.run(spec, stdout=out.fileno(), stderr=out.fileno())
        status = container.wait(timeout=20)
        container.delete()
        out.seek(0)
        print(status, out.read().decode())
    """
)


def test_caller_in_a_user_namespace(rootfs: Path, tmp_path: Path) -> None:
    script = tmp_path / "nested.py"
    script.write_text(NESTED)
    repo = Path(runtime.__file__).resolve().parents[1]
    done = subprocess.run(
        [sys.executable, str(script), str(rootfs)],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(repo)},
    )
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "0 0"  # status 0, uid 0 in the container
    assert lines[1].startswith("crw-rw-rw-")  # /dev/null bound from the host, not mknod
