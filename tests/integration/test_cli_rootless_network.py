"""Rootless bridge networks end to end, as an unprivileged user this test creates.

Every pydock command of the user runs inside a fresh network namespace of the test's
(``unshare --net``, held by a sleeping process) through ``nsenter``, so pasta's "host" is that
namespace: ``lo``, and a veth pair with an address and a default route that lead nowhere
(pasta needs an interface to copy). Requests go only to 127.0.0.1 there and between the
containers; the user's own namespaces hold the rest. The user, its processes, the namespace
and the mode of /dev/net/tun are restored even when a check fails.
"""

from __future__ import annotations

import os
import pwd
import random
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from .containers_support import Done
from .netns_support import FETCH
from .unprivileged import device_mode, installed, missing_prerequisite, remove_user

TUN = "/dev/net/tun"
PORT = 18080

pytestmark = [
    pytest.mark.root,
    pytest.mark.userns,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.skipif(shutil.which("pasta") is None, reason="needs pasta (Debian passt)"),
    pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter (util-linux)"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)"),
    pytest.mark.skipif(not os.path.exists(TUN), reason=f"no {TUN}"),
]

_why = missing_prerequisite()


# A namespace whose only way out leads nowhere: ext0 (192.0.2.2/24, default via .1) is one end
# of a veth pair whose other end stays in the namespace.
SETUP = """
ip link set lo up
ip link add ext0 type veth peer name ext1
ip addr add 192.0.2.2/24 dev ext0
ip link set ext0 up
ip link set ext1 up
ip route add default via 192.0.2.1
echo up
exec sleep 3600
"""


class Namespace:
    """The test's network namespace, held by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-ec", SETUP], stdout=subprocess.PIPE
        )
        assert self.holder.stdout is not None
        if self.holder.stdout.readline() != b"up\n":
            self.close()
            raise AssertionError("setting up the test's network namespace failed")

    def argv(self, *command: str) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--", *command]

    def fetch(self, url: str) -> str:
        done = subprocess.run(
            self.argv(sys.executable, "-c", FETCH, url), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


@dataclass(frozen=True)
class User:
    """The unprivileged user; its commands run in the test's network namespace."""

    name: str
    uid: int
    home: Path
    namespace: Namespace

    def pydock(self, *args: str, timeout: float = 120) -> Done:
        env = [
            "PATH=/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            f"HOME={self.home}",
            "PYDOCK_PAUSE_IDLE=0.5",
            "PYTHONDONTWRITEBYTECODE=1",
            "LANG=C.UTF-8",
        ]
        command = self.namespace.argv(
            "runuser", "-u", self.name, "--", "env", "-i", *env, str(installed("pydock"))
        )
        done = subprocess.run(
            [*command, *args], capture_output=True, text=True, timeout=timeout, cwd="/"
        )
        return Done(done.returncode, done.stdout, done.stderr)

    def ok(self, *args: str) -> str:
        done = self.pydock(*args)
        assert done.status == 0, (args, done)
        assert done.err == "", (args, done.err)
        return done.out

    def processes(self) -> list[tuple[int, str]]:
        """The user's live processes (zombies left out): pid and command line."""
        listed = subprocess.run(
            ["ps", "-ww", "-u", str(self.uid), "-o", "pid=,stat=,args="],
            capture_output=True,
            text=True,
        )
        found = []
        for line in listed.stdout.splitlines():
            fields = line.split(None, 2)
            if len(fields) == 3 and not fields[1].startswith("Z"):
                found.append((int(fields[0]), fields[2]))
        return found

    def wait_processes(self, settle: float = 15.0) -> list[tuple[int, str]]:
        """The user's processes once ``settle`` seconds allowed them to end (bounded)."""
        deadline = time.monotonic() + settle
        while (found := self.processes()) and time.monotonic() < deadline:
            time.sleep(0.1)
        return found


@pytest.fixture
def user() -> Iterator[User]:
    if _why is not None:
        pytest.skip(_why)
    name = f"pdrn{os.getpid() % 100000}"
    with device_mode(TUN, open_to_users=True):
        namespace = Namespace()
        try:
            subprocess.run(["useradd", "--create-home", name], check=True, capture_output=True)
            try:
                entry = pwd.getpwnam(name)
                yield User(name, entry.pw_uid, Path(entry.pw_dir), namespace)
            finally:
                remove_user(name)  # its containers, pasta and forwarders go with its processes
        finally:
            namespace.close()


def _pause(user: User) -> int:
    found = [pid for pid, args in user.processes() if "pydock-pause" in args]
    assert len(found) == 1, user.processes()
    return found[0]


def _veths(pause: int) -> list[str]:
    """The veths in the pause process's network namespace (where the bridges are)."""
    done = subprocess.run(
        ["nsenter", f"--net=/proc/{pause}/ns/net", "--", "ip", "-o", "link", "show", "type",
         "veth"],
        capture_output=True, text=True, timeout=30, check=True,
    )  # fmt: skip
    return done.stdout.splitlines()


def _helpers(user: User) -> list[str]:
    return [args for _, args in user.processes() if "pasta" in args or "pydock-forward" in args]


def _page() -> str:
    rng = random.Random(15)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(4000))


def _serve(page: str) -> list[str]:
    """A busybox httpd serving ``page`` as /page.txt on port 80."""
    return ["sh", "-c", f"mkdir /www && echo {page} > /www/page.txt && exec httpd -f -p 80 -h /www"]


def test_rootless_published_port_and_names(user: User) -> None:
    page = _page()
    # A published port: the forwarder holds 127.0.0.1:PORT of the (test's) host namespace.
    user.ok("run", "-d", "--name", "web", "-p", f"127.0.0.1:{PORT}:80", "busybox", *_serve(page))
    assert user.namespace.fetch(f"http://127.0.0.1:{PORT}/page.txt") == page + "\n"
    pause = _pause(user)
    assert len(_veths(pause)) == 1
    helpers = _helpers(user)
    assert len([h for h in helpers if "pasta" in h]) == 1, helpers
    assert len([h for h in helpers if "pydock-forward" in h]) == 1, helpers
    ports = user.ok("ps", "--format", "{{.Ports}}").strip()
    assert ports == f"127.0.0.1:{PORT}->80/tcp"

    # Two members of a user network reach each other by name.
    user.ok("network", "create", "rlnet")
    user.ok("run", "-d", "--name", "alpha", "--network", "rlnet", "busybox", *_serve(page))
    # Wait (bounded) for alpha's httpd, then fetch its page by name and ping it.
    script = (
        "i=0; until wget -q -O /tmp/got http://alpha/page.txt || [ $i -ge 100 ]; do"
        " sleep 0.1; i=$((i+1)); done; cat /tmp/got; ping -c1 -W5 alpha >/dev/null && echo pong"
    )
    out = user.ok("run", "--rm", "--name", "beta", "--network", "rlnet", "busybox", "sh", "-c",
                  script)  # fmt: skip
    assert out == page + "\n" + "pong\n"
    # Different networks stay apart: web is not a name on rlnet.
    done = user.pydock("run", "--rm", "--network", "rlnet", "busybox", "ping", "-c1", "-W1", "web")
    assert done.status != 0

    assert sorted(user.ok("rm", "-f", "web", "alpha").split()) == ["alpha", "web"]
    # Nothing is left: no pasta, no forwarder, no veth in the pause process's namespace.
    assert _helpers(user) == []
    assert _veths(pause) == []
    user.ok("network", "rm", "rlnet")
    assert user.ok("ps", "-a", "-q") == ""
    # The pause process leaves once idle, and the namespace with the bridges goes with it.
    assert user.wait_processes() == []


def test_rootless_container_that_ends_takes_its_port_and_pasta_along(user: User) -> None:
    user.ok("run", "-d", "--name", "brief", "-p", f"127.0.0.1:{PORT}:80", "busybox", "sleep", "2")
    assert user.ok("wait", "brief") == "0\n"
    # The container's exit command releases its network; give it a bounded while to run.
    deadline = time.monotonic() + 30
    while _helpers(user) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _helpers(user) == []
    # The port is free again: a new container publishes it.
    user.ok("rm", "brief")
    page = _page()
    user.ok("run", "-d", "--name", "again", "-p", f"127.0.0.1:{PORT}:80", "busybox", *_serve(page))
    assert user.namespace.fetch(f"http://127.0.0.1:{PORT}/page.txt") == page + "\n"
    user.ok("rm", "-f", "again")
    assert _helpers(user) == []
    assert user.wait_processes() == []


UDP_ECHO = """
import socket, subprocess
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
server = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
server.bind(("127.0.0.1", 5353))
print("up", flush=True)
while True:
    data, peer = server.recvfrom(1000)
    server.sendto(b"echo:" + data, peer)
"""

UDP_CLIENT = """
import os, socket, subprocess, sys
target_ns, target_pid = sys.argv[1], sys.argv[2]
front = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
front.bind(("127.0.0.1", 0))
ready_read, ready_write = os.pipe()
forwarder = subprocess.Popen(
    [sys.executable, "-m", "pydock.network.forwarder", "pydock-forward", target_ns, target_pid,
     str(ready_write), f"{front.fileno()}/udp/127.0.0.1/5353"],
    pass_fds=[ready_write, front.fileno()], cwd="/",
)
os.close(ready_write)
assert os.read(ready_read, 100) == b"ok"
client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
client.settimeout(10)
try:
    for word in (b"one", b"two"):
        client.sendto(word, front.getsockname())
        print(client.recvfrom(1000)[0].decode())
finally:
    forwarder.terminate()
    forwarder.wait(timeout=10)
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 for the test's namespaces")
def test_forwarder_carries_udp_into_another_namespace() -> None:
    """A published udp port: datagrams to the host port reach a server in another network
    namespace (the pause process's, in pydock's use) and its replies come back."""
    server = subprocess.Popen(
        ["unshare", "--net", sys.executable, "-c", UDP_ECHO], stdout=subprocess.PIPE
    )
    client = Namespace()
    try:
        assert server.stdout is not None and server.stdout.readline() == b"up\n"
        done = subprocess.run(
            client.argv(sys.executable, "-c", UDP_CLIENT, f"/proc/{server.pid}/ns/net",
                        str(server.pid)),
            capture_output=True, text=True, timeout=60, cwd="/",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert done.stdout.splitlines() == ["echo:one", "echo:two"]
    finally:
        server.kill()
        server.wait()
        client.close()


def test_rootless_container_reaches_the_host_through_pasta(user: User, tmp_path: Path) -> None:
    """The way out: pasta carries a container's connection to the (test's) host, whose
    gateway address it maps to the host's loopback."""
    page = _page()
    served = tmp_path / "served"
    served.mkdir()
    (served / "page.txt").write_text(page)
    server = subprocess.Popen(
        user.namespace.argv(sys.executable, "-m", "http.server", "--bind", "127.0.0.1",
                            "--directory", str(served), str(PORT)),
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        assert user.namespace.fetch(f"http://127.0.0.1:{PORT}/page.txt") == page
        out = user.ok("run", "--rm", "--network", "bridge", "busybox", "wget", "-q", "-O", "-",
                      f"http://192.0.2.1:{PORT}/page.txt")  # fmt: skip
        assert out == page
    finally:
        server.kill()
        server.wait()
    assert _helpers(user) == []
    assert user.wait_processes() == []
