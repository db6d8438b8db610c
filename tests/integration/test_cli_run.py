"""``pydock run`` end to end, as root, on every driver: each flag looked at from inside.

One container per driver prints what it sees (host name, environment, working directory, ids,
read-only root, volumes, network, capabilities, no-new-privileges, pid 1); the others check exit
codes, terminals, standard input, ``--init`` and the cgroup limits.
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from runtime import capabilities

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Pydock,
    Workspace,
    fails,
)

pytestmark = ROOT_CONTAINER_TESTS

INSIDE = r"""
echo host=$(hostname)
echo env=$GREETING
echo cwd=$(pwd)
echo ids=$(id -u):$(id -g)
touch /rootfs-write 2>/dev/null && echo rootfs=rw || echo rootfs=ro
echo data > /rw/from-container && echo rwvol=ok
touch /ro/x 2>/dev/null && echo rovol=rw || echo rovol=ro
echo nets=$(ls /sys/class/net)
echo shpid=$$
grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status | tr -d ' \t' | tr : =
"""


def facts(output: str) -> dict[str, str]:
    """``key=value`` lines as a dict."""
    return dict(line.split("=", 1) for line in output.splitlines() if "=" in line)


def test_flags_seen_from_inside(ws: Workspace, tmp_path: Path) -> None:
    rw, ro = tmp_path / "rw", tmp_path / "ro"
    rw.mkdir(mode=0o777)
    rw.chmod(0o777)
    ro.mkdir()
    out = ws.pydock.ok(
        "run", "--rm", "--hostname", "box1", "-e", "GREETING=hello", "-w", "/work",
        "-u", "daemon", "--read-only", "-v", f"{rw}:/rw", "-v", f"{ro}:/ro:ro",
        "--network", "none", "--cap-drop", "CHOWN", "--cap-add", "NET_ADMIN",
        "--security-opt", "no-new-privileges", "--init",
        "busybox", "sh", "-c", INSIDE,
    )  # fmt: skip
    seen = facts(out)
    caps = capabilities.resolve(add=["NET_ADMIN"], drop=["CHOWN"])
    assert seen["host"] == "box1"
    assert seen["env"] == "hello"
    assert seen["cwd"] == "/work"
    assert seen["ids"] == "1:1"
    assert seen["rootfs"] == "ro"
    assert seen["rwvol"] == "ok" and (rw / "from-container").read_text() == "data\n"
    assert seen["rovol"] == "ro"
    assert seen["nets"] == "lo"
    assert seen["shpid"] != "1"  # --init: a reaper is pid 1
    # A user other than root keeps no effective capabilities across exec; the bounding set
    # shows what the container was given.
    assert int(seen["CapBnd"], 16) == capabilities.mask(caps)
    assert int(seen["CapEff"], 16) == 0
    assert seen["NoNewPrivs"] == "1"


def test_defaults_seen_from_inside(ws: Workspace) -> None:
    out = ws.pydock.ok("run", "--rm", "busybox", "sh", "-c", INSIDE.replace("/rw/", "/tmp/"))
    seen = facts(out)
    assert seen["cwd"] == "/" and seen["ids"] == "0:0" and seen["rootfs"] == "rw"
    assert seen["shpid"] == "1" and seen["NoNewPrivs"] == "0"
    default = capabilities.mask(capabilities.DEFAULT_CAPABILITIES)
    assert int(seen["CapEff"], 16) == int(seen["CapBnd"], 16) == default
    assert len(seen["host"]) == 12  # the short id, as Docker


@pytest.mark.parametrize(
    ("command", "status"),
    [
        (["true"], 0),
        (["sh", "-c", "exit 3"], 3),
        (["no-such-command"], 127),
        (["/etc/passwd"], 126),
    ],
)
def test_exit_status(one: Workspace, command: list[str], status: int) -> None:
    done = one.pydock.run("run", "--rm", "busybox", *command)
    if status >= 126:
        fails(done, "starting container", status=status)
    else:
        assert (done.status, done.err) == (status, "")


def test_signal_status_and_host_network(one: Workspace) -> None:
    # A signal that kills the command gives 128+N; the host's interfaces are all there.
    done = one.pydock.run("run", "--rm", "--init", "busybox", "sh", "-c", "kill -TERM $$; sleep 5")
    assert done.status == 128 + 15, done
    host = sorted(os.listdir("/sys/class/net"))
    out = one.pydock.ok("run", "--rm", "--network", "host", "busybox", "ls", "/sys/class/net")
    assert sorted(out.split()) == host


def test_tty_and_stdin(one: Workspace) -> None:
    out = one.pydock.ok("run", "--rm", "-t", "busybox", "sh", "-c", "tty; echo $TERM")
    assert out == "/dev/pts/0\r\nxterm\r\n"
    out = one.pydock.ok(
        "run", "--rm", "-i", "busybox", "sh", "-c", "read a b; echo got $b", stdin=b"x y\n"
    )
    assert out == "got y\n"
    # Without -i the command reads end-of-file at once.
    out = one.pydock.ok("run", "--rm", "busybox", "cat", stdin=b"ignored\n")
    assert out == ""


def test_init_reaps_orphans(one: Workspace) -> None:
    # The subshell exits at once, so its sleep is orphaned to init. Until init reaps it after
    # it exits, /proc/PID stays (as a zombie); the loop waits for that, 20 s at most.
    script = (
        "p=$(sleep 0.1 >/dev/null 2>&1 & echo $!); n=0; "
        "while [ -e /proc/$p ] && [ $n -lt 400 ]; do sleep 0.05; n=$((n+1)); done; "
        "if [ -e /proc/$p ]; then echo left; else echo reaped; fi; "
        "cat /proc/[0-9]*/status | grep -c zombie"
    )
    done = one.pydock.run("run", "--rm", "--init", "busybox", "sh", "-c", script)
    assert done.out == "reaped\n0\n", done


def test_entrypoint_and_image_command(one: Workspace) -> None:
    out = one.pydock.ok("run", "--rm", "--entrypoint", "echo", "busybox", "a", "b")
    assert out == "a b\n"
    # An imported root filesystem has no command of its own (the built-in busybox runs sh).
    layer = io.BytesIO()
    with tarfile.open(fileobj=layer, mode="w") as tar:
        info = tarfile.TarInfo("etc/marker")
        tar.addfile(info, io.BytesIO(b""))
    one.pydock.ok("import", "-", "nocmd", stdin=layer.getvalue())
    fails(one.pydock.run("run", "--rm", "nocmd"), "no command specified")


def test_cgroup_limits(one: Workspace) -> None:
    # Memory: a process that needs 40 MB in a 16 MB container is killed by the OOM killer.
    script = "head -c 64m /dev/zero | tail -c 40m > /dev/null"
    done = one.pydock.run("run", "--rm", "--memory", "16m", "busybox", "sh", "-c", script)
    assert done.status == 137, done
    # Processes: the 6th fork fails.
    script = "for i in 1 2 3 4 5 6 7 8; do sleep 2 & done 2>&1; wait"
    done = one.pydock.run("run", "--rm", "--pids-limit", "5", "busybox", "sh", "-c", script)
    assert "can't fork" in done.out + done.err, done
    # CPUs: the quota, read from the host while the container runs.
    one.pydock.ok("run", "-d", "--name", "cpus", "--cpus", "0.5", "busybox", "sleep", "30")
    try:
        [info] = json.loads(one.pydock.ok("inspect", "cpus"))
        assert info["HostConfig"]["NanoCpus"] == 500_000_000
        pid = info["State"]["Pid"]
        lines = Path(f"/proc/{pid}/cgroup").read_text().splitlines()
        fields = [line.split(":", 2) for line in lines]
        cpu = next(path for _, names, path in fields if "cpu" in names.split(",") or not names)
        found = list(Path("/sys/fs/cgroup").glob(f"cpu*/{cpu.lstrip('/')}/cpu.cfs_quota_us"))
        found += list(Path("/sys/fs/cgroup").glob(f"{cpu.lstrip('/')}/cpu.max"))
        assert found and found[0].read_text().split()[0] == "50000"
    finally:
        one.pydock.run("rm", "-f", "cpus")


def test_builtin_busybox_is_built_on_demand(tmp_path: Path) -> None:
    pydock = Pydock(tmp_path / "root", "vfs")
    assert pydock.ok("run", "--rm", "busybox", "echo", "hi") == "hi\n"
    assert pydock.ok("images").splitlines()[1].split()[:2] == ["busybox", "latest"]
    fails(pydock.run("run", "--rm", "--pull", "never", "otherimage", "true"), "no such image")


def test_the_builtin_busybox_runs_sh_by_default(one: Workspace) -> None:
    done = one.pydock.run("run", "--rm", "-i", "busybox", stdin=b"echo from-sh; exit 3\n")
    assert (done.status, done.out) == (3, "from-sh\n"), done.err
