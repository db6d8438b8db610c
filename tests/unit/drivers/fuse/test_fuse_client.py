"""The fuse mount server's client side, with real sockets and directories: where the run root
is, the private socket directory, the start report, and a server that answers wrongly."""

from __future__ import annotations

import contextlib
import fcntl
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from drivers.fuse import client
from drivers.fuse.client import ServerPaths, ServerUnavailableError


def test_default_run_root_follows_docker_and_podman(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PYDOCK_RUN_ROOT", str(tmp_path / "explicit"))
    assert client.default_run_root() == tmp_path / "explicit"
    monkeypatch.delenv("PYDOCK_RUN_ROOT")
    if os.geteuid() == 0:
        assert client.default_run_root() == Path("/run/pydock")
        return
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    assert client.default_run_root() == tmp_path / "pydock"
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path / "absent"))
    assert client.default_run_root() == Path(f"/tmp/pydock-run-{os.geteuid()}")


def test_private_directory_is_made_and_closed(tmp_path: Path) -> None:
    made = tmp_path / "a" / "fuse"
    client.private_directory(made)
    assert made.stat().st_mode & 0o777 == 0o700
    made.chmod(0o755)  # opened up by someone: closed again
    client.private_directory(made)
    assert made.stat().st_mode & 0o777 == 0o700
    (tmp_path / "file").write_text("")
    with pytest.raises(ServerUnavailableError, match="making the mount server dir"):
        client.private_directory(tmp_path / "file" / "below")
    (tmp_path / "link").symlink_to(made)
    with pytest.raises(ServerUnavailableError, match="is not a directory of uid"):
        client.private_directory(tmp_path / "link")


def test_paths_are_per_namespace(tmp_path: Path) -> None:
    paths = ServerPaths.under(tmp_path)
    key = client.namespace_key()
    assert paths.directory == tmp_path / "fuse"
    assert paths.socket.name == f"mount-{key}.sock"
    assert paths.lock.name == f"mount-{key}.lock" and paths.log.name == f"mount-{key}.log"
    user, mnt = key.split("-")
    assert int(user) == os.stat("/proc/self/ns/user").st_ino
    assert int(mnt) == os.stat("/proc/self/ns/mnt").st_ino


def test_read_report_until_eof_or_timeout() -> None:
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"ready\n")
    os.close(write_fd)
    assert client._read_report(read_fd, 5) == "ready"
    os.close(read_fd)
    read_fd, write_fd = os.pipe()
    try:
        assert client._read_report(read_fd, 0.05) == "no answer within 0.05s"
    finally:
        os.close(read_fd)
        os.close(write_fd)


@pytest.fixture
def answering(tmp_path: Path) -> Iterator[tuple[ServerPaths, list[bytes]]]:
    """A listening socket at the server's path that answers each connection with the next of
    the given replies, then closes it."""
    paths = ServerPaths(tmp_path, "k")
    replies: list[bytes] = []
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(paths.socket))
    listener.listen()
    listener.settimeout(0.1)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(5)
            with conn:
                conn.recv(4096)
                if replies:
                    conn.sendall(replies.pop(0))

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield paths, replies
    stop.set()
    thread.join(timeout=10)
    listener.close()


def test_a_server_that_refuses_or_closes_is_unavailable(
    answering: tuple[ServerPaths, list[bytes]],
) -> None:
    paths, replies = answering
    replies += [b"refused: not your namespace\n", b""]
    with pytest.raises(ServerUnavailableError, match="refused: not your namespace"):
        client._ask(paths, b"mount\n", 5)
    with pytest.raises(ServerUnavailableError, match="closed the connection"):
        client._ask(paths, b"mount\n", 5)
    replies.append(b"pid 4242\nmounted\n")
    assert client._ask(paths, b"mount\n", 5) == (4242, "mounted")


def test_no_server_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(ServerUnavailableError, match="no mount server at"):
        client._ask(ServerPaths(tmp_path, "none"), b"mount\n", 1)


def test_server_serves_only_its_own_uid_and_namespaces() -> None:
    from drivers.fuse import server

    mine, theirs = socket.socketpair()
    with mine, theirs:
        key = client.namespace_key()
        assert server._refusal(mine, key) is None
        refused = server._refusal(mine, "1-2")
        assert refused is not None and refused.startswith(f"refused: pid {os.getpid()} is in")


@pytest.mark.parametrize(
    ("sent", "why"),
    [
        (b'{"options": []', "the request ended early"),
        (b"[1, 2]\n", "the request is not an object"),
        (b"x" * (client.PROTOCOL_LIMIT + 10), "the request is too long"),
    ],
)
def test_server_refuses_a_malformed_request(sent: bytes, why: str) -> None:
    from drivers.fuse import server

    ours, peer = socket.socketpair()
    with ours, peer:
        sender = threading.Thread(
            target=lambda: (peer.sendall(sent), peer.shutdown(socket.SHUT_WR))
        )
        sender.start()
        with pytest.raises(ValueError, match=why):
            server._read_request(ours.fileno())
        sender.join(timeout=10)
        assert ours.fileno() >= 0  # the connection stays the caller's to answer on


def test_a_server_that_never_answers_is_unavailable(tmp_path: Path) -> None:
    paths = ServerPaths(tmp_path, "k")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(os.fspath(paths.socket))
        listener.listen()  # connections queue and are never accepted
        with pytest.raises(ServerUnavailableError, match=f"mount server at {paths.socket}"):
            client._ask(paths, b"mount\n", 0.2)


def test_a_server_that_drops_the_request_unread_is_unavailable(tmp_path: Path) -> None:
    paths = ServerPaths(tmp_path, "k")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as listener:
        listener.bind(os.fspath(paths.socket))
        listener.listen()

        def drop() -> None:
            conn, _ = listener.accept()
            conn.settimeout(10)
            conn.recv(1, socket.MSG_PEEK)  # the request is there...
            conn.close()  # ...and closed unread: the client's recv is reset

        dropper = threading.Thread(target=drop)
        dropper.start()
        try:
            with pytest.raises(ServerUnavailableError, match="closed the connection"):
                client._ask(paths, b"mount\n", 10)
        finally:
            dropper.join(timeout=10)


def test_a_socket_path_too_long_for_unix_sockets_is_unavailable(tmp_path: Path) -> None:
    deep = tmp_path / ("d" * 120)
    with pytest.raises(ServerUnavailableError, match=r"socket path .* is too long"):
        client.mount(deep, ["lowerdir=/l"], tmp_path, 5)
    assert not deep.exists()  # refused before anything was made
    with pytest.raises(ServerUnavailableError, match=r"connecting to .*: AF_UNIX path too long"):
        client._ask(ServerPaths(deep, "k"), b"mount\n", 1)


def test_a_server_that_cannot_start_says_why(tmp_path: Path) -> None:
    paths = ServerPaths(tmp_path, "1-2")  # namespaces this process is not in
    with pytest.raises(ServerUnavailableError) as caught:
        client.start_server(paths, idle=1)
    assert (
        str(caught.value) == "starting the fuse mount server: started in other namespaces than 1-2"
    )
    assert not paths.socket.exists() and not paths.lock.exists()


@pytest.fixture
def holding(tmp_path: Path) -> Iterator[tuple[Path, ServerPaths, threading.Event]]:
    """A run root whose server socket answers every connection with ``pid <a live process>``
    and holds it open until the event is set; the process is the test's to check."""
    paths = ServerPaths.under(tmp_path)
    paths.directory.mkdir(mode=0o700)
    release = threading.Event()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(paths.socket))
    listener.listen()

    def hold() -> None:
        with contextlib.suppress(OSError):
            conn, _ = listener.accept()
            with conn:
                conn.settimeout(10)
                conn.recv(4096)
                conn.sendall(f"pid {victim.pid}\n".encode())
                release.wait(30)

    victim = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    holder = threading.Thread(target=hold)
    holder.start()
    try:
        yield tmp_path, paths, release
        assert victim.wait(timeout=10) == -signal.SIGKILL
    finally:
        release.set()
        listener.close()
        holder.join(timeout=10)
        if victim.poll() is None:
            victim.kill()
        victim.wait(timeout=10)


def test_a_filesystem_process_that_never_reports_is_killed(
    holding: tuple[Path, ServerPaths, threading.Event],
) -> None:
    run_root, _, release = holding
    with pytest.raises(client.NotReadyError, match="did not report ready in 1 s") as caught:
        client.mount(run_root, ["lowerdir=/l"], run_root, 1.0)
    release.set()
    assert isinstance(caught.value.__cause__, client.MountTimeoutError)
    # The fixture checks the process it named was killed.


@pytest.fixture
def refusing(tmp_path: Path) -> Iterator[ServerPaths]:
    """A server in the test's own namespaces that holds the lock and refuses everyone."""
    paths = ServerPaths.under(tmp_path)
    paths.directory.mkdir(mode=0o700)
    lock = os.open(paths.lock, os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(lock, fcntl.LOCK_EX)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(os.fspath(paths.socket))
    listener.listen()
    stop = threading.Event()

    def refuse() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except OSError:
                return
            with conn, contextlib.suppress(OSError):
                conn.sendall(b"refused: this is not your server\n")

    refuser = threading.Thread(target=refuse)
    refuser.start()
    try:
        yield paths
    finally:
        stop.set()
        listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        refuser.join(timeout=10)
        os.close(lock)


def test_a_refusing_server_is_asked_three_times_and_its_refusal_returned(
    refusing: ServerPaths,
) -> None:
    # Each refusal starts a server, which finds this one holding the lock and listening and
    # leaves at once: the mount gives up after the third refusal, with nothing mounted.
    with pytest.raises(ServerUnavailableError, match=r"^refused: this is not your server$"):
        client.mount(refusing.directory.parent, ["lowerdir=/l"], refusing.directory, 5)
    assert refusing.log.exists()  # a server was started, and left (the lock is still ours)
