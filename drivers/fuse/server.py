"""The resident mount server: trio and pyfuse3 imported once, one forked process per mount.

Started by the first fuse mount (``client.start_server``), never by hand. It runs
single-threaded: a plain selector loop accepts connections and forks there, and only the
forked child starts trio and pyfuse3's session for its one mount (pyfuse3 holds one session
per process), exactly as ``pydock-fuse-overlay`` does after parsing its command line.

The child leaves the server's session (``setsid``) and closes the listening socket, the
lock and everything else the server holds, so a mount outlives a killed server and a new
server can start beside it. The server serves only its own uid (``SO_PEERCRED``) in its own
user and mount namespaces, reaps its children through pidfds, and leaves once it has had no
mounts and no requests for ``--idle`` seconds.

A live server holds an exclusive flock on its lock file for its whole life, so a socket file
whose lock is free is stale and is replaced; a second server started at the same time waits
for the lock or, finding the first one listening, reports ready and leaves.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import pyfuse3  # noqa: F401  (imported once here, so a forked mount does not pay for it)
import trio

from drivers.fuse.cli import serve_and_report
from drivers.fuse.client import PROTOCOL_LIMIT, READY, ServerPaths, namespace_key
from drivers.fuse.options import parse
from graphdriver import GraphDriverError

REQUEST_TIMEOUT = 5.0
LOCK_TIMEOUT = 10.0
BACKLOG = 64


def _peer(conn: socket.socket) -> tuple[int, int]:
    """(pid, uid) of the process at the other end."""
    creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    pid, uid, _gid = struct.unpack("3i", creds)
    return pid, uid


def _refusal(conn: socket.socket, key: str) -> str | None:
    """Why this peer may not use the server, or ``None``."""
    pid, uid = _peer(conn)
    if uid != os.geteuid():
        return f"refused: uid {uid} is not this server's uid {os.geteuid()}"
    try:
        theirs = namespace_key(pid)
    except OSError:
        return f"refused: cannot read the namespaces of pid {pid}"
    if theirs != key:
        return f"refused: pid {pid} is in other namespaces ({theirs}, not {key})"
    return None


def _read_request(fd: int) -> dict[str, object]:
    """The client's one JSON line (bounded in size and time)."""
    with socket.socket(fileno=fd) as conn:
        conn.settimeout(REQUEST_TIMEOUT)
        data = b""
        try:
            while not data.endswith(b"\n"):
                chunk = conn.recv(65536)
                if not chunk:
                    raise ValueError("the request ended early")
                data += chunk
                if len(data) > PROTOCOL_LIMIT:
                    raise ValueError("the request is too long")
        finally:
            conn.settimeout(None)
            conn.detach()
    request = json.loads(data)
    if not isinstance(request, dict):
        raise ValueError("the request is not an object")
    return request


async def _mount_process(control: socket.socket | None, conn_fd: int | None) -> int:
    """The filesystem process of one mount: read the request, mount, serve until unmounted.

    A spare (``control`` given) is forked ahead of its mount: it starts trio and the worker
    thread ``serve`` will need, then waits for the server to hand it a client's connection.
    """
    if control is not None:
        await trio.to_thread.run_sync(int)  # trio keeps the thread for the readiness check
        await trio.lowlevel.wait_readable(control)
        _, fds, _, _ = socket.recv_fds(control, 1, 1)
        control.close()
        if not fds:
            return 0  # the server left before it needed us
        conn_fd = fds[0]
    assert conn_fd is not None
    os.write(conn_fd, f"pid {os.getpid()}\n".encode())
    try:
        request = _read_request(conn_fd)
        options, cwd, target = request.get("options"), request.get("cwd"), request.get("mountpoint")
        if not isinstance(options, list) or not isinstance(cwd, str) or not isinstance(target, str):
            raise ValueError("malformed mount request")
        spec = parse([str(o) for o in options], cwd=cwd)
        mountpoint = os.path.abspath(os.path.join(cwd, target))
    except (GraphDriverError, OSError, ValueError) as exc:
        os.write(conn_fd, f"{exc}\n".encode())
        return 1
    # The covered directory as working directory names this process's mount in /proc
    # (client.mount_pids) without pinning the mount itself. ``serve`` checks the mountpoint
    # and says what is wrong with it if this fails.
    with contextlib.suppress(OSError):
        os.chdir(mountpoint)
    await serve_and_report(spec, mountpoint, conn_fd)
    return 0


def _take_lock(paths: ServerPaths) -> int | None:
    """The lock fd once held; ``None`` if another server is up and listening."""
    fd = os.open(paths.lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            pass
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        try:
            probe.connect(os.fspath(paths.socket))
            os.close(fd)
            return None  # its owner listens: nothing for us to do
        except OSError:
            pass
        finally:
            probe.close()
        if time.monotonic() > deadline:
            os.close(fd)
            raise TimeoutError(f"lock {paths.lock} still held after {LOCK_TIMEOUT:g}s")
        time.sleep(0.01)  # another server is starting or leaving


def _listen(paths: ServerPaths) -> socket.socket:
    """Bind the socket; the caller holds the lock, so a file already there is stale."""
    with contextlib.suppress(FileNotFoundError):
        os.unlink(paths.socket)
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        listener.bind(os.fspath(paths.socket))
    finally:
        os.umask(old)
    listener.listen(BACKLOG)
    return listener


class Server:
    """The accept-and-fork loop of one server, with one spare filesystem process forked ahead."""

    SPARE_DELAY = 0.0  # the next spare is forked as soon as one is handed over

    def __init__(self, paths: ServerPaths, listener: socket.socket, lock_fd: int, idle: float):
        self.paths, self.listener, self.lock_fd, self.idle = paths, listener, lock_fd, idle
        self.socket_ino = os.stat(paths.socket).st_ino  # the file this server bound
        self.selector = selectors.DefaultSelector()
        self.selector.register(listener, selectors.EVENT_READ)
        self.children: dict[int, int] = {}  # pidfd -> pid of every process forked here
        self.spare: tuple[int, socket.socket] | None = None  # (pid, the end to hand over on)
        self.spare_due: float | None = time.monotonic()

    def run(self) -> None:
        """Serve until idle: no mounts and no requests for ``idle`` seconds."""
        idle_since = time.monotonic()
        while True:
            now = time.monotonic()
            timeout = None
            if not self.mounts():
                timeout = idle_since + self.idle - now
                if timeout <= 0:
                    return
            if self.spare is None and self.spare_due is not None:
                wait = max(0.0, self.spare_due - now)
                timeout = wait if timeout is None else min(timeout, wait)
            events = self.selector.select(timeout)
            for key, _ in events:
                if key.fileobj is self.listener:
                    self._accept()
                else:
                    self._reap(key.fd)
            if events or self.mounts():
                idle_since = time.monotonic()
            due = self.spare_due
            if self.spare is None and due is not None and time.monotonic() >= due:
                self._fork_spare()

    def mounts(self) -> int:
        """How many filesystem processes are mounting or serving (the spare is none)."""
        return len(self.children) - (self.spare is not None)

    def _fork(self, body: Callable[[], int]) -> int:
        """Fork a filesystem process that runs ``body``; its pid. The child never returns."""
        pid = os.fork()
        if pid == 0:
            status = 1
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # the server's stop is not ours
                self._close_in_child()
                os.setsid()  # a signal to the server's group or session does not reach it
                status = body()
            except BaseException:  # never back into the server's loop
                traceback.print_exc()
            finally:
                os._exit(status)
        pidfd = os.pidfd_open(pid)  # close-on-exec already
        self.children[pidfd] = pid
        self.selector.register(pidfd, selectors.EVENT_READ)
        return pid

    def _close_in_child(self) -> None:
        """What a filesystem process must not keep: the socket, the lock, the loop's fds."""
        self.selector.close()
        self.listener.close()
        if self.spare is not None:
            self.spare[1].close()
        for fd in (self.lock_fd, *self.children):
            os.close(fd)

    def _fork_spare(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)

        def spare() -> int:
            ours.close()  # else the spare would not see the server leave
            return trio.run(_mount_process, theirs, None)

        with theirs:
            pid = self._fork(spare)
        self.spare = (pid, ours)
        self.spare_due = None

    def _hand_over(self, conn: socket.socket) -> None:
        """Give a checked connection to the spare, or to a process forked for it now."""
        if self.spare is not None:
            control = self.spare[1]
            self.spare = None
            try:
                socket.send_fds(control, [b"m"], [conn.fileno()])
                return
            except OSError:
                pass  # the spare died: its pidfd reaps it; fork one for this connection
            finally:
                control.close()
                self.spare_due = time.monotonic() + self.SPARE_DELAY
        fd = conn.fileno()
        self._fork(lambda: trio.run(_mount_process, None, fd))
        self.spare_due = time.monotonic() + self.SPARE_DELAY

    def _accept(self) -> None:
        try:
            conn, _ = self.listener.accept()
        except OSError:
            return
        with conn:
            try:
                refusal = _refusal(conn, self.paths.key)
                if refusal is not None:
                    conn.sendall(f"{refusal}\n".encode())
                    return
                self._hand_over(conn)
            except OSError:
                return

    def _reap(self, pidfd: int) -> None:
        self.selector.unregister(pidfd)
        pid = self.children.pop(pidfd)
        os.close(pidfd)
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, 0)
        if self.spare is not None and self.spare[0] == pid:
            self.spare[1].close()
            self.spare = None  # it died waiting (killed?): make another one later
            self.spare_due = time.monotonic() + 1.0

    def close(self) -> None:
        """Leave: the socket goes first, the lock last, so no client meets a half-gone server.

        The spare sees its control socket close and exits; mounts keep serving.
        """
        with contextlib.suppress(OSError):
            if os.stat(self.paths.socket).st_ino == self.socket_ino:
                os.unlink(self.paths.socket)
        if self.spare is not None:
            self.spare[1].close()
        self.selector.close()
        self.listener.close()


def _stop(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pydock-fuse-server")
    parser.add_argument("--dir", required=True, type=Path)
    parser.add_argument("--key", required=True)
    parser.add_argument("--idle", type=float, default=300.0)
    parser.add_argument("--report-fd", type=int, required=True)
    return parser


def main(argv: list[str]) -> int:
    """Start, report ``ready`` on the report fd, go to the background and serve."""
    args = _parser().parse_args([a for a in argv if a != "pydock-fuse-server"])
    report = args.report_fd
    paths = ServerPaths(args.dir, args.key)
    try:
        if namespace_key() != paths.key:
            raise OSError(f"started in other namespaces than {paths.key}")
        log = os.open(paths.log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        lock_fd = _take_lock(paths)
        if lock_fd is None:
            os.write(report, f"{READY}\n".encode())
            return 0
        listener = _listen(paths)
    except Exception as exc:
        os.write(report, f"{exc}\n".encode())
        return 1
    if os.fork() != 0:
        os.write(report, f"{READY}\n".encode())  # the socket listens already: connects queue
        return 0
    os.close(report)
    os.setsid()
    os.ftruncate(log, 0)
    null = os.open(os.devnull, os.O_RDWR)
    for fd, source in ((0, null), (1, null), (2, log)):
        os.dup2(source, fd)
    os.close(null)
    os.close(log)
    server = Server(paths, listener, lock_fd, args.idle)
    # SIGTERM leaves as idling out does: socket first, lock last (mounts keep serving).
    signal.signal(signal.SIGTERM, _stop)
    try:
        server.run()
    finally:
        server.close()
        os.close(lock_fd)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
