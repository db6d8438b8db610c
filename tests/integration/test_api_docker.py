"""The real docker client (Debian's docker.io, /usr/bin/docker) against `pydock system service`."""

from __future__ import annotations

import errno
import json
import os
import pty
import select
import shutil
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_support import DOCKER, Service, running_service
from .registry_support import running_registry

READ_TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("api")) as running:
        yield running


def test_the_socket_is_for_root_only(service: Service) -> None:
    facts = service.socket.stat()
    assert stat.S_ISSOCK(facts.st_mode)
    assert (stat.S_IMODE(facts.st_mode), facts.st_uid, facts.st_gid) == (0o660, 0, 0)


def test_run_passes_output_and_status(service: Service) -> None:
    done = service.docker("run", "--rm", "busybox", "sh", "-c", "echo hi; echo err >&2; exit 3")
    assert (done.returncode, done.stdout) == (3, "hi\n"), done.stderr
    assert "err\n" in done.stderr
    assert service.docker("ps", "-aq").stdout == ""  # --rm: removed


def test_run_with_standard_input(service: Service) -> None:
    done = service.docker("run", "--rm", "-i", "busybox", "cat", stdin=b"line one\nline two\n")
    assert (done.returncode, done.stdout) == (0, "line one\nline two\n"), done.stderr


def _read_until(leader: int, needle: bytes | None, deadline: float) -> bytes:
    """Read the terminal until ``needle`` shows (None: until it ends) or the deadline."""
    output = b""
    while time.monotonic() < deadline and (needle is None or needle not in output):
        ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            data = os.read(leader, 4096)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        output += data
    return output


def test_run_interactive_terminal(service: Service) -> None:
    """``docker run --rm -it busybox sh`` from a terminal: typed input, raw terminal output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = service.uri
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [DOCKER, "run", "--rm", "-it", "busybox", "sh"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    try:
        prompt = _read_until(leader, b"# ", deadline)
        assert b"# " in prompt, prompt
        os.write(leader, b"tty; echo $((6*7)); exit 4\r")
        output = _read_until(leader, None, deadline)
        status = process.wait(timeout=READ_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        os.close(leader)
    assert status == 4, output
    assert b"42\r\n" in output
    assert b"/dev/pts/0" in output  # the container had a terminal of its own


def test_detached_exec_logs_commit(service: Service) -> None:
    started = service.docker("run", "-d", "--name", "worker", "busybox", "sh", "-c",
                             "echo started; exec sleep 300")  # fmt: skip
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    try:
        ran = service.docker("exec", "worker", "sh", "-c", "echo data > /made; echo done; exit 5")
        assert (ran.returncode, ran.stdout) == (5, "done\n"), ran.stderr
        fed = service.docker("exec", "-i", "worker", "cat", stdin=b"fed\n")
        assert (fed.returncode, fed.stdout) == (0, "fed\n"), fed.stderr
        # The CLI shares the store: it sees the container the service made, running.
        listed = service.pydock("ps", "-q")
        assert container_id[:12] in listed.stdout.split()
        committed = service.docker("commit", "worker", "snapshot:1")
        assert committed.returncode == 0, committed.stderr
        assert committed.stdout.startswith("sha256:")
        logs = service.docker("logs", "worker")
        assert logs.stdout == "started\n"
    finally:
        removed = service.docker("rm", "-f", "worker")
    assert removed.returncode == 0, removed.stderr
    read = service.docker("run", "--rm", "snapshot:1", "cat", "/made")
    assert read.stdout == "data\n", read.stderr


def test_storage_opt_chooses_the_driver(service: Service) -> None:
    created = service.docker("create", "--storage-opt", "driver=vfs", "--name", "onvfs",
                             "busybox", "true")  # fmt: skip
    assert created.returncode == 0, created.stderr
    try:
        shown = service.docker("inspect", "-f", "{{.Driver}}", "onvfs")
        assert shown.stdout.strip() == "vfs"
        pydock_view = json.loads(service.pydock("inspect", "onvfs").stdout)
        assert pydock_view[0]["Driver"] == "vfs"
        started = service.docker("start", "-a", "onvfs")
        assert started.returncode == 0, started.stderr
    finally:
        service.docker("rm", "-f", "onvfs")
    refused = service.docker("create", "--storage-opt", "size=1G", "busybox", "true")
    assert refused.returncode != 0
    assert "size is not supported" in refused.stderr


def test_save_and_load(service: Service, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    saved = service.docker("save", "-o", str(archive), "busybox")
    assert saved.returncode == 0, saved.stderr
    loaded = service.docker("load", "-i", str(archive))
    assert (loaded.returncode, loaded.stdout) == (0, "Loaded image: busybox:latest\n")


def test_push_and_pull(service: Service, tmp_path: Path) -> None:
    with running_registry(tmp_path / "registry") as registry:
        name = f"{registry.address}/tools/busybox:1"
        assert service.docker("tag", "busybox", name).returncode == 0
        pushed = service.docker("push", name)
        assert pushed.returncode == 0, pushed.stderr
        assert "digest: sha256:" in pushed.stdout
        assert registry.requests("PUT", "/v2/tools/busybox/manifests/1")
        assert service.docker("rmi", name).returncode == 0
        pulled = service.docker("pull", name)
        assert pulled.returncode == 0, pulled.stderr
        ran = service.docker("run", "--rm", name, "echo", "pulled")
        assert ran.stdout == "pulled\n", ran.stderr


def test_unknown_names_as_docker_prints_them(service: Service) -> None:
    image = service.docker("image", "inspect", "nosuchimage")
    assert (image.returncode, image.stderr) == (1, "Error: No such image: nosuchimage\n")
    container = service.docker("rm", "nosuchcontainer")
    assert container.returncode == 1
    assert "No such container: nosuchcontainer" in container.stderr
    missing = service.docker("run", "--rm", "busybox", "nosuchcommand")
    assert missing.returncode == 127
    assert "executable file not found" in missing.stderr


def _request(service: Service, head: bytes, body: bytes = b"") -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(READ_TIMEOUT_SECONDS)
    client.connect(str(service.socket))
    client.sendall(head + body)
    return client


def _response(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_an_oversized_body_is_refused(service: Service) -> None:
    size = 5 * 1024 * 1024
    head = (
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
    )
    with _request(service, head) as client:  # the body is refused before it is sent
        answer = b""
        while chunk := client.recv(65536):  # the service closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than" in answer
    assert service.docker("version", "-f", "{{.Server.APIVersion}}").stdout == "1.41\n"


def test_a_client_leaving_mid_attach_costs_nothing(service: Service) -> None:
    created = service.docker("create", "--name", "chatty", "busybox", "sh", "-c",
                             "while true; do echo tick; done")  # fmt: skip
    assert created.returncode == 0, created.stderr
    try:
        head = (
            b"POST /v1.41/containers/chatty/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
            b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        with _request(service, head) as client:
            answer = _response(client)
            assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
            assert service.docker("start", "chatty").returncode == 0
            framed = answer.partition(b"\r\n\r\n")[2]
            while len(framed) < 8:
                framed += client.recv(4096)
            assert framed[:1] == b"\x01"  # stdout, Docker's multiplexed framing
        # The client is gone; the container runs on and the service serves.
        state = service.docker("inspect", "-f", "{{.State.Running}}", "chatty")
        assert state.stdout == "true\n"
        assert service.docker("kill", "chatty").returncode == 0
        assert service.docker("wait", "chatty").stdout == "137\n"
        ran = service.docker("run", "--rm", "busybox", "echo", "still serving")
        assert ran.stdout == "still serving\n", ran.stderr
    finally:
        service.docker("rm", "-f", "chatty")


def test_a_restarted_service_adopts_running_containers(service: Service) -> None:
    started = service.docker("run", "-d", "--name", "survivor", "busybox", "sleep", "300")
    assert started.returncode == 0, started.stderr
    try:
        service.stop()
        service.start()
        listed = service.docker("ps", "--format", "{{.Names}} {{.State}}")
        assert "survivor running" in listed.stdout.splitlines()
        stopped = service.docker("stop", "-t", "1", "survivor")
        assert stopped.returncode == 0, stopped.stderr
        assert service.docker("inspect", "-f", "{{.State.Status}}", "survivor").stdout == (
            "exited\n"
        )
    finally:
        service.docker("rm", "-f", "survivor")


def test_socket_activation_and_idle_exit(service: Service, tmp_path: Path) -> None:
    """systemd's way (LISTEN_FDS): the passed socket is served; idle, the service leaves."""
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed")
    path = tmp_path / "activated.sock"
    command = [activate, "-l", str(path), sys.executable, "-m", "pydock", "--root",
               str(service.root), "--run-root", str(service.run_root), "system", "service",
               "--time", "1"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYDOCK_", "DOCKER_"))}
    activator = subprocess.Popen(command, stderr=subprocess.PIPE, env=env)
    try:
        assert activator.stderr is not None
        assert b"Listening on" in activator.stderr.readline()  # the socket exists now
        env["DOCKER_HOST"] = f"unix://{path}"
        ran = subprocess.run([DOCKER, "run", "--rm", "busybox", "echo", "activated"],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert ran.stdout == "activated\n", ran.stderr
        # Nothing more to do: the service (exec'd in the activator's place) leaves by itself.
        assert activator.wait(timeout=60) == 0
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait(timeout=30)
        if activator.stderr is not None:
            activator.stderr.close()


def test_an_older_api_version_is_refused(service: Service) -> None:
    head = b"GET /v1.40/version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    with _request(service, head) as client:
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Minimum supported API version is 1.41" in answer
    with _request(service, head.replace(b"/v1.40", b"/v1.41")) as client:
        assert _response(client).startswith(b"HTTP/1.1 200")
