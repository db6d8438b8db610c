"""Bridge networking end to end, each test inside a network namespace of its own.

A holder process (``unshare --net``) owns a fresh network namespace; every pydock command, and
every request the "host" side makes, runs in it through ``nsenter``. The bridge, the veths and
the nftables rules live only there and go with it; traffic goes only to 127.0.0.1 and to
container addresses in that namespace. Outbound NAT is checked by reading the rules.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Done,
    Pydock,
    clean_env,
    container_drivers,
    fails,
    kill_leftovers,
    processes_of,
)
from .imagebuild import with_config
from .netns_support import FETCH

pytestmark = [
    *ROOT_CONTAINER_TESTS,
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)"),
    pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter (util-linux)"),
]

PAGE = "served by busybox httpd\n"


class Namespace:
    """A fresh network namespace, held by a sleeping process."""

    def __init__(self) -> None:
        self.holder = subprocess.Popen(
            ["unshare", "--net", "sh", "-c", "ip link set lo up; echo up; exec sleep 3600"],
            stdout=subprocess.PIPE,
        )
        assert self.holder.stdout is not None
        assert self.holder.stdout.readline() == b"up\n"  # the namespace exists, lo is up

    def argv(self, *command: str) -> list[str]:
        return ["nsenter", f"--net=/proc/{self.holder.pid}/ns/net", "--", *command]

    def run(self, *command: str, timeout: float = 60) -> Done:
        done = subprocess.run(
            self.argv(*command),
            capture_output=True,
            timeout=timeout,
            check=False,
            env=clean_env(),
        )
        return Done(done.returncode, done.stdout.decode(), done.stderr.decode())

    def fetch(self, url: str) -> str:
        done = self.run(sys.executable, "-c", FETCH, url, timeout=30)
        assert done.status == 0, done.err
        return done.out

    def nft_rules(self) -> list[dict[str, object]]:
        done = self.run("nft", "-j", "list", "table", "ip", "pydock")
        if done.status != 0:
            return []
        items = json.loads(done.out)["nftables"]
        return [item["rule"] for item in items if "rule" in item]

    def links(self) -> list[str]:
        done = self.run(
            sys.executable, "-c", "import socket; print(*[n for _, n in socket.if_nameindex()])"
        )
        return done.out.split()

    def close(self) -> None:
        self.holder.kill()
        self.holder.wait()


class NsPydock(Pydock):
    """``python -m pydock`` run inside the namespace; ``settings`` are environment variables
    it is run with ("": unset), over the suite's."""

    def __init__(
        self, root: Path, storage: str, namespace: Namespace, settings: dict[str, str] | None = None
    ) -> None:
        super().__init__(root, storage)
        self.namespace = namespace
        self.settings = settings or {}

    def command(self, *args: str) -> list[str]:
        env = ["env"]
        for name, value in self.settings.items():
            env += [f"{name}={value}"] if value else ["-u", name]
        return self.namespace.argv(*env, *super().command(*args))

    def with_settings(self, **settings: str) -> NsPydock:
        return NsPydock(self.root, self.storage or "", self.namespace, settings)


@pytest.fixture
def net(tmp_path: Path) -> Iterator[tuple[NsPydock, Namespace]]:
    namespace = Namespace()
    root = tmp_path / "root"
    pydock = NsPydock(root, container_drivers()[-1], namespace)
    try:
        pydock.ok("import", "builtin:busybox", "busybox")
        yield pydock, namespace
    finally:
        pydock.remove_all()
        for name in pydock.run("network", "ls", "-q").out.split():
            pydock.run("network", "rm", name)
        kill_leftovers(root)
        namespace.close()


def rows(root: Path, table: str) -> list[tuple[object, ...]]:
    with sqlite3.connect(root / "pydock.db") as conn:
        return sorted(conn.execute(f"SELECT * FROM {table}").fetchall())


def container_rules(namespace: Namespace) -> list[dict[str, object]]:
    return [r for r in namespace.nft_rules() if str(r.get("comment", "")).startswith("pydock-ctr:")]


def assert_released(pydock: NsPydock, namespace: Namespace) -> None:
    """No address, port, rule or veth of any container is left."""
    assert rows(pydock.root, "endpoints") == []
    assert rows(pydock.root, "port_bindings") == []
    assert container_rules(namespace) == []
    assert [name for name in namespace.links() if name.startswith("veth")] == []


def test_published_port_serves_the_host(net: tuple[NsPydock, Namespace], tmp_path: Path) -> None:
    pydock, namespace = net
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(PAGE)
    cid = pydock.ok(
        "run",
        "-d",
        "-p",
        "127.0.0.1:8080:80",
        "-v",
        f"{www}:/www:ro",
        "busybox",
        "httpd",
        "-f",
        "-p",
        "80",
        "-h",
        "/www",
    ).strip()
    assert namespace.fetch("http://127.0.0.1:8080/index.html") == PAGE
    [info] = json.loads(pydock.ok("inspect", cid))
    address = info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert address.startswith("172.17.0.")
    assert info["NetworkSettings"]["Ports"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]
    }
    assert info["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]
    }
    assert pydock.ok("port", cid) == "80/tcp -> 127.0.0.1:8080\n"
    assert pydock.ok("port", cid, "80") == "127.0.0.1:8080\n"
    assert "127.0.0.1:8080->80/tcp" in pydock.ok("ps")
    # Another container reaches it by its address on the bridge.
    out = pydock.ok(
        "run",
        "--rm",
        "--network",
        "bridge",
        "busybox",
        "wget",
        "-qO-",
        f"http://{address}/index.html",
    )
    assert out == PAGE
    # Outbound NAT: the bridge's subnet is masqueraded out of any other interface.
    masquerade = [
        r
        for r in namespace.nft_rules()
        if r["chain"] == "postrouting" and "172.17.0.0" in json.dumps(r["expr"])
    ]
    assert len(masquerade) == 1 and "masquerade" in json.dumps(masquerade[0]["expr"])
    assert len(container_rules(namespace)) == 2  # DNAT from outside and from this host
    # Published on every address: 127.0.0.1 reaches it too.
    every = pydock.ok(
        "run", "-d", "-p", "8085:80", "-v", f"{www}:/www:ro",
        "busybox", "httpd", "-f", "-p", "80", "-h", "/www",
    ).strip()  # fmt: skip
    assert namespace.fetch("http://127.0.0.1:8085/index.html") == PAGE
    assert "0.0.0.0:8085->80/tcp" in pydock.ok("ps")
    pydock.ok("rm", "-f", cid, every)
    assert_released(pydock, namespace)


def test_user_network_names_isolation_internal(net: tuple[NsPydock, Namespace]) -> None:
    pydock, namespace = net
    pydock.ok("network", "create", "front")
    pydock.ok("network", "create", "back")
    pydock.ok("network", "create", "--internal", "--subnet", "10.99.0.0/24", "closed")
    listed = pydock.ok("network", "ls").splitlines()
    assert [line.split()[1] for line in listed[1:]] == [
        "bridge",
        "host",
        "none",
        "front",
        "back",
        "closed",
    ]
    pydock.ok(
        "run",
        "-d",
        "--name",
        "db",
        "--network",
        "front",
        "--network-alias",
        "database",
        "busybox",
        "sleep",
        "120",
    )
    out = pydock.ok(
        "run",
        "--rm",
        "--network",
        "front",
        "busybox",
        "sh",
        "-c",
        "ping -c1 -W2 db >/dev/null && ping -c1 -W2 database >/dev/null && echo reached",
    )
    assert out == "reached\n"
    [front] = json.loads(pydock.ok("network", "inspect", "front"))
    [(db_address, db_name)] = [(c["IPv4Address"], c["Name"]) for c in front["Containers"].values()]
    assert db_name == "db"
    address = db_address.split("/")[0]
    # Another network cannot reach it.
    isolated = pydock.run(
        "run", "--rm", "--network", "back", "busybox", "ping", "-c1", "-W1", address
    )
    assert isolated.status == 1
    # An internal network has no route out and is not masqueraded.
    out = pydock.ok("run", "--rm", "--network", "closed", "busybox", "ip", "route")
    assert "default" not in out and "10.99.0.0/24" in out
    masqueraded = json.dumps([r for r in namespace.nft_rules() if r["chain"] == "postrouting"])
    assert front["IPAM"]["Config"][0]["Subnet"].split("/")[0] in masqueraded
    assert "10.99.0.0" not in masqueraded
    fails(pydock.run("network", "rm", "front"), "active endpoints")
    pydock.ok("rm", "-f", "db")
    assert pydock.ok("network", "prune") == "Deleted Networks:\nfront\nback\nclosed\n"
    assert_released(pydock, namespace)
    assert [n for n in namespace.links() if n.startswith("pydock")] == []
    assert namespace.nft_rules() == []  # the last network took pydock's table with it


def test_connect_and_disconnect_a_running_container(net: tuple[NsPydock, Namespace]) -> None:
    pydock, namespace = net
    pydock.ok("network", "create", "app")
    pydock.ok("run", "-d", "--name", "a1", "--network", "app", "busybox", "sleep", "120")
    pydock.ok("run", "-d", "--name", "c1", "--network", "bridge", "busybox", "sleep", "120")
    pydock.ok("network", "connect", "--alias", "cee", "app", "c1")
    assert "cee" in pydock.ok("exec", "a1", "cat", "/etc/hosts")
    assert pydock.ok("exec", "a1", "sh", "-c", "ping -c1 -W2 cee >/dev/null && echo ok") == "ok\n"
    pydock.ok("network", "disconnect", "app", "c1")
    assert "cee" not in pydock.ok("exec", "a1", "cat", "/etc/hosts")
    fails(pydock.run("network", "disconnect", "app", "c1"), "is not connected")
    fails(
        pydock.run("run", "--rm", "--network", "nosuch", "busybox", "true"),
        "network nosuch not found",
    )
    pydock.ok("rm", "-f", "a1", "c1")
    assert_released(pydock, namespace)


def test_the_default_network_is_the_bridge(net: tuple[NsPydock, Namespace]) -> None:
    """Without --network a container joins the bridge, as in Docker: an address, /etc/hosts,
    a peer reachable by address; ``PYDOCK_NETWORK`` chooses another default."""
    pinned, namespace = net
    pydock = pinned.with_settings(PYDOCK_NETWORK="")  # pydock's own default, not the suite's
    server = pydock.ok("run", "-d", "--name", "server", "busybox", "sleep", "120").strip()
    [info] = json.loads(pydock.ok("inspect", server))
    assert info["HostConfig"]["NetworkMode"] == "bridge"
    address = info["NetworkSettings"]["Networks"]["bridge"]["IPAddress"]
    assert address.startswith("172.17.0.")
    hosts = pydock.ok("exec", "server", "cat", "/etc/hosts")
    assert f"{address}\t{server[:12]}" in hosts
    assert [n for n in namespace.links() if n.startswith("veth")] != []
    assert "pydock0" in namespace.links()
    # create, then start: the same default.
    pydock.ok("create", "--name", "client", "busybox", "ping", "-c", "1", "-W", "5", address)
    assert pydock.run("start", "-a", "client").status == 0
    # The host's choice of default: none, from the environment.
    chosen = pinned.with_settings(PYDOCK_NETWORK="none")
    out = chosen.ok("run", "--rm", "busybox", "cat", "/proc/net/dev")
    assert "eth0" not in out and "lo:" in out
    pydock.ok("rm", "-f", "server", "client")
    assert_released(pydock, namespace)


def test_port_in_use_fails_before_start(net: tuple[NsPydock, Namespace]) -> None:
    pydock, namespace = net
    pydock.ok("run", "-d", "--name", "holder", "-p", "127.0.0.1:8081:80", "busybox", "sleep", "120")
    before_rules = container_rules(namespace)
    before = rows(pydock.root, "endpoints"), rows(pydock.root, "port_bindings")
    line = fails(pydock.run("run", "--rm", "-p", "127.0.0.1:8081:80", "busybox", "true"), "8081")
    assert "already allocated" in line
    assert (rows(pydock.root, "endpoints"), rows(pydock.root, "port_bindings")) == before
    assert container_rules(namespace) == before_rules
    # A failed start (command not found) releases everything too.
    done = pydock.run(
        "run", "-p", "127.0.0.1:8082:80", "--name", "broken", "busybox", "/nonexistent"
    )
    assert done.status == 127
    pydock.ok("rm", "-f", "holder")
    assert_released(pydock, namespace)


def test_recovery_after_kill_9(net: tuple[NsPydock, Namespace]) -> None:
    """The CLI, the monitor and the container all die by SIGKILL: the next start cleans up."""
    pydock, namespace = net
    cli = subprocess.Popen(
        pydock.command(
            "run", "--name", "doomed", "-p", "127.0.0.1:8083:80", "busybox", "sleep", "120"
        ),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    try:
        deadline = time.monotonic() + 60
        while not container_rules(namespace) and time.monotonic() < deadline:
            assert cli.poll() is None, cli.stderr.read() if cli.stderr else ""
            time.sleep(0.1)
        assert len(container_rules(namespace)) == 2
        doomed_address = rows(pydock.root, "endpoints")[0][2]
        victims = [cli.pid, *processes_of(pydock.root)]
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
    finally:
        cli.kill()
        cli.wait()
    # Orphans are reaped by pid 1 of this machine: until then they look alive (as zombies).
    deadline = time.monotonic() + 30
    while any(os.path.exists(f"/proc/{pid}") for pid in victims) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The next container on the bridge finds the leftovers, removes them, reuses the address.
    out = pydock.ok(
        "run", "--rm", "-p", "127.0.0.1:8083:80", "busybox", "ip", "addr", "show", "eth0"
    )
    assert f"inet {doomed_address}/16" in out
    assert_released(pydock, namespace)


def test_concurrent_runs_get_distinct_addresses(net: tuple[NsPydock, Namespace]) -> None:
    pydock, namespace = net
    starts = [
        subprocess.Popen(
            pydock.command("run", "-d", "--network", "bridge", "busybox", "sleep", "120"),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        for _ in range(4)
    ]
    ids = []
    for process in starts:
        out, err = process.communicate(timeout=120)
        assert process.returncode == 0, err
        ids.append(out.decode().strip())
    addresses = [
        info["NetworkSettings"]["IPAddress"] for info in json.loads(pydock.ok("inspect", *ids))
    ]
    assert len(set(addresses)) == 4 and all(a.startswith("172.17.0.") for a in addresses)
    assert len([n for n in namespace.links() if n.startswith("veth")]) == 4
    pydock.ok("rm", "-f", *ids)
    assert_released(pydock, namespace)


def test_a_container_that_exits_by_itself_lets_go(net: tuple[NsPydock, Namespace]) -> None:
    """A detached container's monitor runs ``pydock cleanup`` at exit: nobody else asks."""
    pydock, namespace = net
    pydock.ok("run", "-d", "-p", "127.0.0.1:8084:80", "busybox", "true")
    deadline = time.monotonic() + 30
    while rows(pydock.root, "port_bindings") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert_released(pydock, namespace)


def test_new_networks_avoid_subnets_the_host_routes(net: tuple[NsPydock, Namespace]) -> None:
    """172.18.0.0/16 is in use on this "host" (another root's bridge, a LAN): skipped."""
    pydock, namespace = net
    for command in (
        ["ip", "link", "add", "lan0", "type", "veth", "peer", "name", "lan1"],
        ["ip", "addr", "add", "172.18.5.1/16", "dev", "lan0"],
        ["ip", "link", "set", "lan0", "up"],
    ):
        assert namespace.run(*command).status == 0
    pydock.ok("network", "create", "other")
    [info] = json.loads(pydock.ok("network", "inspect", "other"))
    assert info["IPAM"]["Config"] == [{"Subnet": "172.19.0.0/16", "Gateway": "172.19.0.1"}]
    line = fails(pydock.run("network", "create", "--subnet", "172.19.1.0/24", "clash"), "overlaps")
    assert "clash" in line
    pydock.ok("network", "rm", "other")


def test_publish_all_exposed_ports(net: tuple[NsPydock, Namespace], tmp_path: Path) -> None:
    pydock, namespace = net
    archive = subprocess.run(
        pydock.command("save", "busybox"), capture_output=True, check=True, timeout=120
    ).stdout
    pydock.ok(
        "load", "-q", stdin=with_config(archive, {"ExposedPorts": {"80/tcp": {}}}, "exposed:1")
    )
    www = tmp_path / "www"
    www.mkdir()
    (www / "index.html").write_text(PAGE)
    cid = pydock.ok(
        "run", "-d", "-P", "-v", f"{www}:/www:ro",
        "exposed:1", "httpd", "-f", "-p", "80", "-h", "/www",
    ).strip()  # fmt: skip
    [line] = pydock.ok("port", cid).splitlines()
    assert line.startswith("80/tcp -> 0.0.0.0:")
    host_port = int(line.rsplit(":", 1)[1])
    assert namespace.fetch(f"http://127.0.0.1:{host_port}/index.html") == PAGE
    [info] = json.loads(pydock.ok("inspect", cid))
    assert info["Config"]["ExposedPorts"] == {"80/tcp": {}}
    assert info["HostConfig"]["PublishAllPorts"] is True
    # Exposed but not published: ps shows the bare port, as Docker does.
    other = pydock.ok("create", "exposed:1", "true").strip()
    [row] = [line for line in pydock.ok("ps", "-a").splitlines() if line.startswith(other[:12])]
    assert "80/tcp" in row
    pydock.ok("rm", "-f", cid, other)
    assert_released(pydock, namespace)


LISTEN = r"""
import socket, sys
server = socket.socket()
server.bind(("127.0.0.1", int(sys.argv[1])))
server.listen()
print("listening", flush=True)
sys.stdin.read()  # until the test closes our standard input
"""


def test_a_port_another_program_listens_on(net: tuple[NsPydock, Namespace]) -> None:
    pydock, namespace = net
    listener = subprocess.Popen(
        namespace.argv(sys.executable, "-c", LISTEN, "8090"),
        stdin=subprocess.PIPE, stdout=subprocess.PIPE,
    )  # fmt: skip
    try:
        assert listener.stdout is not None
        assert listener.stdout.readline() == b"listening\n"
        done = pydock.run("run", "--rm", "-p", "127.0.0.1:8090:80", "busybox", "true")
        line = fails(done, "127.0.0.1:8090")
        assert "address already in use" in line
        assert pydock.ok("ps", "-a", "-q") == ""
        assert_released(pydock, namespace)
    finally:
        listener.kill()
        listener.wait()
