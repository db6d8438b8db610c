"""A real registry for tests: Debian's ``docker-registry`` (CNCF distribution) on 127.0.0.1.

Each registry binds a port of the kernel's choosing (``127.0.0.1:0``; the port is read back
from its log, so no other process can take it in between), gets a temporary storage
directory and a temporary config, is waited for (``/v2/`` must answer within a bounded time)
and is killed and removed when the test ends, whether it passed or not. ``htpasswd``
(apache2-utils) makes basic-auth users.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

REGISTRY = "docker-registry"
START_TIMEOUT_SECONDS = 15.0
LISTENING = re.compile(r'msg="listening on (127\.0\.0\.1:[0-9]+)"')


def missing_tool(*names: str) -> str | None:
    """The first of ``names`` that is not installed, if any."""
    for name in names:
        if shutil.which(name) is None:
            return name
    return None


def require(*names: str) -> None:
    """Skip the test, naming the tool, unless every one of ``names`` is installed."""
    missing = missing_tool(*names)
    if missing is not None:
        pytest.skip(f"{missing} is not installed")


@contextmanager
def unreachable() -> Iterator[str]:
    """``127.0.0.1:PORT`` where nothing can answer for the block: the port is bound here and
    never listened on, so a connection is refused and no other process can take it."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{held.getsockname()[1]}"


@dataclass(frozen=True)
class Registry:
    """A running registry: its ``host:port``, storage directory and credentials, if any."""

    address: str
    storage: Path
    username: str | None = None
    password: str | None = None
    log: Path | None = None

    def requests(self, method: str, path_prefix: str) -> list[str]:
        """The access-log lines of ``METHOD /path...`` requests the registry answered."""
        assert self.log is not None
        needle = f'"{method} {path_prefix}'
        return [line for line in self.log.read_text().splitlines() if needle in line]

    def blob_data_path(self, digest: str) -> Path:
        """Where the filesystem driver keeps blob ``digest``."""
        hexpart = digest.partition(":")[2]
        return self.storage / "docker/registry/v2/blobs/sha256" / hexpart[:2] / hexpart / "data"


def _config(storage: Path, htpasswd: Path | None, auth: str) -> str:
    if htpasswd is not None:
        auth = f"auth:\n  htpasswd:\n    realm: pydock-test\n    path: {htpasswd}\n"
    return (
        "version: 0.1\n"
        # Level info for the "listening on ADDRESS" line; the access log says "METHOD /path".
        "log:\n  level: info\n  accesslog:\n    disabled: false\n"
        f"storage:\n  filesystem:\n    rootdirectory: {storage}\n"
        "  delete:\n    enabled: true\n"
        "  maintenance:\n    uploadpurging:\n      enabled: false\n"
        "http:\n  addr: 127.0.0.1:0\n  secret: pydock-test-secret\n"
        f"{auth}"
    )


def _wait_ready(process: subprocess.Popen[bytes], log: Path) -> str:
    """The ``host:port`` the registry listens on, once ``/v2/`` answers there."""
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    address = None
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{REGISTRY} exited: {log.read_text()[-2000:]}")
        if address is None:
            found = LISTENING.search(log.read_text())
            address = found.group(1) if found else None
        if address is not None:
            try:
                with urllib.request.urlopen(f"http://{address}/v2/", timeout=1):
                    return address
            except urllib.error.HTTPError as exc:
                if exc.code == 401:
                    return address
            except OSError:
                pass
        time.sleep(0.05)
    raise RuntimeError(f"{REGISTRY} did not answer within {START_TIMEOUT_SECONDS}s")


@contextmanager
def running_registry(
    workdir: Path, *, credentials: tuple[str, str] | None = None, auth: str = ""
) -> Iterator[Registry]:
    """Start a registry under ``workdir``; stop it and remove its files on the way out.

    ``credentials`` turn on basic auth (htpasswd); ``auth`` is another ``auth:`` section.
    """
    require(REGISTRY)
    workdir.mkdir(parents=True, exist_ok=True)
    storage = workdir / "storage"
    htpasswd = None
    if credentials is not None:
        require("htpasswd")
        htpasswd = workdir / "htpasswd"
        made = subprocess.run(
            ["htpasswd", "-Bbn", *credentials], capture_output=True, check=True, timeout=30
        )
        htpasswd.write_bytes(made.stdout)
    config = workdir / "config.yml"
    config.write_text(_config(storage, htpasswd, auth))
    log = workdir / "registry.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [REGISTRY, "serve", str(config)], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        address = _wait_ready(process, log)
        user, secret = credentials if credentials else (None, None)
        yield Registry(address, storage, user, secret, log)
    finally:
        process.kill()
        process.wait(timeout=30)
        shutil.rmtree(workdir, ignore_errors=True)


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()
