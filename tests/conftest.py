"""What the whole suite shares: no fuse mount server it started outlives it.

A fuse mount (``--storage fuse``, the fuse conformance cases) starts a resident mount server
that stays for a few idle minutes by design. At the end of the session every server that this
user's session started is stopped with SIGTERM: the server removes its socket and leaves, its
spare goes with it, and a mount process still serving a test's mount unmounts it; then the
lock and log files those servers kept go too.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MARKER = b"pydock-fuse-server"

# No test reaches a host other than this one. A registry that is not on this machine (docker.io,
# for an image a test means to be missing) is reached through a proxy address where nothing
# listens, so the attempt fails at once and makes no DNS query; registries on 127.0.0.1 are
# reached directly. The commands the tests start inherit this.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
    os.environ[_name] = "http://127.0.0.1:9"
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost,::1"
# A container joins the bridge only when its test asks for one (--network, -p): the default
# bridge would put a bridge and its nft rules in the host's namespace for every container.
# The tests of the default itself run in network namespaces of their own and unset this.
os.environ["PYDOCK_NETWORK"] = "none"


def _servers() -> dict[int, list[bytes]]:
    """This user's mount servers, with their spares and mount processes (forks: same argv)."""
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            owner = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        if owner == os.getuid() and MARKER in argv:
            found[int(entry)] = argv
    return found


def _files_of(argv: list[bytes]) -> list[Path]:
    """The lock and log a server keeps beside its socket (``--dir D --key K``)."""
    try:
        directory = Path(os.fsdecode(argv[argv.index(b"--dir") + 1]))
        key = os.fsdecode(argv[argv.index(b"--key") + 1])
    except (ValueError, IndexError):
        return []
    return [directory / f"mount-{key}.lock", directory / f"mount-{key}.log"]


@pytest.fixture(scope="session", autouse=True)
def stop_mount_servers() -> Iterator[None]:
    before = set(_servers())
    yield
    started = {pid: argv for pid, argv in _servers().items() if pid not in before}
    for pid in started:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10
    while started.keys() & _servers().keys() and time.monotonic() < deadline:
        time.sleep(0.05)
    # Then their lock and log files: no server of theirs is left to race for the lock.
    if not started.keys() & _servers().keys():
        for argv in started.values():
            for path in _files_of(argv):
                path.unlink(missing_ok=True)


# pydock's default bridge and nft table in this machine's own network namespace: no test may
# leave them (the network tests make theirs in namespaces of their own, see PYDOCK_NETWORK).
HOST_BRIDGE = Path("/sys/class/net/pydock0")


def _host_table() -> bool:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        return False
    listed = subprocess.run(["nft", "list", "table", "ip", "pydock"], capture_output=True)
    return listed.returncode == 0


@pytest.fixture(scope="session", autouse=True)
def host_network_untouched() -> Iterator[None]:
    """Fail the session when a test made pydock's bridge or nft table in the host's network
    namespace, and remove them (a host that had them before the session is not judged)."""
    before = HOST_BRIDGE.exists() or _host_table()
    yield
    if before or not (HOST_BRIDGE.exists() or _host_table()):
        return
    subprocess.run(["ip", "link", "del", "pydock0"], capture_output=True)
    subprocess.run(["nft", "delete", "table", "ip", "pydock"], capture_output=True)
    pytest.fail("a test made pydock's bridge or nft table in the host's network namespace")
