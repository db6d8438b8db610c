"""Docker's kernel-facing ``run``/``create`` flags, as root, through the real CLI: each seen from
inside the container (or its cgroup from the host), each in ``inspect``, and a bad value of
each refused in one line with status 125, leaving nothing behind."""

from __future__ import annotations

import json
import os
import platform
import pty
import select
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Snapshot,
    Workspace,
    clean_env,
    container_drivers,
    fails,
    kill_leftovers,
    processes_of,
)
from .registry_support import running_registry
from .test_cli_network import PAGE, Namespace, NsPydock, assert_released

pytestmark = ROOT_CONTAINER_TESTS

CGROUP_V2 = Path("/sys/fs/cgroup/cgroup.controllers").exists()
HOST_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def _empty(cgroup: str) -> bool:
    try:
        return not Path(cgroup, "cgroup.procs").read_text().strip()
    except OSError:
        return False  # gone meanwhile


def assert_left_nothing(root: Path, before: Snapshot, *, settle: float = 10.0) -> None:
    """Nothing of ``root`` is left: mounts, processes, rows, directories, layers, cgroups.

    Cgroups are the whole machine's, and other pydock roots here make and remove theirs
    meanwhile: a new one counts as ours while it holds no process, as a failed start of ours
    would leave it (one of another root's exiting containers goes within ``settle``).
    """
    deadline = time.monotonic() + settle
    while True:
        after = Snapshot.take(root)
        strays = sorted(c for c in set(after.cgroups) - set(before.cgroups) if _empty(c))
        settled = not strays and after.processes == before.processes
        if settled or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert strays == []
    assert (after.mounts, after.processes, after.rows) == (
        before.mounts,
        before.processes,
        before.rows,
    )
    assert (after.containers, after.layers) == (before.containers, before.layers)


def wait_quiet(root: Path, timeout: float = 30.0) -> None:
    """Wait (bounded) until no process of ``root`` is left: the exit hooks of containers an
    earlier test removed may still be finishing, and would count as gone in a leak check."""
    deadline = time.monotonic() + timeout
    while processes_of(root):
        assert time.monotonic() < deadline, processes_of(root)
        time.sleep(0.1)


def inspect(ws: Workspace, name: str) -> dict[str, dict[str, object]]:
    [document] = json.loads(ws.pydock.ok("inspect", name))
    assert isinstance(document, dict)
    return document


def inside(ws: Workspace, *args: str) -> str:
    """``run --rm ARGS... busybox``'s output; ``args`` end with the command."""
    return ws.pydock.ok("run", "--rm", *args)


def test_ulimits(one: Workspace) -> None:
    out = inside(
        one, "--ulimit", "nofile=1024:2048", "--ulimit", "nproc=77", "--ulimit", "core=-1",
        "busybox", "sh", "-c", "ulimit -n; ulimit -Hn; ulimit -u; ulimit -c",
    )  # fmt: skip
    assert out == "1024\n2048\n77\nunlimited\n"
    one.pydock.ok("create", "--name", "ul", "--ulimit", "nofile=10", "busybox", "true")
    try:
        ulimits = inspect(one, "ul")["HostConfig"]["Ulimits"]
        assert ulimits == [{"Name": "nofile", "Hard": 10, "Soft": 10}]
    finally:
        one.pydock.run("rm", "ul")


def test_shm_size(one: Workspace) -> None:
    script = "grep ' /dev/shm ' /proc/mounts | grep -o 'size=[0-9]*k'"
    assert inside(one, "--shm-size", "16m", "busybox", "sh", "-c", script) == "size=16384k\n"
    assert inside(one, "busybox", "sh", "-c", script) == "size=65536k\n"
    one.pydock.ok("create", "--name", "shm", "--shm-size", "1g", "busybox", "true")
    try:
        assert inspect(one, "shm")["HostConfig"]["ShmSize"] == 1 << 30
    finally:
        one.pydock.run("rm", "shm")


def test_sysctls_are_the_containers_own(one: Workspace) -> None:
    host_forward = Path("/proc/sys/net/ipv4/ip_forward").read_text()
    host_shmmax = Path("/proc/sys/kernel/shmmax").read_text()
    out = inside(
        one, "--sysctl", "net.ipv4.ip_forward=1", "--sysctl", "kernel.shmmax=123456789",
        "busybox", "cat", "/proc/sys/net/ipv4/ip_forward", "/proc/sys/kernel/shmmax",
    )  # fmt: skip
    assert out == "1\n123456789\n"
    # The host's values did not move.
    assert Path("/proc/sys/net/ipv4/ip_forward").read_text() == host_forward
    assert Path("/proc/sys/kernel/shmmax").read_text() == host_shmmax
    one.pydock.ok("create", "--name", "sc", "--sysctl", "kernel.msgmax=9000", "busybox", "true")
    try:
        assert inspect(one, "sc")["HostConfig"]["Sysctls"] == {"kernel.msgmax": "9000"}
    finally:
        one.pydock.run("rm", "sc")


def test_group_add_and_domainname(one: Workspace) -> None:
    # busybox's /etc/group: root 0, daemon 1, tty 5, nogroup 65534.
    out = inside(
        one, "-u", "daemon", "--group-add", "tty", "--group-add", "4242",
        "--domainname", "example.org",
        "busybox", "sh", "-c", "id -G; cat /proc/sys/kernel/domainname",
    )  # fmt: skip
    assert out == "1 5 4242\nexample.org\n"
    one.pydock.ok(
        "create", "--name", "gd", "--group-add", "nogroup", "--domainname", "d.test",
        "busybox", "true",
    )  # fmt: skip
    try:
        document = inspect(one, "gd")
        assert document["HostConfig"]["GroupAdd"] == ["nogroup"]
        assert document["Config"]["Domainname"] == "d.test"
    finally:
        one.pydock.run("rm", "gd")


def _control_file(pid: int, controller: str, name: str) -> Path:
    """A control file of ``pid``'s cgroup, seen from the host (v1 hierarchy or v2 tree)."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return Path("/sys/fs/cgroup", controller, path.lstrip("/"), name)
    path = Path(f"/proc/{pid}/cgroup").read_text().splitlines()[0].split(":", 2)[2]
    return Path("/sys/fs/cgroup", path.lstrip("/"), name)


@pytest.mark.skipif(len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs for --cpuset-cpus 1")
def test_cpu_and_memory_cgroup_flags(one: Workspace) -> None:
    one.pydock.ok(
        "run", "-d", "--name", "cg", "-c", "512", "--cpuset-cpus", "1", "-m", "64m",
        "--memory-swap", "128m", "--memory-reservation", "32m",
        "busybox", "sleep", "60",
    )  # fmt: skip
    try:
        document = inspect(one, "cg")
        host = document["HostConfig"]
        assert (host["CpuShares"], host["CpusetCpus"]) == (512, "1")
        assert (host["MemorySwap"], host["MemoryReservation"]) == (128 << 20, 32 << 20)
        pid = document["State"]["Pid"]
        assert isinstance(pid, int)
        seen = {
            name: _control_file(pid, controller, name).read_text().strip()
            for controller, name in (
                ("cpu", "cpu.weight" if CGROUP_V2 else "cpu.shares"),
                ("cpuset", "cpuset.cpus"),
                ("memory", "memory.swap.max" if CGROUP_V2 else "memory.memsw.limit_in_bytes"),
                ("memory", "memory.low" if CGROUP_V2 else "memory.soft_limit_in_bytes"),
            )
        }
        if CGROUP_V2:
            assert seen == {
                "cpu.weight": "20",
                "cpuset.cpus": "1",
                "memory.swap.max": "67108864",
                "memory.low": "33554432",
            }
        else:
            assert seen == {
                "cpu.shares": "512",
                "cpuset.cpus": "1",
                "memory.memsw.limit_in_bytes": "134217728",
                "memory.soft_limit_in_bytes": "33554432",
            }
        # From inside: the only CPU the scheduler gives the container.
        status = one.pydock.ok("exec", "cg", "grep", "Cpus_allowed_list", "/proc/self/status")
        assert status.split() == ["Cpus_allowed_list:", "1"]
    finally:
        one.pydock.run("rm", "-f", "cg")


NAMESPACES = "for n in pid ipc uts; do readlink /proc/self/ns/$n; done; hostname"


def _gone(pid: int, timeout: float = 5.0) -> bool:
    """Whether process ``pid`` is gone (or a zombie) within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except OSError:
            return True
        if state == "Z":
            return True
        time.sleep(0.05)
    return False


def test_host_namespaces(one: Workspace) -> None:
    host = [os.readlink(f"/proc/self/ns/{n}") for n in ("pid", "ipc", "uts")]
    marker = Path("/dev/shm") / f"pydock-test-{uuid.uuid4().hex}"
    marker.write_text("from the host\n")
    try:
        out = inside(
            one, "--pid", "host", "--ipc", "host", "--uts", "host",
            "busybox", "sh", "-c", f"{NAMESPACES}; cat /dev/shm/{marker.name}",
        )  # fmt: skip
    finally:
        marker.unlink()
    assert out.splitlines() == [*host, os.uname().nodename, "from the host"]
    # Its processes end with it, as they would with a pid namespace of its own.
    left = inside(one, "--pid", "host", "busybox", "sh", "-c", "sleep 3131 & echo $!").strip()
    assert _gone(int(left))
    # Without them, each namespace is the container's own.
    own = inside(one, "--ipc", "private", "busybox", "sh", "-c", NAMESPACES).splitlines()
    assert [a == b for a, b in zip(own[:3], host, strict=True)] == [False, False, False]
    one.pydock.ok("create", "--name", "ns", "--pid", "host", "--uts", "host", "busybox", "true")
    try:
        host_config = inspect(one, "ns")["HostConfig"]
        modes = [host_config[key] for key in ("PidMode", "IpcMode", "UTSMode")]
        assert modes == ["host", "private", "host"]
    finally:
        one.pydock.run("rm", "ns")


def test_devices(one: Workspace) -> None:
    # /dev/null is character device 1:3 (stat prints the numbers in hex).
    out = inside(
        one, "--device", "/dev/null:/dev/mynull", "busybox",
        "sh", "-c", "stat -c %F:%t:%T /dev/mynull; echo x > /dev/mynull && echo written",
    )  # fmt: skip
    assert out == "character special file:1:3\nwritten\n"
    one.pydock.ok("create", "--name", "dv", "--device", "/dev/zero:/dev/z:rw", "busybox", "true")
    try:
        assert inspect(one, "dv")["HostConfig"]["Devices"] == [
            {"PathOnHost": "/dev/zero", "PathInContainer": "/dev/z", "CgroupPermissions": "rw"}
        ]
    finally:
        one.pydock.run("rm", "dv")


@pytest.mark.skipif(CGROUP_V2, reason="device permissions need the cgroup v1 devices controller")
@pytest.mark.skipif(not Path("/dev/loop-control").exists(), reason="needs /dev/loop-control")
def test_device_permissions(one: Workspace) -> None:
    # /dev/loop-control is none of the container's own nodes (nor in Docker's default list):
    # given r, it opens for reading only.
    # (true, not ":", whose failed redirection would end the shell.)
    script = "true < /dev/k && echo read; true > /dev/k && echo write || echo denied"
    done = one.pydock.run("run", "--rm", "--device", "/dev/loop-control:/dev/k:r", "busybox",
                          "sh", "-c", script)  # fmt: skip
    assert (done.status, done.out) == (0, "read\ndenied\n"), done
    assert "Operation not permitted" in done.err
    assert inside(one, "--device", "/dev/loop-control:/dev/k", "busybox", "sh", "-c", script) == (
        "read\nwrite\n"
    )


def test_cidfile(one: Workspace, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    cid = one.pydock.ok("run", "-d", "--cidfile", str(cidfile), "busybox", "true").strip()
    assert cidfile.read_text() == cid
    one.pydock.ok("wait", cid)
    one.pydock.ok("rm", cid)
    created = tmp_path / "created"
    cid = one.pydock.ok("create", "--cidfile", str(created), "busybox", "true").strip()
    assert created.read_text() == cid
    one.pydock.ok("rm", cid)


def test_expose_and_label_file(one: Workspace, tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# team labels\ntier=web\nowner=ops\n")
    one.pydock.ok(
        "create", "--name", "ex", "--expose", "8080", "--expose", "7000-7001/udp",
        "--label-file", str(labels), "-l", "owner=dev", "busybox", "true",
    )  # fmt: skip
    try:
        config = inspect(one, "ex")["Config"]
        assert config["ExposedPorts"] == {"7000/udp": {}, "7001/udp": {}, "8080/tcp": {}}
        assert config["Labels"] == {"tier": "web", "owner": "dev"}
        assert one.pydock.ok("ps", "-a", "-q", "-f", "label=tier=web").split() == [
            config["Hostname"]
        ]
    finally:
        one.pydock.run("rm", "ex")


def test_platform(one: Workspace) -> None:
    assert inside(one, "--platform", f"linux/{HOST_ARCH}", "busybox", "echo", "ok") == "ok\n"
    other = "arm64" if HOST_ARCH == "amd64" else "amd64"
    line = fails(one.pydock.run("run", "--rm", "--platform", f"linux/{other}", "busybox", "true"))
    assert f"linux/{other}" in line and f"linux/{HOST_ARCH}" in line


def test_quiet_pull(one: Workspace, tmp_path: Path) -> None:
    with running_registry(tmp_path / "registry") as registry:
        name = f"{registry.address}/flags/bb:1"
        one.pydock.ok("tag", "busybox", name)
        one.pydock.ok("push", "-q", name)
        one.pydock.ok("rmi", name)
        done = one.pydock.run("run", "--rm", "-q", name, "echo", "pulled")
        assert (done.status, done.out, done.err) == (0, "pulled\n", "")
        one.pydock.ok("rmi", name)
        done = one.pydock.run("create", "--name", "loud", name, "true")
        assert done.status == 0 and f"Unable to find image '{name}' locally" in done.err, done
        one.pydock.ok("rm", "loud")
        one.pydock.ok("rmi", name)


@pytest.fixture
def netns(tmp_path: Path) -> Iterator[tuple[NsPydock, Namespace]]:
    """pydock in a network namespace of its own, so -P touches nothing of the host's."""
    namespace = Namespace()
    pydock = NsPydock(tmp_path / "root", container_drivers()[-1], namespace)
    try:
        pydock.ok("import", "builtin:busybox", "busybox")
        yield pydock, namespace
    finally:
        pydock.remove_all()
        kill_leftovers(pydock.root)
        namespace.close()


def test_publish_all_publishes_expose(netns: tuple[NsPydock, Namespace], tmp_path: Path) -> None:
    pydock, namespace = netns
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(PAGE)
    cid = pydock.ok(
        "run", "-d", "-P", "--expose", "81", "-v", f"{www}:/www:ro",
        "busybox", "httpd", "-f", "-p", "81", "-h", "/www",
    ).strip()  # fmt: skip
    [line] = pydock.ok("port", cid).splitlines()
    assert line.startswith("81/tcp -> 0.0.0.0:")
    assert namespace.fetch(f"http://127.0.0.1:{line.rsplit(':', 1)[1]}/index.html") == PAGE
    pydock.ok("rm", "-f", cid)
    assert_released(pydock, namespace)


def _has_sys_resource() -> bool:
    """Whether this process holds CAP_SYS_RESOURCE (24), which lowering a score needs."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("CapEff:"):
            return bool(int(line.split()[1], 16) >> 24 & 1)
    return False


def test_oom_score_adj(one: Workspace) -> None:
    # The container's first process has it, and what it starts inherits it.
    out = inside(
        one, "--oom-score-adj", "500", "busybox",
        "sh", "-c", "cat /proc/self/oom_score_adj; cat /proc/1/oom_score_adj",
    )  # fmt: skip
    assert out.split() == ["500", "500"]
    assert inside(one, "busybox", "cat", "/proc/self/oom_score_adj").strip() == "0"
    one.pydock.ok("run", "-d", "--name", "oom", "--oom-score-adj", "300", "busybox", "sleep", "60")
    try:
        assert inspect(one, "oom")["HostConfig"]["OomScoreAdj"] == 300
        # An exec'd process gets it too, as runc gives it.
        assert one.pydock.ok("exec", "oom", "cat", "/proc/self/oom_score_adj") == "300\n"
    finally:
        one.pydock.run("rm", "-f", "oom")


@pytest.mark.skipif(not _has_sys_resource(), reason="lowering a score needs CAP_SYS_RESOURCE")
def test_negative_oom_score_adj(one: Workspace) -> None:
    out = inside(one, "--oom-score-adj", "-500", "busybox", "cat", "/proc/self/oom_score_adj")
    assert out.strip() == "-500"


def test_cfs_period_quota_and_cpuset_mems(one: Workspace) -> None:
    one.pydock.ok(
        "run", "-d", "--name", "cfs", "--cpu-period", "50000", "--cpu-quota", "25000",
        "--cpuset-mems", "0", "busybox", "sleep", "60",
    )  # fmt: skip
    try:
        document = inspect(one, "cfs")
        host = document["HostConfig"]
        assert (host["CpuPeriod"], host["CpuQuota"], host["CpusetMems"]) == (50000, 25000, "0")
        pid = document["State"]["Pid"]
        assert isinstance(pid, int)
        mems = _control_file(pid, "cpuset", "cpuset.mems").read_text().strip()
        if CGROUP_V2:
            cpu = [_control_file(pid, "cpu", "cpu.max").read_text().strip()]
            assert (cpu, mems) == (["25000 50000"], "0")
        else:
            cpu = [
                _control_file(pid, "cpu", name).read_text().strip()
                for name in ("cpu.cfs_period_us", "cpu.cfs_quota_us")
            ]
            assert (cpu, mems) == (["50000", "25000"], "0")
    finally:
        one.pydock.run("rm", "-f", "cfs")


def test_cgroupns(one: Workspace) -> None:
    host = os.readlink("/proc/self/ns/cgroup")
    shared = inside(one, "--cgroupns", "host", "busybox", "readlink", "/proc/self/ns/cgroup")
    assert shared.strip() == host
    own = inside(one, "--cgroupns", "private", "busybox", "readlink", "/proc/self/ns/cgroup")
    assert own.strip().startswith("cgroup:[")
    assert own.strip() != host
    # The default is a namespace of its own, as ``--cgroupns private``.
    default = inside(one, "busybox", "readlink", "/proc/self/ns/cgroup")
    assert default.strip() != host
    one.pydock.ok("run", "-d", "--name", "cgns", "--cgroupns", "host", "busybox", "sleep", "60")
    one.pydock.ok("create", "--name", "cgns2", "busybox", "true")
    try:
        modes = [inspect(one, n)["HostConfig"]["CgroupnsMode"] for n in ("cgns", "cgns2")]
        assert modes == ["host", "private"]
        # exec joins the container's namespace, which is the host's here.
        assert one.pydock.ok("exec", "cgns", "readlink", "/proc/self/ns/cgroup").strip() == host
    finally:
        one.pydock.run("rm", "-f", "cgns", "cgns2")


def test_volumes_from(one: Workspace, tmp_path: Path) -> None:
    shared = tmp_path / "shared"
    shared.mkdir()
    one.pydock.ok(
        "create", "--name", "vsrc", "-v", "/data", "-v", f"{shared}:/bound", "busybox", "true"
    )
    try:
        # The other container's anonymous volume and bind, written through.
        out = inside(
            one, "--volumes-from", "vsrc", "busybox",
            "sh", "-c", "echo through > /bound/f; echo kept > /data/g; cat /bound/f",
        )  # fmt: skip
        assert out == "through\n"
        assert (shared / "f").read_text() == "through\n"
        # The volume is the same one: another container sees what the first wrote.
        assert inside(one, "--volumes-from", "vsrc", "busybox", "cat", "/data/g") == "kept\n"
        # :ro makes every inherited mount read-only.
        done = one.pydock.run(
            "run", "--rm", "--volumes-from", "vsrc:ro", "busybox", "sh", "-c", "echo x > /data/h"
        )
        assert done.status == 1
        assert "Read-only file system" in done.err
        # The container's own mount on the same destination wins.
        own = tmp_path / "own"
        own.mkdir()
        (own / "f").write_text("own\n")
        out = inside(
            one, "--volumes-from", "vsrc", "-v", f"{own}:/bound", "busybox", "cat", "/bound/f"
        )
        assert out == "own\n"
        one.pydock.ok("create", "--name", "vdst", "--volumes-from", "vsrc:ro", "busybox", "true")
        try:
            document = inspect(one, "vdst")
            assert document["HostConfig"]["VolumesFrom"] == ["vsrc:ro"]
            mounts = document["Mounts"]
            assert isinstance(mounts, list)
            seen = sorted((m["Destination"], m["Type"], m["RW"]) for m in mounts)
            assert seen == [("/bound", "bind", False), ("/data", "volume", False)]
        finally:
            one.pydock.run("rm", "vdst")
    finally:
        one.pydock.run("rm", "-v", "vsrc")
    assert one.pydock.ok("volume", "ls", "-q") == ""


OUT_AND_ERR = ("sh", "-c", "echo out; echo err >&2")


@pytest.mark.parametrize("remove", [True, False], ids=["rm", "logs-kept"])
def test_attach_chooses_the_streams(one: Workspace, remove: bool) -> None:
    rm = ["--rm"] if remove else []
    shown = {}
    for stream in ("stdout", "STDERR"):
        done = one.pydock.run("run", *rm, "--name", "att", "-a", stream, "busybox", *OUT_AND_ERR)
        assert done.status == 0, done
        shown[stream] = (done.out, done.err)
        if not remove:
            # What is not shown still reaches the logs, as Docker's.
            logs = one.pydock.run("logs", "att")
            assert (logs.out, logs.err) == ("out\n", "err\n")
            assert inspect(one, "att")["Config"]["AttachStdin"] is False
            attached = [inspect(one, "att")["Config"][f"Attach{n}"] for n in ("Stdout", "Stderr")]
            assert attached == ([True, False] if stream == "stdout" else [False, True])
            one.pydock.ok("rm", "att")
    assert shown == {"stdout": ("out\n", ""), "STDERR": ("", "err\n")}
    # -a stdin attaches the input as -i does.
    piped = one.pydock.run(
        "run", *rm, "-a", "stdin", "-a", "stdout", "busybox", "cat", stdin=b"in\n"
    )
    assert (piped.status, piped.out) == (0, "in\n")
    if not remove:
        one.pydock.remove_all()


TRAPPED = "trap 'echo got; exit 3' TERM; echo ready; while true; do sleep 0.1; done"


def _wait_for_output(process: subprocess.Popen[bytes], text: bytes, timeout: float = 20) -> None:
    """Read ``process``'s stdout until ``text`` appears (bounded by ``timeout``)."""
    assert process.stdout is not None
    os.set_blocking(process.stdout.fileno(), False)
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        assert time.monotonic() < deadline, seen
        seen += process.stdout.read() or b""
        time.sleep(0.05)


@pytest.mark.parametrize("proxy", ["true", "false"])
def test_sig_proxy(one: Workspace, proxy: str) -> None:
    process = one.pydock.spawn(
        "run", "--name", "sp", f"--sig-proxy={proxy}", "busybox", "sh", "-c", TRAPPED
    )
    try:
        _wait_for_output(process, b"ready\n")
        process.send_signal(signal.SIGTERM)
        status = process.wait(timeout=30)
        state = inspect(one, "sp")["State"]
        if proxy == "true":
            # Passed on: the container's trap ends it with 3, which run passes on.
            assert (status, state["Status"], state["ExitCode"]) == (3, "exited", 3)
        else:
            # Not passed on: the signal ends pydock alone; the container runs on.
            assert (status, state["Status"]) == (-signal.SIGTERM, "running")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        one.pydock.run("rm", "-f", "sp")


WAIT_THEN_SPEAK = (
    "echo ready; while [ ! -e /tmp/go ]; do sleep 0.1; done; echo after-detach; sleep 120"
)


def _read_until(fd: int, text: bytes, timeout: float = 30) -> bytes:
    """Read the terminal ``fd`` until ``text`` appears (bounded by ``timeout``)."""
    seen = b""
    deadline = time.monotonic() + timeout
    while text not in seen:
        remaining = deadline - time.monotonic()
        assert remaining > 0, seen
        ready, _, _ = select.select([fd], [], [], remaining)
        if ready:
            try:
                seen += os.read(fd, 4096)
            except OSError:  # EIO: every holder of the other side is gone
                break
    assert text in seen, seen
    return seen


@pytest.mark.parametrize(
    ("flags", "keys"),
    [([], b"\x10\x11"), (["--detach-keys", "ctrl-x,d"], b"\x18d")],
    ids=["ctrl-p,ctrl-q", "ctrl-x,d"],
)
def test_detach_keys_leave_the_container_running(
    one: Workspace, flags: list[str], keys: bytes
) -> None:
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        one.pydock.command(
            "run", "-it", "--name", "dk", *flags, "busybox", "sh", "-c", WAIT_THEN_SPEAK
        ),
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=clean_env(),
        start_new_session=True,
    )
    os.close(follower)
    try:
        _read_until(leader, b"ready")
        os.write(leader, keys)
        assert process.wait(timeout=30) == 0
        assert inspect(one, "dk")["State"]["Status"] == "running"
        # Detached, its terminal still goes somewhere: into the log.
        one.pydock.ok("exec", "dk", "touch", "/tmp/go")
        deadline = time.monotonic() + 30
        while "after-detach" not in one.pydock.ok("logs", "dk"):
            assert time.monotonic() < deadline
            time.sleep(0.1)
        one.pydock.ok("stop", "-t", "1", "dk")
        assert inspect(one, "dk")["State"]["Status"] == "exited"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)
        one.pydock.run("rm", "-f", "dk")


BAD_VALUES = [
    (["--ulimit", "nofile=abc"], 'parsing "abc": invalid syntax'),
    (["--ulimit", "nosuch=1"], "invalid ulimit type: nosuch"),
    (["--ulimit", "nofile=10:5"], "soft limit must be less than or equal to hard limit"),
    (["--shm-size", "abc"], "invalid size: 'abc'"),
    (["--sysctl", "kernel.hostname=x"], "sysctl 'kernel.hostname=x' is not allowed"),
    (["--network", "host", "--sysctl", "net.ipv4.ip_forward=1"], "host's network namespace"),
    (["--group-add", "nosuchgroup"], "unable to find group nosuchgroup"),
    (["--domainname", "x" * 65], "--domainname"),
    (["--uts", "host", "--domainname", "d.test"], "domainname and the UTS mode"),
    (["-c", "abc"], "invalid int value: 'abc'"),
    (["--cpuset-cpus", "abc"], "Invalid value abc for cpuset cpus"),
    (["--cpuset-cpus", "4096"], "Requested CPUs are not available"),
    (["--memory-swap", "128m"], "always set the Memory limit when using Memoryswap"),
    (["-m", "64m", "--memory-swap", "32m"], "memoryswap limit should be larger than memory"),
    (["-m", "64m", "--memory-reservation", "128m"], "can not be less than memory reservation"),
    (["--pid", "container"], "invalid PID mode"),
    (["--ipc", "nosuch"], "invalid IPC mode"),
    (["--uts", "private"], "invalid UTS mode"),
    (["--uts", "host", "--hostname", "h"], "conflicting options: hostname and the UTS mode"),
    (["--device", "/nonexistent-device"], "error gathering device information"),
    (["--device", "/dev/null:/dev/n:rwx"], "bad mode specified: rwx"),
    (["--expose", "http"], "invalid range format for --expose: http"),
    (["--label-file", "/nonexistent-labels"], "open /nonexistent-labels: no such file"),
    (["--platform", "linux/s390x"], "linux/s390x"),
    (["--oom-score-adj", "1001"], "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    (["--oom-score-adj", "x"], "invalid int value: 'x'"),
    (["--cpus", "1", "--cpu-period", "50000"], "Nano CPUs and CPU Period cannot both be set"),
    (["--cpus", "1", "--cpu-quota", "50000"], "Nano CPUs and CPU Quota cannot both be set"),
    (["--cpu-period", "999"], "CPU cfs period can not be less than 1ms (i.e. 1000) or larger"),
    (["--cpu-period", "1000001"], "or larger than 1s (i.e. 1000000)"),
    (["--cpu-quota", "999"], "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    (["--cpuset-mems", "x"], "Invalid value x for cpuset mems"),
    (["--cpuset-mems", "4096"], "Requested memory nodes are not available"),
    (["--cgroupns", "container"], "--cgroupns: invalid CGROUP mode"),
    (["--volumes-from", "nosuch-container"], "nosuch-container: no such container"),
    (["--volumes-from", "x:rx"], "invalid mode: rx"),
    (["-a", "stdall"], 'invalid argument "stdall" for "-a, --attach" flag: valid streams are'),
    (["--sig-proxy", "maybe"], "--sig-proxy"),
    (["--detach-keys", "ctrl-1"], "Invalid detach keys (ctrl-1) provided"),
]


@pytest.mark.parametrize(("flags", "needle"), BAD_VALUES, ids=lambda v: str(v))
def test_bad_values_leave_nothing(one: Workspace, flags: list[str], needle: str) -> None:
    wait_quiet(one.root)
    before = Snapshot.take(one.root)
    fails(one.pydock.run("run", "--rm", *flags, "busybox", "true"), needle)
    if "--group-add" not in flags:  # the image's /etc/group is read at the start, as Docker
        fails(one.pydock.run("create", *flags, "busybox", "true"), needle)
    assert_left_nothing(one.root, before)


def test_attach_conflicts_with_detach(one: Workspace) -> None:
    wait_quiet(one.root)
    before = Snapshot.take(one.root)
    fails(
        one.pydock.run("run", "-d", "-a", "stdout", "busybox", "true"),
        "Conflicting options: -a and -d",
    )
    assert_left_nothing(one.root, before)


def test_an_existing_cidfile_is_refused(one: Workspace, tmp_path: Path) -> None:
    cidfile = tmp_path / "cid"
    cidfile.write_text("another\n")
    before = Snapshot.take(one.root)
    fails(
        one.pydock.run("run", "--rm", "--cidfile", str(cidfile), "busybox", "true"),
        "container ID file found",
    )
    assert cidfile.read_text() == "another\n"
    assert_left_nothing(one.root, before)
