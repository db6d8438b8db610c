"""The service: a unix socket, one trio task per connection, one engine per request.

Engine work is synchronous (SQLite, mounts, forks); each request runs it in a worker thread
with an engine of its own (opening one costs about a millisecond), exactly as a CLI command
would, so the service and the CLI share the store and can be used side by side. What outlives
a request lives here: hijacked attach clients waiting for their container to start, running
attach and exec sessions, exec records, and the events this service has seen.

Idle exit: with ``--time N`` (default :data:`DEFAULT_IDLE_SECONDS`, as podman's) the service
leaves once N seconds have passed with no connection open and no session running; ``--time 0``
serves until stopped (SIGTERM/SIGINT). Running containers are not this process's: their
monitors keep them, and a new service finds them in the store.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import re
import signal
import socket
import stat
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import trio

from pydock import paths
from pydock.api.http import ClientGone, HttpConnection, HttpError, Request
from pydock.api.streams import Client, Session
from pydock.errors import (
    ImageConflictError,
    ImageUnknownError,
    InvalidReferenceError,
    PydockError,
    UsageError,
)
from pydock.settings import EngineConfig
from runtime import spawner as runtime_spawner

if TYPE_CHECKING:
    from pydock.engine import Engine

DEFAULT_IDLE_SECONDS = 5.0
API_VERSION = "1.41"
MIN_API_VERSION = (1, 41)
SOCKET_NAME = "docker.sock"
WORKERS = 16
LISTEN_FDS_START = 3
T = TypeVar("T")
Handler = Callable[["Service", HttpConnection, Request], Awaitable[None]]


def default_uri() -> str:
    """``unix:///run/pydock/docker.sock`` as root, ``$XDG_RUNTIME_DIR/pydock/...`` rootless."""
    if not paths.is_rootless():
        return f"unix://{paths.SYSTEM_RUN_ROOT / SOCKET_NAME}"
    runtime_dir = os.environ.get("XDG_RUNTIME_DIR") or f"/tmp/pydock-{os.geteuid()}"
    return f"unix://{Path(runtime_dir) / 'pydock' / SOCKET_NAME}"


def socket_path(uri: str) -> Path:
    """The path of a ``unix://`` URI; anything else (TCP) is refused."""
    if not uri.startswith("unix://"):
        raise UsageError(f"serving {uri}: only unix:// sockets are served (no TCP listener)")
    path = Path(uri.removeprefix("unix://"))
    if not path.is_absolute():
        raise UsageError(f"serving {uri}: the socket path must be absolute")
    return path


@dataclass
class ExecRecord:
    """An exec instance: what ``exec create`` asked for and how it went."""

    id: str
    container_id: str
    options: dict[str, object]
    running: bool = False
    exit_code: int | None = None
    pid: int = 0


@dataclass
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler


@dataclass
class Service:
    """What the service keeps between requests."""

    config: EngineConfig
    nursery: trio.Nursery
    routes: list[Route] = field(default_factory=list)
    waiting: dict[str, list[Client]] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)
    execs: dict[str, ExecRecord] = field(default_factory=dict)
    events: list[dict[str, object]] = field(default_factory=list)
    watchers: list[trio.MemorySendChannel[dict[str, object]]] = field(default_factory=list)
    exits: dict[str, int] = field(default_factory=dict)
    exit_events: dict[str, trio.Event] = field(default_factory=dict)
    change_events: dict[str, trio.Event] = field(default_factory=dict)
    refresh_locks: dict[str, trio.Lock] = field(default_factory=dict)
    busy: int = 0
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(WORKERS, thread_name_prefix="pydock-api")
    )
    engines: threading.local = field(default_factory=threading.local)
    idle_changed: trio.Event = field(default_factory=trio.Event)

    # -- engine work --------------------------------------------------------------------------

    async def call(
        self,
        fn: Callable[..., T],
        *args: object,
        storage: str | None = None,
        storage_options: dict[str, str] | None = None,
        cancellable: bool = False,
    ) -> T:
        """``fn(engine, *args)`` in a worker thread with an engine of its own.

        The threads live as long as the service: an exec's joiner dies with the thread that
        forked it (PR_SET_PDEATHSIG). Each keeps its engines open between requests (SQLite
        connections belong to one thread); opening one per request cost more than the work.
        """
        config = self.config
        if storage is not None or storage_options:
            options = dict(config.storage_options)
            options.update(storage_options or {})
            config = replace(config, storage=storage or config.storage, storage_options=options)
        engines = self.engines

        def work() -> T:
            return fn(_engine_of_this_thread(engines, config), *args)

        future = self.pool.submit(work)
        done = trio.Event()
        token = trio.lowlevel.current_trio_token()
        future.add_done_callback(lambda _: token.run_sync_soon(done.set))
        if cancellable:
            await done.wait()
        else:
            with trio.CancelScope(shield=True):
                await done.wait()
        return future.result()

    def exited(self, container_id: str) -> trio.Event:
        """Set when the monitor of a container this service started has ended."""
        return self.exit_events.setdefault(container_id, trio.Event())

    def forget_old_runs(self, keep: int = 1000) -> None:
        """Drop the oldest exit records past ``keep`` (a long-lived service starts many); a
        wait whose change event goes polls instead."""
        for table in (self.exits, self.exit_events, self.change_events):
            for stale in list(table)[:-keep]:
                del table[stale]
        for stale in list(self.refresh_locks)[:-keep]:
            if not self.refresh_locks[stale].locked():
                del self.refresh_locks[stale]

    def changed(self, container_id: str) -> trio.Event:
        """Set at the next change this service makes to the container: a start, an exit it
        recorded, a removal. Take it before reading the state, so no change is missed."""
        return self.change_events.setdefault(container_id, trio.Event())

    def refresh_lock(self, container_id: str) -> trio.Lock:
        """Held while the container's state is brought up to date (its exit recorded)."""
        return self.refresh_locks.setdefault(container_id, trio.Lock())

    def notify(self, container_id: str) -> None:
        """Wake whoever waits on :meth:`changed` for the container."""
        event = self.change_events.pop(container_id, None)
        if event is not None:
            event.set()

    # -- events -------------------------------------------------------------------------------

    def event(self, kind: str, action: str, actor_id: str, **attributes: str) -> None:
        """Record an event and hand it to every ``/events`` watcher."""
        now = time.time_ns()
        document: dict[str, object] = {
            "Type": kind,
            "Action": action,
            "Actor": {"ID": actor_id, "Attributes": attributes},
            "scope": "local",
            "time": now // 1_000_000_000,
            "timeNano": now,
        }
        if kind == "container":
            document.update(status=action, id=actor_id, **{"from": attributes.get("image", "")})
        self.events.append(document)
        del self.events[:-1000]
        for watcher in list(self.watchers):
            with contextlib.suppress(trio.WouldBlock, trio.BrokenResourceError):
                watcher.send_nowait(document)

    # -- routing ------------------------------------------------------------------------------

    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register a handler for ``METHOD /path`` (``pattern`` is a regular expression)."""

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, re.compile(pattern), handler))
            return handler

        return register

    def find(self, request: Request) -> Handler:
        """The handler of ``request``; 404 for unknown paths, 405 for a wrong method."""
        allowed = False
        for route in self.routes:
            match = route.pattern.fullmatch(request.path)
            if match is None:
                continue
            allowed = True
            if route.method == request.method or (
                request.method == "HEAD" and route.method == "GET"
            ):
                request.params = {k: v for k, v in match.groupdict().items() if v is not None}
                return route.handler
        if allowed:
            raise HttpError(405, f"method {request.method} not allowed on {request.path}")
        raise HttpError(404, "page not found")

    # -- connections --------------------------------------------------------------------------

    async def handle(self, stream: trio.SocketStream) -> None:
        """Serve requests on one connection until the client is done."""
        self._enter()
        connection = HttpConnection(stream)
        try:
            async with stream:
                while True:
                    try:
                        if not await self._one(connection):
                            return
                    except ClientGone:
                        return
        finally:
            self._leave()

    async def _one(self, connection: HttpConnection) -> bool:
        try:
            request = await connection.read_request()
        except HttpError as exc:
            with contextlib.suppress(Exception):
                await connection.error(exc.status, exc.message)
            return False
        if request is None:
            return False
        try:
            _check_version(request)
            handler = self.find(request)
            await handler(self, connection, request)
        except ClientGone:
            raise
        except Exception as exc:
            status, message = describe(exc)
            if connection.responded:
                return False  # mid-stream: nothing left to say but to close
            if status == 413:
                # Not read: the body is refused, and the connection with it.
                await connection.error(status, message)
                return False
            with contextlib.suppress(HttpError):
                await connection.drain()
            await connection.error(status, message)
        if not connection.hijacked:
            await connection.drain()  # a body the handler did not need
        return connection.next_request_allowed()

    def _enter(self) -> None:
        self.busy += 1
        self.idle_changed.set()

    def _leave(self) -> None:
        self.busy -= 1
        self.idle_changed.set()

    def keep_busy(self) -> contextlib.AbstractContextManager[None]:
        """Hold off the idle exit while a session runs."""
        service = self

        class _Busy(contextlib.AbstractContextManager[None]):
            def __enter__(self) -> None:
                service._enter()

            def __exit__(self, *exc: object) -> None:
                service._leave()

        return _Busy()

    async def wait_idle(self, seconds: float) -> None:
        """Return once nothing has happened for ``seconds`` (never for 0)."""
        if seconds <= 0:
            await trio.sleep_forever()
        while True:
            self.idle_changed = trio.Event()
            if self.busy:
                await self.idle_changed.wait()
                continue
            with trio.move_on_after(seconds) as waited:
                await self.idle_changed.wait()
            if waited.cancelled_caught and not self.busy:
                return


def _engine_of_this_thread(engines: threading.local, config: EngineConfig) -> Engine:
    """This worker thread's engine for ``config`` (opened on first use, then kept)."""
    from pydock.engine import Engine

    key = (config.storage, tuple(sorted(config.storage_options.items())))
    opened: dict[object, Engine] = engines.__dict__.setdefault("opened", {})
    if key not in opened:
        opened[key] = Engine(config)
    return opened[key]


def _check_version(request: Request) -> None:
    if request.version is not None and request.version < MIN_API_VERSION:
        version = ".".join(map(str, request.version))
        raise HttpError(
            400,
            f"client version {version} is too old. Minimum supported API version is "
            f"{API_VERSION}, please upgrade your client to a newer version",
        )


def describe(exc: BaseException) -> tuple[int, str]:
    """The HTTP status and message of a failure, as Docker's daemon would send them."""
    from pydock.containers.errors import (
        ContainerConfigError,
        ContainerConflictError,
        ContainerPathError,
        ContainerStartError,
        ContainerUnknownError,
    )
    from pydock.network.errors import (
        NetworkConfigError,
        NetworkConflictError,
        NetworkUnknownError,
    )

    if isinstance(exc, HttpError):
        return exc.status, exc.message
    unknown = (ContainerUnknownError, ContainerPathError, ImageUnknownError, NetworkUnknownError)
    if isinstance(exc, unknown):
        return 404, str(exc)
    if isinstance(exc, (ContainerConflictError, ImageConflictError, NetworkConflictError)):
        return 409, str(exc)
    invalid = (ContainerConfigError, NetworkConfigError, UsageError, InvalidReferenceError)
    if isinstance(exc, invalid):
        return 400, str(exc)
    if isinstance(exc, ContainerStartError):
        message = str(exc)
        known = ("no such file or directory", "executable file not found")
        if exc.exit_code == 127 and not any(words in message for words in known):
            message += ": executable file not found in $PATH"
        elif exc.exit_code == 126 and "permission denied" not in message.lower():
            message += ": permission denied"
        return (400 if exc.exit_code in (126, 127) else 500), message
    if isinstance(exc, PydockError):
        return 500, str(exc)
    if isinstance(exc, OSError):
        return 500, f"{exc.strerror or exc}"
    return 500, f"internal error: {type(exc).__name__}: {exc}"


# -- the socket --------------------------------------------------------------------------------


def listen_fd() -> socket.socket | None:
    """The socket systemd passed (``LISTEN_FDS``), if this process is the one it was for."""
    if os.environ.get("LISTEN_PID") != str(os.getpid()):
        return None
    count = int(os.environ.get("LISTEN_FDS", "0") or 0)
    if count < 1:
        return None
    for name in ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"):
        os.environ.pop(name, None)
    sock = socket.socket(fileno=LISTEN_FDS_START)
    if sock.family != socket.AF_UNIX:
        sock.detach()
        raise UsageError("serving the passed socket: only unix sockets are served")
    os.set_inheritable(sock.fileno(), False)
    return sock


def bind_socket(path: Path) -> socket.socket:
    """A listening unix socket at ``path``: 0660, the caller's (root:root as root)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o711)
    if path.exists() or path.is_symlink():
        if not stat.S_ISSOCK(path.lstat().st_mode):
            raise PydockError(f"serving {path}: exists and is not a socket")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(path))
        except OSError as exc:
            if exc.errno not in (errno.ECONNREFUSED, errno.ENOENT):
                raise
            path.unlink(missing_ok=True)  # left by a service that is gone
        else:
            raise PydockError(f"serving {path}: another service is listening there")
        finally:
            probe.close()
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    old = os.umask(0o177)
    try:
        sock.bind(str(path))
    finally:
        os.umask(old)
    os.chmod(path, 0o660)
    sock.listen(128)
    return sock


async def serve(
    config: EngineConfig,
    uri: str | None,
    idle_seconds: float,
    *,
    ready: Callable[[str], None] | None = None,
) -> None:
    """Serve the Docker Engine API until idle for ``idle_seconds`` (0: until stopped)."""
    from pydock.api import routes

    passed = listen_fd()
    path: Path | None = None
    if passed is not None:
        sock = passed
        where = f"fd {LISTEN_FDS_START}"
    else:
        path = socket_path(uri or default_uri())
        sock = bind_socket(path)
        where = f"unix://{path}"
    listener = trio.SocketListener(trio.socket.from_stdlib_socket(sock))
    spawner = _start_spawner()
    try:
        async with trio.open_nursery() as nursery:
            service = Service(config, nursery)
            routes.register(service)
            nursery.start_soon(_stop_on_signals, nursery.cancel_scope)
            await nursery.start(trio.serve_listeners, service.handle, [listener])
            if ready is not None:
                ready(where)
            try:
                await service.wait_idle(idle_seconds)
            finally:
                nursery.cancel_scope.cancel()
                service.pool.shutdown(wait=False, cancel_futures=True)
    finally:
        if spawner is not None:
            runtime_spawner.install(None)
            spawner.close()
        if path is not None:
            with contextlib.suppress(OSError):
                path.unlink()


def _start_spawner() -> runtime_spawner.Spawner | None:
    """The process that forks the monitors of the containers this service starts (forking
    the service itself costs more, and each monitor would keep a copy of its memory); without
    one, the service forks them itself."""
    try:
        spawner = runtime_spawner.Spawner()
    except OSError as exc:
        print(
            f"pydock: WARNING: no monitor spawner ({exc}): forking monitors here", file=sys.stderr
        )
        return None
    runtime_spawner.install(spawner)
    return spawner


async def _stop_on_signals(scope: trio.CancelScope) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for _ in signals:
            scope.cancel()
            return


def json_dumps(document: object) -> bytes:
    """Compact JSON with a newline, as Docker's streams send it."""
    return json.dumps(document).encode() + b"\n"
