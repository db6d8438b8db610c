"""What the whole suite shares: no fuse mount server it started outlives it.

A fuse mount (``--storage fuse``, the fuse conformance cases) starts a resident mount server
that stays for a few idle minutes by design. At the end of the session every server that this
user's session started is stopped with SIGTERM: the server removes its socket and leaves, its
spare goes with it, and a mount process still serving a test's mount unmounts it.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

MARKER = b"pydock-fuse-server"


def _servers() -> set[int]:
    """This user's mount servers, with their spares and mount processes (forks: same argv)."""
    found = set()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            owner = os.stat(f"/proc/{entry}").st_uid
        except OSError:
            continue
        if owner == os.getuid() and MARKER in argv:
            found.add(int(entry))
    return found


@pytest.fixture(scope="session", autouse=True)
def stop_mount_servers() -> Iterator[None]:
    before = _servers()
    yield
    started = _servers() - before
    for pid in started:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
    deadline = time.monotonic() + 10
    while started & _servers() and time.monotonic() < deadline:
        time.sleep(0.05)
