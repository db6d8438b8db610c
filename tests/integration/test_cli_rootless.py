"""The whole container path as an unprivileged user that this test creates.

The user runs the installed ``pydock`` of pydock's own environment (the one running this
session, readable by every user). pydock uses the user's own root, ``~/.local/share/pydock``,
and runs in a user namespace of its own (root there, with the user's /etc/subuid range), where
overlay2 mounts with ``userxattr``. Everything the fixture creates (user, home) is removed
after.
"""

from __future__ import annotations

import json
import os
import pwd
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import graphdriver

from .containers_support import CONTAINER_ID, IMAGE_ID, SUITE_SETTINGS, Done, fails
from .unprivileged import device_mode, installed, missing_prerequisite, remove_user

DEV_FUSE = "/dev/fuse"
TUN = "/dev/net/tun"

pytestmark = [
    pytest.mark.root,
    pytest.mark.userns,
    pytest.mark.slow,
    pytest.mark.timeout(300),
]

_why = missing_prerequisite()


@dataclass(frozen=True)
class User:
    """The unprivileged user, who runs the installed pydock."""

    name: str
    uid: int
    home: Path

    def pydock(
        self,
        *args: str,
        stdin: bytes | None = None,
        timeout: float = 90,
        unset: tuple[str, ...] = (),
    ) -> Done:
        """Run ``pydock ARGS`` as the user, with its default root, keeping the suite's own
        settings (its default network) but those named in ``unset``."""
        suite = [
            f"{k}={os.environ[k]}" for k in SUITE_SETTINGS if k in os.environ and k not in unset
        ]
        env = [
            *suite,
            "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"HOME={self.home}",
            "PYTHONDONTWRITEBYTECODE=1",
            "LANG=C.UTF-8",
            # The fuse mount server leaves after this much idle time (minutes by default).
            "PYDOCK_FUSE_SERVER_IDLE=0.5",
            # pydock's pause process leaves after this much time with nothing in its namespace.
            "PYDOCK_PAUSE_IDLE=0.5",
        ]
        command = ["runuser", "-u", self.name, "--", "env", "-i", *env, str(installed("pydock"))]
        done = subprocess.run(
            [*command, *args],
            input=stdin or b"",
            capture_output=True,
            timeout=timeout,
            check=False,
            cwd="/",
        )
        return Done(done.returncode, done.stdout.decode(), done.stderr.decode())

    def ok(self, *args: str, stdin: bytes | None = None) -> str:
        """Run; assert success and a silent stderr; return stdout."""
        done = self.pydock(*args, stdin=stdin)
        assert done.status == 0, (args, done)
        assert done.err == "", (args, done.err)
        return done.out

    def processes(self, settle: float = 10.0) -> list[str]:
        """Processes of the user still running once ``settle`` seconds allowed them to end
        (zombies are gone already: pid 1 reaps them; an idle fuse mount server leaves)."""
        deadline = time.monotonic() + settle
        while True:
            listed = subprocess.run(
                ["ps", "-ww", "-u", str(self.uid), "-o", "pid=,stat=,args="],
                capture_output=True,
                text=True,
            )
            lines = [line.split(None, 2) for line in listed.stdout.splitlines() if line.strip()]
            found = [" ".join(fields) for fields in lines if not fields[1].startswith("Z")]
            if not found or time.monotonic() > deadline:
                return found
            time.sleep(0.1)


@pytest.fixture(scope="module")
def user() -> Iterator[User]:
    if _why is not None:
        pytest.skip(_why)
    name = f"pdcl{os.getpid() % 100000}"
    subprocess.run(["useradd", "--create-home", name], check=True, capture_output=True)
    try:
        entry = pwd.getpwnam(name)
        yield User(name, entry.pw_uid, Path(entry.pw_dir))
    finally:
        remove_user(name)


def _rootless_drivers() -> list[object]:
    params: list[object] = []
    for name in ("overlay2", "fuse", "vfs"):
        if name not in graphdriver.registered():
            continue
        marks = {"overlay2": [pytest.mark.overlay], "fuse": [pytest.mark.fuse]}.get(name, [])
        if name == "fuse" and not os.path.exists(DEV_FUSE):
            marks.append(pytest.mark.skip(reason=f"no {DEV_FUSE}"))
        params.append(pytest.param(name, id=name, marks=marks))
    return params


@contextmanager
def fuse_open_to_users(driver: str) -> Iterator[None]:
    """For the fuse case: /dev/fuse readable and writable by every user, as Debian ships it."""
    if driver != "fuse":
        yield
        return
    with device_mode(DEV_FUSE, open_to_users=True):
        yield


@pytest.mark.parametrize("driver", _rootless_drivers())
def test_rootless_containers(user: User, driver: str) -> None:
    with fuse_open_to_users(driver):
        _check_rootless(user, driver)


def _check_rootless(user: User, driver: str) -> None:
    storage = ["--storage", driver]
    # The built-in image is made on demand, in the user's own root.
    assert user.ok(*storage, "run", "--rm", "busybox", "echo", "hi") == "hi\n"
    root = user.home / ".local" / "share" / "pydock"
    assert (root / "pydock.db").is_file() and root.stat().st_uid == user.uid

    out = user.ok(
        *storage, "run", "--rm", "-u", "daemon", "--hostname", "rl", "busybox",
        "sh", "-c", "id -u; hostname; touch /tmp/x && echo writable; cat /proc/self/uid_map",
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[:3] == ["1", "rl", "writable"]
    assert lines[3].split() == ["0", str(user.uid), "1"]  # container root is the user

    name = f"bg-{driver}"
    container_id = user.ok(*storage, "run", "-d", "--name", name, "busybox", "sh", "-c",
                           "echo started; echo x > /made; sleep 30").strip()  # fmt: skip
    assert CONTAINER_ID.fullmatch(container_id)
    # Wait (20 s at most) for the file to appear, then read it.
    wait_made = "i=0; while [ ! -e /made ] && [ $i -lt 400 ]; do sleep 0.05; i=$((i+1)); done"
    assert user.ok("exec", name, "sh", "-c", f"{wait_made}; cat /made") == "x\n"
    assert user.ok("logs", name) == "started\n"
    _check_one_namespace(user, driver, name)
    assert "A /made" in user.ok("diff", name).splitlines()
    image_id = user.ok("commit", name, f"snap:{driver}").strip()
    assert IMAGE_ID.fullmatch(image_id)
    user.ok("stop", "-t", "1", name)
    assert user.ok("wait", name) == "137\n"
    assert user.ok(*storage, "run", "--rm", f"snap:{driver}", "cat", "/made") == "x\n"
    assert user.ok("rm", name) == f"{name}\n"

    # A memory limit needs a cgroup this user may not write: one line, nothing left.
    done = user.pydock(*storage, "run", "--rm", "--memory", "64m", "busybox", "true")
    fails(done, "cgroup")
    fails(user.pydock(*storage, "run", "--rm", "busybox", "no-such-command"), status=127)
    assert user.ok("ps", "-a", "-q") == ""
    assert user.processes() == []
    user.ok("rmi", f"snap:{driver}")


def _check_one_namespace(user: User, driver: str, running: str) -> None:
    """Every command joins the namespace the pause process keeps: a second container shares
    the first one's user namespace, and fuse mounts go through one resident mount server."""
    other = user.ok("run", "-d", "busybox", "sleep", "30").strip()
    pids = [json.loads(user.ok("inspect", name))[0]["State"]["Pid"] for name in (running, other)]
    namespaces = {os.stat(f"/proc/{pid}/ns/user").st_ino for pid in pids}
    assert len(namespaces) == 1, pids
    pause = [line for line in user.processes(settle=0) if "pydock-pause" in line]
    assert len(pause) == 1, pause
    pause_pid = int(pause[0].split()[0])
    assert os.stat(f"/proc/{pause_pid}/ns/user").st_ino in namespaces
    if driver == "fuse":
        # The server and the filesystem process it forked for each mount carry its marker.
        served = [line for line in user.processes(settle=0) if "pydock-fuse-server" in line]
        assert served, user.processes(settle=0)
        assert {os.stat(f"/proc/{line.split()[0]}/ns/user").st_ino for line in served} == (
            namespaces
        )
    user.ok("rm", "-f", other)


def test_rootless_etc_files(user: User) -> None:
    # Bridge networks (rootless through pasta) are tested in their own network namespace:
    # test_cli_rootless_network.py.
    out = user.ok(
        "run", "--rm", "--hostname", "rl2", "--add-host", "db:10.0.0.7", "--dns", "192.0.2.1",
        "busybox", "sh", "-c", "cat /etc/hostname; grep db /etc/hosts; cat /etc/resolv.conf",
    )  # fmt: skip
    assert out.splitlines() == ["rl2", "10.0.0.7\tdb", "nameserver 192.0.2.1"]
    assert user.ok("ps", "-a", "-q") == ""
    assert user.processes() == []


@pytest.mark.skipif(not os.path.exists(TUN), reason=f"no {TUN}")
def test_rootless_default_without_user_networking_is_no_network_with_a_warning(
    user: User,
) -> None:
    """pydock's default is the bridge; rootless it needs pasta and /dev/net/tun. Without them
    a plain run still runs, with no network, and says why in one line."""
    with device_mode(TUN, open_to_users=False):
        done = user.pydock(
            "run", "--name", "plain", "busybox", "cat", "/proc/net/dev", unset=("PYDOCK_NETWORK",)
        )
    assert done.status == 0, done
    assert "lo:" in done.out and "eth0" not in done.out
    [warning] = done.err.splitlines()
    assert warning.startswith("WARNING: the container has no network: rootless networking is")
    assert TUN in warning or "pasta not found" in warning
    [info] = json.loads(user.ok("inspect", "plain"))
    assert info["HostConfig"]["NetworkMode"] == "none"
    # An explicit --network none is a choice: no warning.
    with device_mode(TUN, open_to_users=False):
        quiet = user.pydock(
            "run", "--rm", "--network", "none", "busybox", "true", unset=("PYDOCK_NETWORK",)
        )
    assert (quiet.status, quiet.err) == (0, "")
    user.ok("rm", "plain")
    assert user.processes() == []


@pytest.mark.fuse
def test_rootless_bench_is_warm_only_and_skips_what_needs_root(user: User) -> None:
    """As a plain user: no cache drops, root-only references skipped, the rest measured."""
    out = user.home / "bench-out"
    with fuse_open_to_users("fuse"):
        done = user.pydock(
            "bench", "--quick", "--storage", "vfs,fuse",
            "--reference", "tar,kernel-overlay,podman",
            "--workload", "unpack,read-cold,start", "--out", str(out), timeout=600,
        )  # fmt: skip
    assert done.status == 0, done.err[-3000:]
    data = json.loads((out / "results.json").read_text())
    assert data["machine"]["root"] is False
    assert data["settings"]["cache"] == "warm only"
    assert "cache warm only" in done.out
    skipped = {b["name"]: b["skipped"] for b in data["backends"]}
    assert skipped["vfs"] is None and skipped["fuse"] is None and skipped["tar"] is None
    assert skipped["kernel-overlay"] == "needs root (mount -t overlay)"
    assert skipped["podman"].startswith("needs root")
    cells = {(w["name"], c["backend"]): c for w in data["workloads"] for c in w["results"]}
    for workload in ("unpack", "read-cold", "start"):
        for driver in ("vfs", "fuse"):
            assert len(cells[workload, driver]["samples"]) == 1, cells[workload, driver]
    assert len(cells["unpack", "tar"]["samples"]) == 1
    assert (out / "plots" / "summary.png").stat().st_uid == user.uid
    assert user.processes() == []
