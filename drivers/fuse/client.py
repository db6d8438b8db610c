"""Asking the resident mount server for a mount: where it listens, starting it, the protocol.

A FUSE mount served by a new interpreter pays for importing trio and pyfuse3 (about 200 ms)
before it can answer. The mount server (``drivers.fuse.server``) has imported them once and
forks one filesystem process per mount. There is one server per user, run root and namespace:

    <run root>/fuse/                      0700, owned by the user
        mount-<userns>-<mntns>.sock       the server's socket
        mount-<userns>-<mntns>.lock       flock held by the live server for its whole life
        mount-<userns>-<mntns>.log        the server's stderr (tracebacks of failed mounts)

The namespaces are part of the name because the mount is made in the server's namespaces: a
client in another mount or user namespace gets its own server. The first mount starts the
server; it leaves after some idle time with no mounts (``PYDOCK_FUSE_SERVER_IDLE`` seconds,
default 300). Nothing here imports trio or pyfuse3.

Protocol, one connection per mount: the client sends one JSON line ``{"options": [...],
"mountpoint": ..., "cwd": ...}``; the filesystem process answers ``pid N`` as soon as it
exists, then ``ready`` once the mount answers requests, or one line saying why it failed (and
nothing stays mounted). A line other than ``pid N`` first is the server's refusal.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import socket
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

READY = "ready"
PROTOCOL_LIMIT = 1 << 20  # a request line: 500 lower dirs of long paths fit easily
IDLE_ENV = "PYDOCK_FUSE_SERVER_IDLE"
DEFAULT_IDLE = 300.0
START_TIMEOUT = 30.0
MARKER = "pydock-fuse-server"  # in the command line of the server and of its mount processes
SUN_PATH_MAX = 107
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the tree this code runs from
# The server runs the same code as its client, also from a source tree that is not installed.
BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); "
    "from drivers.fuse.server import main; sys.exit(main(sys.argv[2:]))"
)


class ServerUnavailableError(OSError):
    """No mount server could be reached or started; nothing was mounted."""


class NotReadyError(OSError):
    """The filesystem process did not report in time and was killed; a mount may be left."""


def default_run_root() -> Path:
    """pydock's run root (DESIGN.md §3) when the application did not pass one.

    ``PYDOCK_RUN_ROOT``; else ``/run/pydock`` as root, ``$XDG_RUNTIME_DIR/pydock`` rootless;
    else a per-user directory in /tmp, as podman does without a runtime dir.
    """
    explicit = os.environ.get("PYDOCK_RUN_ROOT")
    if explicit:
        return Path(explicit)
    if os.geteuid() == 0:
        return Path("/run/pydock")
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime and os.path.isdir(runtime):
        return Path(runtime) / "pydock"
    return Path(f"/tmp/pydock-run-{os.geteuid()}")


def namespace_key(pid: int | str = "self") -> str:
    """``<userns inode>-<mntns inode>`` of a process: which server may mount for it."""
    return "-".join(str(os.stat(f"/proc/{pid}/ns/{ns}").st_ino) for ns in ("user", "mnt"))


@dataclass(frozen=True)
class ServerPaths:
    """Where the server of one user, run root and namespace lives."""

    directory: Path
    key: str

    @classmethod
    def under(cls, run_root: Path) -> ServerPaths:
        return cls(Path(run_root) / "fuse", namespace_key())

    @property
    def socket(self) -> Path:
        return self.directory / f"mount-{self.key}.sock"

    @property
    def lock(self) -> Path:
        return self.directory / f"mount-{self.key}.lock"

    @property
    def log(self) -> Path:
        return self.directory / f"mount-{self.key}.log"


def private_directory(path: Path) -> None:
    """Make ``path`` (and missing parents) and check that only this user can enter it."""
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        path.mkdir(mode=0o700, exist_ok=True)
        st = os.lstat(path)
    except OSError as exc:
        raise ServerUnavailableError(f"making the mount server dir {path}: {exc.strerror}") from exc
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid():
        raise ServerUnavailableError(f"{path} is not a directory of uid {os.geteuid()}")
    if st.st_mode & 0o077:
        os.chmod(path, 0o700)


def _connect(path: Path, timeout: float) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    sock.settimeout(timeout)
    try:
        sock.connect(os.fspath(path))
    except BaseException:
        sock.close()
        raise
    return sock


def start_server(paths: ServerPaths, *, idle: float | None = None) -> None:
    """Start a server for ``paths`` and wait until it listens (or another one does)."""
    if idle is None:
        try:
            idle = float(os.environ.get(IDLE_ENV, DEFAULT_IDLE))
        except ValueError:
            idle = DEFAULT_IDLE
    read_fd, write_fd = os.pipe2(os.O_CLOEXEC)
    argv = [sys.executable, "-c", BOOT, os.fspath(PACKAGE_ROOT), MARKER,
            "--dir", os.fspath(paths.directory), "--key", paths.key,
            "--idle", f"{idle:g}", "--report-fd", str(write_fd)]  # fmt: skip
    try:
        try:
            starter = subprocess.Popen(
                argv,
                pass_fds=(write_fd,),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        finally:
            os.close(write_fd)
        report = _read_report(read_fd, START_TIMEOUT)
    finally:
        os.close(read_fd)
    # The process we started forks the server and exits once it listens: reap it here.
    try:
        status = starter.wait(timeout=5)
    except subprocess.TimeoutExpired:
        starter.kill()
        status = starter.wait()
    if report != READY:
        reason = report or f"it exited with status {status} before listening"
        raise ServerUnavailableError(f"starting the fuse mount server: {reason}")


def _read_report(fd: int, timeout: float) -> str:
    """Everything written to ``fd`` until EOF or ``timeout``, as one stripped line."""
    deadline = time.monotonic() + timeout
    data = b""
    while len(data) < PROTOCOL_LIMIT:
        left = deadline - time.monotonic()
        if left <= 0:
            return f"no answer within {timeout:g}s"
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            continue
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        data += chunk
    return data.decode(errors="replace").strip()


class _Lines:
    """Lines read from a socket, each within the time left before one deadline."""

    def __init__(self, sock: socket.socket, deadline: float) -> None:
        self.sock, self.deadline, self.buffer = sock, deadline, b""

    def next(self) -> str | None:
        """The next line; ``None`` at EOF; ``TimeoutError`` past the deadline."""
        while b"\n" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError
            self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(4096)
            except ConnectionResetError:
                chunk = b""
            if not chunk:
                return None
            self.buffer += chunk
        line, _, self.buffer = self.buffer.partition(b"\n")
        return line.decode(errors="replace")


def _ask(paths: ServerPaths, request: bytes, timeout: float) -> tuple[int, str | None]:
    """Send one mount request; (pid of the filesystem process, its verdict or ``None``).

    ``ServerUnavailableError`` when no filesystem process was made (no server, a refusal, a
    server that went away before forking); ``TimeoutError`` carries the pid once there is one.
    """
    try:
        sock = _connect(paths.socket, 5.0)
    except (FileNotFoundError, ConnectionRefusedError) as exc:
        raise ServerUnavailableError(f"no mount server at {paths.socket}") from exc
    except OSError as exc:
        raise ServerUnavailableError(f"connecting to {paths.socket}: {exc}") from exc
    with sock:
        try:
            sock.sendall(request)
            lines = _Lines(sock, time.monotonic() + timeout)
            first = lines.next()
        except (TimeoutError, OSError) as exc:
            raise ServerUnavailableError(f"mount server at {paths.socket}: {exc}") from exc
        if first is None or not first.startswith("pid "):
            raise ServerUnavailableError(first or "the mount server closed the connection")
        pid = int(first.removeprefix("pid "))
        try:
            return pid, lines.next()
        except TimeoutError:
            raise MountTimeoutError(pid) from None


class MountTimeoutError(TimeoutError):
    """The filesystem process ``pid`` did not report in time."""

    def __init__(self, pid: int) -> None:
        super().__init__(f"filesystem process {pid} did not report ready")
        self.pid = pid


def mount(run_root: Path, options: list[str], mountpoint: Path, timeout: float) -> int:
    """Mount through the server (started if needed); the filesystem process's pid.

    ``OSError`` with the filesystem's one-line reason when the mount failed (nothing is left
    mounted), ``ServerUnavailableError`` when no server could do it (nothing was tried).
    """
    paths = ServerPaths.under(run_root)
    if len(os.fspath(paths.socket)) > SUN_PATH_MAX:
        raise ServerUnavailableError(f"socket path {paths.socket} is too long")
    request = json.dumps(
        {"options": options, "mountpoint": os.fspath(mountpoint), "cwd": os.getcwd()}
    ).encode()
    private_directory(paths.directory)
    for attempt in range(3):
        try:
            pid, verdict = _ask(paths, request + b"\n", timeout)
            break
        except ServerUnavailableError:
            if attempt == 2:
                raise
            # None listens (first use, killed, or it just left idle): start one and ask again.
            start_server(paths)
        except MountTimeoutError as exc:
            with contextlib.suppress(ProcessLookupError):
                os.kill(exc.pid, signal.SIGKILL)
            reason = f"the filesystem process did not report ready in {timeout:.0f} s"
            raise NotReadyError(reason) from exc
    if verdict == READY:
        return pid
    raise OSError(verdict or "the filesystem process exited before the mount was ready")


def _cmdlines() -> Iterator[tuple[int, list[bytes]]]:
    """``(pid, argv)`` of every process whose command line can be read."""
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as handle:
                yield int(entry), handle.read().split(b"\0")
        except OSError:
            continue


def mount_pids(mountpoint: Path) -> list[int]:
    """Filesystem processes forked by a mount server that serve ``mountpoint``.

    A mount process keeps the mountpoint (the directory under the mount) as its working
    directory, so it can be found from /proc without asking the mount itself.
    """
    wanted = os.path.realpath(mountpoint)
    marker = MARKER.encode()
    found = []
    for pid, argv in _cmdlines():
        if marker not in argv:
            continue
        with contextlib.suppress(OSError):
            if os.readlink(f"/proc/{pid}/cwd") == wanted:
                found.append(pid)
    return found


def standalone_pids(mountpoint: Path) -> list[int]:
    """Processes of the standalone command (``pydock-fuse-overlay``, ``-m drivers.fuse.cli``)
    serving ``mountpoint``, read from /proc, never from the mount."""
    needle = os.fsencode(mountpoint)
    return [
        pid
        for pid, argv in _cmdlines()
        if needle in argv and any(b"drivers.fuse.cli" in a or b"fuse-overlay" in a for a in argv)
    ]
