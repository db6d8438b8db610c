"""Networking of the service's containers: the bridge, published ports, user networks with
names and aliases, restart policies; with Debian's docker client and docker-py.

The service runs in a network namespace of its own (``own_network``): its bridges, veths and
nftables rules live there only, and every request to a published port is made from inside it
through ``nsenter``, to 127.0.0.1 or to a container's address in that namespace.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from .api_support import Service, running_service
from .containers_support import clean_env
from .netns_support import FETCH

pytestmark = pytest.mark.skipif(
    shutil.which("nft") is None, reason="needs nft (Debian nftables) for the bridge driver"
)

PAGE = "served through the pydock API\n"
# busybox httpd serving PAGE from /www on port 80.
SERVE = f"mkdir -p /www && echo '{PAGE.strip()}' > /www/index.html && exec httpd -f -p 80 -h /www"
# In a client container: fetch a URL, retrying while the server comes up (bounded).
WGET = 'for i in $(seq 50); do wget -qO- "$1" && exit 0; sleep 0.2; done; exit 1'


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("api-ports"), own_network=True) as running:
        yield running


def fetch(service: Service, url: str) -> str:
    """GET ``url`` from inside the service's network namespace."""
    done = subprocess.run(
        service.in_network(sys.executable, "-c", FETCH, url),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def inspect(service: Service, name: str) -> dict[str, object]:
    shown = service.docker("inspect", name)
    assert shown.returncode == 0, shown.stderr
    document = json.loads(shown.stdout)[0]
    assert isinstance(document, dict)
    return document


def test_a_published_port_serves_the_services_namespace(service: Service) -> None:
    started = service.docker(
        "run", "-d", "--name", "web", "-p", "127.0.0.1:8080:80", "busybox", "sh", "-c", SERVE
    )
    assert started.returncode == 0, started.stderr
    try:
        assert fetch(service, "http://127.0.0.1:8080/index.html") == PAGE
        assert service.docker("port", "web").stdout == "80/tcp -> 127.0.0.1:8080\n"
        assert service.docker("port", "web", "80").stdout == "127.0.0.1:8080\n"
        shown = inspect(service, "web")
        settings = shown["NetworkSettings"]
        assert isinstance(settings, dict)
        assert settings["Ports"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
        address = settings["Networks"]["bridge"]["IPAddress"]
        assert address.startswith("172.17.0.") and settings["IPAddress"] == address
        host = shown["HostConfig"]
        assert isinstance(host, dict)
        assert host["NetworkMode"] == "bridge"
        assert host["PortBindings"] == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}]}
        listed = service.docker("ps", "--format", "{{.Names}} {{.Ports}}")
        assert listed.stdout == "web 127.0.0.1:8080->80/tcp\n"
        # Another container on the bridge reaches it by its address.
        url = f"http://{address}/index.html"
        reached = service.docker(
            "run", "--rm", "--network", "bridge", "busybox", "sh", "-c", WGET, "sh", url
        )
        assert (reached.returncode, reached.stdout) == (0, PAGE), reached.stderr
    finally:
        service.docker("rm", "-f", "web")
    # Without --network a container is on the default bridge, as with Docker and `pydock run`
    # (the service runs without the suite's pinned default); --network none has only lo.
    bridged = service.docker("run", "--rm", "busybox", "sh", "-c", "ls /sys/class/net")
    assert (bridged.returncode, bridged.stdout) == (0, "eth0\nlo\n"), bridged.stderr
    alone = service.docker(
        "run", "--rm", "--network", "none", "busybox", "sh", "-c", "ls /sys/class/net"
    )
    assert (alone.returncode, alone.stdout) == (0, "lo\n"), alone.stderr


def test_publish_all_exposed_ports(service: Service) -> None:
    started = service.docker(
        "run", "-d", "--name", "every", "-P", "--expose", "80", "busybox", "sh", "-c", SERVE
    )
    assert started.returncode == 0, started.stderr
    try:
        answer = service.docker("port", "every", "80/tcp")
        assert answer.returncode == 0, answer.stderr
        host_ip, _, host_port = answer.stdout.splitlines()[0].rpartition(":")
        assert host_ip == "0.0.0.0" and int(host_port) > 0
        assert fetch(service, f"http://127.0.0.1:{host_port}/index.html") == PAGE
    finally:
        service.docker("rm", "-f", "every")


def test_a_user_network_by_name_and_alias(service: Service) -> None:
    made = service.docker("network", "create", "apinet")
    assert made.returncode == 0, made.stderr
    try:
        started = service.docker(
            "run", "-d", "--name", "srv", "--network", "apinet", "--network-alias", "www",
            "--hostname", "server", "--add-host", "db.test:10.9.9.9",
            "busybox", "sh", "-c", SERVE,
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        shown = inspect(service, "srv")
        networks = shown["NetworkSettings"]["Networks"]  # type: ignore[index]
        assert list(networks) == ["apinet"]
        assert "www" in networks["apinet"]["Aliases"]
        assert shown["HostConfig"]["ExtraHosts"] == ["db.test:10.9.9.9"]  # type: ignore[index]
        for name in ("srv", "www"):
            url = f"http://{name}/index.html"
            reached = service.docker(
                "run", "--rm", "--network", "apinet", "busybox", "sh", "-c", WGET, "sh", url
            )
            assert (reached.returncode, reached.stdout) == (0, PAGE), reached.stderr
        hosts = service.docker("exec", "srv", "cat", "/etc/hosts")
        assert "10.9.9.9\tdb.test" in hosts.stdout or "10.9.9.9 db.test" in hosts.stdout
        # Names are /etc/hosts lines of the network's members; the default bridge is another
        # network, whose containers do not get apinet's names.
        member = service.docker(
            "run", "--rm", "--network", "apinet", "busybox", "cat", "/etc/hosts"
        )
        assert "www" in member.stdout.split() and "srv" in member.stdout.split()
        apart = service.docker("run", "--rm", "--network", "bridge", "busybox", "cat", "/etc/hosts")
        assert apart.returncode == 0, apart.stderr
        assert "srv" not in apart.stdout.split() and "www" not in apart.stdout.split()
        fixed = service.docker(
            "create", "--network", "apinet", "--ip", "10.200.0.9", "busybox", "true"
        )
        assert fixed.returncode != 0 and "fixed address" in fixed.stderr
        # A missing network is named, not taken for a missing image (the client pulls on 404).
        missing = service.docker("create", "--network", "nosuch", "busybox", "true")
        assert missing.returncode != 0 and "network nosuch not found" in missing.stderr
        assert "Unable to find image" not in missing.stderr
    finally:
        service.docker("rm", "-f", "srv")
        service.docker("network", "rm", "apinet")


def test_restart_on_failure_counts_restarts(service: Service) -> None:
    started = service.docker(
        "run", "-d", "--name", "flaky", "--restart", "on-failure:2",
        "busybox", "sh", "-c", "echo run; exit 3",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 60
        while True:
            shown = inspect(service, "flaky")
            state = shown["State"]
            assert isinstance(state, dict)
            # Between a restart's count and its run the container shows exited (the back-off):
            # done once the third run has written its line.
            runs = service.docker("logs", "flaky").stdout
            if shown["RestartCount"] == 2 and state["Status"] == "exited" and runs == "run\n" * 3:
                break
            assert time.monotonic() < deadline, f"not restarted twice: {shown['RestartCount']}"
            time.sleep(0.2)
        assert state["ExitCode"] == 3
        assert shown["HostConfig"]["RestartPolicy"] == {  # type: ignore[index]
            "Name": "on-failure",
            "MaximumRetryCount": 2,
        }
        assert service.docker("logs", "flaky").stdout == "run\n" * 3
        refused = service.docker("create", "--restart", "always", "--rm", "busybox", "true")
        assert refused.returncode != 0
    finally:
        service.docker("rm", "-f", "flaky")


def test_docker_py_run_with_ports(service: Service) -> None:
    client = docker.DockerClient(base_url=service.uri, timeout=120)
    container = None
    try:
        container = client.containers.run(
            "busybox",
            ["sh", "-c", SERVE],
            detach=True,
            name="pyweb",
            ports={"80/tcp": ("127.0.0.1", 8081)},
        )
        container.reload()
        assert container.ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8081"}]}
        assert fetch(service, "http://127.0.0.1:8081/index.html") == PAGE
        [entry] = client.api.containers(filters={"name": "pyweb"})
        assert entry["Ports"] == [
            {"IP": "127.0.0.1", "PrivatePort": 80, "PublicPort": 8081, "Type": "tcp"}
        ]
        assert "bridge" in entry["NetworkSettings"]["Networks"]
    finally:
        if container is not None:
            container.remove(force=True)
        client.close()


COMPOSE = shutil.which("docker-compose")
COMPOSE_FILE = """\
version: "3"
services:
  web:
    image: busybox
    command:
      - sh
      - -c
      - mkdir -p /www && echo composed > /www/index.html && exec httpd -f -p 80 -h /www
    ports: ["127.0.0.1:8088:80"]
  client:
    image: busybox
    command:
      - sh
      - -c
      - for i in $$(seq 50); do wget -qO- http://web/ && exit 0; sleep 0.2; done; exit 1
    depends_on: [web]
"""


@pytest.mark.skipif(COMPOSE is None, reason="needs docker-compose (Debian docker-compose)")
def test_docker_compose_up_reaches_a_service_by_name(service: Service, tmp_path: Path) -> None:
    """Debian's docker-compose 1.29 (through docker-py) brings a two-service project up: its
    network, a published port, a client that reaches the server by its service name."""
    (tmp_path / "docker-compose.yml").write_text(COMPOSE_FILE)
    env = {
        **{k: v for k, v in clean_env().items() if not k.startswith("DOCKER_")},
        "DOCKER_HOST": service.uri,
        "COMPOSE_PROJECT_NAME": "proj",
    }

    def compose(*args: str) -> subprocess.CompletedProcess[str]:
        assert COMPOSE is not None
        return subprocess.run(
            [COMPOSE, *args], cwd=tmp_path, env=env, capture_output=True, text=True,
            timeout=180, check=False,
        )  # fmt: skip

    try:
        up = compose("up", "-d")
        assert up.returncode == 0, up.stdout + up.stderr
        assert fetch(service, "http://127.0.0.1:8088/index.html") == "composed\n"
        waited = service.docker("wait", "proj_client_1")
        assert waited.stdout.strip() == "0", waited.stderr
        assert service.docker("logs", "proj_client_1").stdout == "composed\n"
        networks = service.docker("network", "ls", "--format", "{{.Name}}").stdout.split()
        assert "proj_default" in networks
    finally:
        down = compose("down")
    assert down.returncode == 0, down.stdout + down.stderr
    assert service.docker("ps", "-aq").stdout == ""
    assert "proj_default" not in service.docker("network", "ls").stdout
