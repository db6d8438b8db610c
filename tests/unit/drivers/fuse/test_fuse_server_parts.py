"""The mount server's pieces in this process, with real sockets, locks and peers: who may use
it, and the lock that makes one server per user and namespace."""

from __future__ import annotations

import fcntl
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.fuse import client, server
from drivers.fuse.client import ServerPaths

# An abstract socket: any uid can connect, whatever the test's directories allow.
CONNECT = "import socket, sys; socket.socket(socket.AF_UNIX).connect('\\0' + sys.argv[1])"


@pytest.fixture
def listener(tmp_path: Path) -> Iterator[tuple[socket.socket, str]]:
    name = f"pydock-test-{os.getpid()}-{tmp_path.name}"
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.bind("\0" + name)
        sock.listen()
        sock.settimeout(10)
        yield sock, name


def test_a_peer_that_is_gone_is_refused(listener: tuple[socket.socket, str]) -> None:
    sock, name = listener
    subprocess.run([sys.executable, "-c", CONNECT, name], timeout=30, check=True)
    conn, _ = sock.accept()  # queued by a process that has exited and been reaped
    with conn:
        pid, _ = server._peer(conn)
        assert not os.path.exists(f"/proc/{pid}")
        refusal = server._refusal(conn, client.namespace_key())
        assert refusal == f"refused: cannot read the namespaces of pid {pid}"


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 to connect as another uid")
def test_a_peer_of_another_uid_is_refused(listener: tuple[socket.socket, str]) -> None:
    sock, name = listener
    peer = subprocess.Popen(
        [sys.executable, "-c", CONNECT + "; sys.stdin.read()", name],
        stdin=subprocess.PIPE,
        user=65534,
        group=65534,
        extra_groups=[],
    )
    try:
        conn, _ = sock.accept()
        with conn:
            refusal = server._refusal(conn, client.namespace_key())
        assert refusal == "refused: uid 65534 is not this server's uid 0"
    finally:
        peer.kill()
        peer.wait(timeout=10)


def test_the_lock_is_taken_or_left_to_a_listening_owner_or_times_out(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    paths = ServerPaths(tmp_path, "k")
    fd = server._take_lock(paths)
    assert fd is not None
    try:
        # Held (flock is per open file: this fd stands for another server) with nobody
        # listening: another server is starting or leaving; waited for, within a bound.
        monkeypatch.setattr(server, "LOCK_TIMEOUT", 0.2)
        with pytest.raises(TimeoutError, match=f"lock {paths.lock} still held after 0.2s"):
            server._take_lock(paths)
        # Held, and its owner listens: nothing to do.
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as owner:
            owner.bind(os.fspath(paths.socket))
            owner.listen()
            assert server._take_lock(paths) is None
    finally:
        os.close(fd)
    again = server._take_lock(paths)  # released with its holder
    assert again is not None
    with pytest.raises(BlockingIOError):
        fcntl.flock(os.open(paths.lock, os.O_RDWR | os.O_CLOEXEC), fcntl.LOCK_EX | fcntl.LOCK_NB)
    os.close(again)
