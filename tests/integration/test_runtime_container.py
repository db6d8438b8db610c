"""Containers started as root: every isolation property is looked at from inside."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runtime
from runtime import capabilities

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


def status_field(text: str, name: str) -> str:
    """Return one field of /proc/PID/status text."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key == name:
            return value.strip()
    raise AssertionError(f"no {name} in {text!r}")


def test_echo_output(runner: Runner) -> None:
    result = runner.run("echo", "hello", "world")
    assert (result.status, result.out) == (0, "hello world\n")


@pytest.mark.parametrize(
    ("args", "status"),
    [
        (("true",), 0),
        (("sh", "-c", "exit 3"), 3),
        (("false",), 1),
    ],
)
def test_exit_status(runner: Runner, args: tuple[str, ...], status: int) -> None:
    assert runner.run(*args).status == status


def test_missing_command_is_127(runner: Runner) -> None:
    result = runner.run("no-such-command")
    assert result.status == 127
    assert "not found" in result.err


def test_missing_absolute_command_is_127(runner: Runner) -> None:
    container = runner.create(runner.spec("/bin/nothing"))
    with pytest.raises(runtime.CommandNotFoundError) as info:
        container.start()
    assert info.value.exit_code == 127


def test_non_executable_is_126(runner: Runner, rootfs: Path) -> None:
    (rootfs / "bin" / "script").write_text("#!/bin/sh\necho no\n")
    assert runner.run("script").status == 126
    assert runner.run("/bin/script").status == 126
    assert runner.run("/bin").status == 126


def test_sigkill_gives_137(runner: Runner) -> None:
    container = runner.create(runner.spec("sleep", "30"))
    container.start()
    container.kill(signal.SIGKILL)
    assert container.wait(timeout=10) == 137


def test_command_is_pid_1(runner: Runner) -> None:
    assert runner.run("sh", "-c", "echo $$").out == "1\n"


def test_hostname(runner: Runner) -> None:
    assert runner.run("hostname", hostname="box").out == "box\n"
    spec = runner.spec("hostname")
    assert runner.run_spec(spec).out == spec.container_id[:12] + "\n"


def test_environment(runner: Runner) -> None:
    result = runner.run(
        "sh", "-c", "echo $FOO/$HOME/$HOSTNAME/$PATH", env=("FOO=bar",), hostname="h"
    )
    assert result.out == f"bar//root/h/{runtime.spec.DEFAULT_PATH}\n"


def test_working_directory_is_created(runner: Runner) -> None:
    assert runner.run("sh", "-c", "pwd", cwd="/srv/work").out == "/srv/work\n"


def test_user_switch(runner: Runner) -> None:
    user = runtime.resolve_user(runner.rootfs, "nobody")
    assert user == runtime.User(65534, 65534, (50,))
    result = runner.run("sh", "-c", "id; echo $HOME; cat /proc/self/status", user=user)
    lines = result.out.splitlines()
    assert lines[0].startswith("uid=65534(nobody) gid=65534(nogroup) groups=")
    assert "50(staff)" in lines[0]
    assert lines[1] == "/home/nobody"
    status = "\n".join(lines[2:])
    assert int(status_field(status, "CapEff"), 16) == 0
    assert int(status_field(status, "CapBnd"), 16) == capabilities.mask(
        capabilities.DEFAULT_CAPABILITIES
    )


def test_proc_is_the_containers(runner: Runner) -> None:
    listing = runner.run("ls", "/proc").out.split()
    # Only ls itself, as pid 1: none of the host's processes.
    assert [name for name in listing if name.isdigit()] == ["1"]
    assert runner.run("cat", "/proc/self/stat").out.split()[0] == "1"


def test_dev_null_and_friends(runner: Runner) -> None:
    script = "echo gone > /dev/null && cat /dev/null && head -c 4 /dev/zero | wc -c; ls /dev"
    result = runner.run(
        "sh", "-c", script.replace("head", "busybox head").replace("wc", "busybox wc")
    )
    lines = result.out.split()
    assert lines[0] == "4"
    for name in ("null", "zero", "full", "random", "urandom", "tty", "pts", "shm", "mqueue"):
        assert name in lines[1:]
    script = "for l in fd stdin stdout stderr ptmx; do busybox readlink /dev/$l; done"
    links = runner.run("sh", "-c", script).out.split()
    assert links == ["/proc/self/fd", *(f"/proc/self/fd/{n}" for n in range(3)), "pts/ptmx"]


def test_network_none_has_only_lo(runner: Runner) -> None:
    result = runner.run("cat", "/proc/net/dev")
    names = [line.split(":")[0].strip() for line in result.out.splitlines()[2:]]
    assert names == ["lo"]
    flags = runner.run("cat", "/sys/class/net/lo/flags").out.strip()
    assert int(flags, 16) & 0x1, "lo is not up"


def test_network_host_shares_interfaces(runner: Runner) -> None:
    result = runner.run("cat", "/proc/net/dev", network=runtime.NetworkMode.HOST)
    inside = sorted(line.split(":")[0].strip() for line in result.out.splitlines()[2:])
    host = sorted(
        line.split(":")[0].strip() for line in Path("/proc/net/dev").read_text().splitlines()[2:]
    )
    assert inside == host


def test_default_capabilities(runner: Runner) -> None:
    status = runner.run("cat", "/proc/self/status").out
    expected = capabilities.mask(capabilities.DEFAULT_CAPABILITIES)
    assert expected == 0xA80425FB
    for name in ("CapEff", "CapPrm", "CapBnd"):
        assert int(status_field(status, name), 16) == expected
    assert int(status_field(status, "CapInh"), 16) == 0
    assert status_field(status, "NoNewPrivs") == "0"


def test_cap_drop_and_add(runner: Runner) -> None:
    caps = runtime.resolve_capabilities(add=["sys_admin"], drop=["CAP_NET_RAW", "chown"])
    status = runner.run("cat", "/proc/self/status", capabilities=caps).out
    assert int(status_field(status, "CapEff"), 16) == capabilities.mask(caps)
    assert (
        "Operation not permitted"
        in runner.run("sh", "-c", "busybox chown 1 /tmp", capabilities=caps).err
    )


def test_no_new_privileges(runner: Runner) -> None:
    status = runner.run("cat", "/proc/self/status", no_new_privileges=True).out
    assert status_field(status, "NoNewPrivs") == "1"


def test_readonly_rootfs(runner: Runner) -> None:
    result = runner.run(
        "sh",
        "-c",
        "touch /x; echo $?; echo ok > /dev/shm/f && cat /dev/shm/f",
        readonly_rootfs=True,
    )
    assert result.out.split() == ["1", "ok"]
    assert "Read-only file system" in result.err


def test_masked_and_readonly_paths(runner: Runner) -> None:
    script = (
        "for p in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts; do"
        " [ -e $p ] && echo $p:$(busybox wc -c < $p); done;"
        " ls -A /sys/firmware /proc/acpi | busybox wc -l;"
        " echo x > /proc/sys/kernel/hostname; echo sys:$?"
    )
    result = runner.run("sh", "-c", script)
    lines = result.out.splitlines()
    masked = [line for line in lines if line.startswith("/proc/")]
    assert masked, "no masked file exists on this kernel"
    assert all(line.endswith(":0") for line in masked), masked
    assert "sys:1" in lines
    assert "Read-only file system" in result.err


def test_rlimits(runner: Runner) -> None:
    limit = runtime.Rlimit("nofile", 123, 456)
    result = runner.run("sh", "-c", "ulimit -n; ulimit -Hn", rlimits=(limit,))
    assert result.out.split() == ["123", "456"]


def test_volume_read_write_and_readonly(runner: Runner, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "in").write_text("from host\n")
    mounts = (
        runtime.BindMount(data, "/data"),
        runtime.BindMount(data, "/ro", readonly=True),
    )
    script = "cat /data/in; echo out > /data/out; echo x > /ro/x; echo ro:$?"
    result = runner.run("sh", "-c", script, mounts=mounts)
    assert result.out.splitlines() == ["from host", "ro:1"]
    assert (data / "out").read_text() == "out\n"
    assert not (data / "x").exists()


def test_symlink_volume_target_stays_in_rootfs(
    runner: Runner, rootfs: Path, tmp_path: Path
) -> None:
    source = tmp_path / "vol"
    source.mkdir()
    (source / "marker").write_text("volume\n")
    (rootfs / "etc-link").symlink_to("/etc")
    (rootfs / "up-link").symlink_to("../../../../../etc")
    host_etc = sorted(os.listdir("/etc"))
    mounts = (
        runtime.BindMount(source, "/etc-link/pydock-vol"),
        runtime.BindMount(source, "/up-link/pydock-up"),
    )
    result = runner.run(
        "sh", "-c", "cat /etc/pydock-vol/marker /etc/pydock-up/marker", mounts=mounts
    )
    assert result.out == "volume\nvolume\n"
    assert (rootfs / "etc" / "pydock-vol").is_dir()
    assert sorted(os.listdir("/etc")) == host_etc


@pytest.mark.parametrize("name", ["proc", "dev", "sys"])
def test_special_dir_symlink_in_image_is_refused(runner: Runner, rootfs: Path, name: str) -> None:
    mounts_before = _mounts_beside(rootfs)
    children_before = _children()
    (rootfs / name).symlink_to("/")
    with pytest.raises(runtime.SetupError, match=f"/{name} is a symlink in the image"):
        runner.run("true")
    assert _mounts_beside(rootfs) == mounts_before
    # The monitor and init are gone and reaped (children other tests left do not count).
    assert _children() <= children_before


def _mounts_beside(rootfs: Path) -> list[str]:
    """This test's mounts: those naming the directory that holds ``rootfs`` (mounts of other
    processes on the machine come and go meanwhile)."""
    mine = str(rootfs.parent)
    return [line for line in Path("/proc/self/mountinfo").read_text().splitlines() if mine in line]


def _children() -> set[int]:
    """Pids whose parent is this process, zombies included."""
    me, found = os.getpid(), set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == me:
            found.add(int(entry))
    return found


def test_missing_bind_source(runner: Runner, tmp_path: Path) -> None:
    mounts = (runtime.BindMount(tmp_path / "absent", "/x"),)
    with pytest.raises(runtime.InvalidSpecError, match="does not exist"):
        runner.run("true", mounts=mounts)


def test_state_table(runner: Runner) -> None:
    container = runner.create(runner.spec("sh", "-c", "exit 5"))
    assert container.state is runtime.State.CREATED
    os.kill(container.pid, 0)
    container.start()
    assert container.state is runtime.State.RUNNING
    assert container.wait(timeout=10) == 5
    assert container.state is runtime.State.STOPPED
    with pytest.raises(runtime.InvalidTransitionError):
        container.start()
    container.delete()
    assert container.state is runtime.State.DELETED


def test_force_delete_kills_and_releases_everything(runner: Runner) -> None:
    fds_before = sorted(os.listdir("/proc/self/fd"))
    container = runner.create(runner.spec("sleep", "30", tty=True))
    container.start()
    container.delete(force=True)
    assert (container.state, container.exit_code) == (runtime.State.DELETED, 137)
    with pytest.raises(ProcessLookupError):
        os.kill(container.pid, 0)
    assert sorted(os.listdir("/proc/self/fd")) == fds_before


def test_exec_failure_stops_a_created_container(runner: Runner) -> None:
    container = runner.create(runner.spec("missing"))
    with pytest.raises(runtime.CommandNotFoundError):
        container.start()
    assert (container.state, container.exit_code) == (runtime.State.STOPPED, 127)


def test_tty(runner: Runner) -> None:
    spec = runner.spec("sh", "-c", "test -t 0 && test -t 1 && tty && echo $TERM", tty=True)
    container = runner.create(spec)
    console = container.console_fd
    assert console is not None
    container.start()
    assert container.wait(timeout=10) == 0
    output = b""
    # The caller owns the console until delete; reading ends with EIO once the terminal's last
    # user is gone.
    with contextlib.suppress(OSError):
        while chunk := os.read(console, 4096):
            output += chunk
    assert output.decode().split() == ["/dev/pts/0", "xterm"]


def test_monitor_forwards_signals(runner: Runner) -> None:
    script = "trap 'exit 42' TERM; echo ready; while true; do sleep 0.05; done"
    with tempfile.NamedTemporaryFile() as out:
        container = runner.create(runner.spec("sh", "-c", script), stdout=out.fileno())
        container.start()
        deadline = time.monotonic() + 10
        while b"ready" not in Path(out.name).read_bytes() and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(container.monitor_pid, signal.SIGTERM)
        assert container.wait(timeout=10) == 42


def test_detached_container_outlives_its_caller(runner: Runner, tmp_path: Path) -> None:
    exit_file = tmp_path / "exit"
    go = runner.rootfs / "tmp" / "go"
    # The container's stdio is /dev/null, as a log file would be: the caller's pipes must be
    # free once the caller exits, or subprocess.run below would wait for the container.
    script = textwrap.dedent(
        f"""
        import os
        from pathlib import Path
        import runtime
        spec = runtime.ContainerSpec(
            container_id="detached", rootfs=Path({str(runner.rootfs)!r}),
            args=("sh", "-c", "while [ ! -e /tmp/go ]; do sleep 0.05; done; exit 7"))
        null = os.open(os.devnull, os.O_RDWR)
        c = runtime.run(spec, detach=True, exit_file=Path({str(exit_file)!r}),
                        stdin=null, stdout=null, stderr=null)
        print(c.pid, c.monitor_pid)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(Path(runtime.__file__).parent.parent)}
    pids: list[int] = []
    try:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, timeout=20, env=env
        )
        assert done.returncode == 0, done.stderr
        pids = [int(word) for word in done.stdout.split()]
        os.kill(pids[0], 0)
        assert runtime.read_exit_file(exit_file) is None
        go.touch()
        deadline = time.monotonic() + 15
        while runtime.read_exit_file(exit_file) is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert runtime.read_exit_file(exit_file) == 7
    finally:
        go.touch()  # a container left waiting by a failure above ends by itself
        for target in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(target, signal.SIGKILL)
