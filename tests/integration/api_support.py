"""``pydock system service`` for tests: a temporary root, run root and socket; the real
``docker`` client (Debian's docker.io, /usr/bin/docker; never dockerd) and docker-py.

The service is started with ``--time 0`` (with ``own_network``, in a fresh network namespace
of its own, ``unshare --net``, so that the bridges and rules of ``network create`` live and die
there) and waited for through the line it prints when it listens; on the way out it is
stopped (SIGTERM, then SIGKILL after a bounded wait) and every container left in the root is
removed with the CLI, whether the test passed or not.
"""

from __future__ import annotations

import contextlib
import os
import select
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from .containers_support import clean_env

DOCKER = "/usr/bin/docker"
START_TIMEOUT_SECONDS = 30.0
COMMAND_TIMEOUT_SECONDS = 120


def _env() -> dict[str, str]:
    return {k: v for k, v in clean_env().items() if not k.startswith("DOCKER_")}


@dataclass
class Service:
    """A running service: its root, run root, socket and process."""

    root: Path
    run_root: Path
    socket: Path
    process: subprocess.Popen[bytes] | None = None
    own_network: bool = False

    @property
    def uri(self) -> str:
        return f"unix://{self.socket}"

    def docker(
        self, *args: str, stdin: bytes | None = None, timeout: float = COMMAND_TIMEOUT_SECONDS
    ) -> subprocess.CompletedProcess[str]:
        """Run the real docker client against this service."""
        env = _env() | {"DOCKER_HOST": self.uri, "HOME": str(self.root.parent)}
        done = subprocess.run(
            [DOCKER, *args],
            input=stdin,
            capture_output=True,
            timeout=timeout,
            env=env,
            check=False,
        )
        return subprocess.CompletedProcess(
            done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
        )

    def pydock(self, *args: str) -> subprocess.CompletedProcess[str]:
        """Run the pydock CLI on the same root (the store the service uses)."""
        command = [sys.executable, "-m", "pydock", "--root", str(self.root)]
        command += ["--run-root", str(self.run_root), *args]
        return subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=COMMAND_TIMEOUT_SECONDS,
            env=_env(),
            check=False,
        )

    def start(self) -> None:
        """Start the service and return once it listens."""
        command = [sys.executable, "-m", "pydock", "--root", str(self.root)]
        command += ["--run-root", str(self.run_root), "system", "service", "--time", "0"]
        env = _env()
        if self.own_network:
            # unshare and sh exec: the service keeps the pid; lo is up for 127.0.0.1.
            up = 'ip link set lo up && exec "$@"'
            command = ["unshare", "--net", "sh", "-c", up, "sh", *command]
            # In a namespace of its own, the service keeps pydock's default network, the bridge.
            env.pop("PYDOCK_NETWORK", None)
        self.process = subprocess.Popen(
            [*command, self.uri], stderr=subprocess.PIPE, env=env, start_new_session=True
        )
        assert self.process.stderr is not None
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        line = b""
        while not line.endswith(b"\n"):
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self.process.stderr], [], [], max(0.0, left))
            if not ready:
                raise RuntimeError(f"the service did not listen within {START_TIMEOUT_SECONDS}s")
            chunk = os.read(self.process.stderr.fileno(), 1)
            if not chunk:
                raise RuntimeError(f"the service ended: {line.decode(errors='replace')}")
            line += chunk
        assert b"serving the Docker API on" in line, line

    def in_network(self, *command: str) -> list[str]:
        """``command`` run in the service's network namespace (``own_network``)."""
        assert self.own_network and self.process is not None
        return ["nsenter", f"--net=/proc/{self.process.pid}/ns/net", "--", *command]

    def stop(self) -> None:
        """Stop the service (SIGTERM; SIGKILL if it does not leave in time) and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=30)
        if process.stderr is not None:
            process.stderr.close()


@contextmanager
def running_service(workdir: Path, *, own_network: bool = False) -> Iterator[Service]:
    """A service over a new root with the built-in busybox; cleaned up on the way out."""
    if not os.path.exists(DOCKER):
        pytest.skip("docker.io's client /usr/bin/docker is not installed")
    if os.geteuid() != 0:
        pytest.skip("the API tests run containers as root")
    tools = ("unshare", "nsenter", "ip")
    if own_network and any(shutil.which(tool) is None for tool in tools):
        pytest.skip("needs unshare, nsenter (util-linux) and ip (iproute2) for a namespace")
    service = Service(
        workdir / "root", workdir / "run", workdir / "docker.sock", own_network=own_network
    )
    imported = service.pydock("import", "builtin:busybox", "busybox")
    assert imported.returncode == 0, imported.stderr
    try:
        service.start()
        yield service
    finally:
        if own_network and service.process is not None and service.process.poll() is None:
            # Containers on a bridge are released through the service, in its namespace: the
            # CLI below runs in the host's, where their veths and rules never were.
            listed = service.docker("ps", "-aq")
            if listed.stdout.split():
                service.docker("rm", "-f", *listed.stdout.split())
        service.stop()
        listed = service.pydock("ps", "-aq")
        for container in listed.stdout.split():
            service.pydock("rm", "-f", container)


def stored_state(service: Service, container_id: str) -> str | None:
    """The container's state as the store holds it, read without a pydock command (which
    would record a finished run itself); ``None`` once it is removed."""
    conn = sqlite3.connect(f"file:{service.root / 'pydock.db'}?mode=ro", uri=True)
    with contextlib.closing(conn):
        row = conn.execute("SELECT state FROM containers WHERE id = ?", [container_id]).fetchone()
    return None if row is None else str(row[0])


def wait_for_state(service: Service, container_id: str, wanted: str | None) -> None:
    deadline = time.monotonic() + 30
    while (state := stored_state(service, container_id)) != wanted:
        assert time.monotonic() < deadline, f"still {state}, not {wanted}"
        time.sleep(0.05)
