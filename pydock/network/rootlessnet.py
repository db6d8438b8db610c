"""Rootless bridge networks: a namespace of pydock's own, pasta for the way out, port forwarders.

    host network namespace (the user's)           pause process's network namespace
    127.0.0.1:8080  <- pydock-forward  ----------> 172.17.0.2:80   (connects from in here)
    (the user's sockets)  <- pasta -------- tap0 (host's address) <- masquerade <- pydock0
                                                   pydock0 --- vethXXXX === eth0 (container)

An unprivileged user may not add interfaces to the host's network namespace, so, as podman
does, the bridges and the host ends of the veths live in a network namespace owned by pydock's
user namespace: the one the pause process (``pydock.rootless``) made for itself and holds.
Netlink and ``nft`` work there as they do for root on the host.

The way out is pasta (Debian ``passt``): it gives that namespace a tap interface and carries
its traffic through ordinary sockets of the user. It runs while some container is on a
network and is stopped when the last one leaves. This pasta cannot add forwarded ports once
it runs, so published ports are pydock's own: a ``pydock-forward`` process per container
holds the host ports, bound in the host's namespace before it moves into the pause process's
namespace, from where it connects to the container's address (as podman's rootlessport does).
It leaves with its container.

State, in ``<run root>/rootless/``: ``pasta.pid`` (pasta's pid and the pause pid it serves),
``pasta.log``, ``ports/<container id>.pid``, and ``netns``, onto which the namespace is bound
while pasta runs (in pydock's mount namespace only): pasta drops capabilities before it opens
the namespace, and may then no longer open ``/proc/<pause>/ns/net`` of a process that keeps
them all.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import runtime.linux
from pydock import rootless
from pydock.network.errors import NetworkError
from pydock.paths import is_rootless
from pydock.store.networks import PortBinding

PASTA = "pasta"
TAP = "tap0"
TUN_DEVICE = "/dev/net/tun"
FORWARD_MARK = "pydock-forward"
# Bounded waits for a helper to get ready.
READY_TIMEOUT = 10.0


def holder() -> int | None:
    """The pid of the process whose network namespace holds the bridges: ``None`` as root
    (the host's own namespace), the pause process when rootless."""
    if not is_rootless():
        return None
    current = rootless.session()
    if current is None or not Path(f"/proc/{current.pause}").exists():
        raise NetworkError(
            "rootless networking: pydock's pause process is not running (user namespaces may"
            " be unavailable here)"
        )
    try:
        theirs = os.stat(f"/proc/{current.pause}/ns/net").st_ino
        mine = os.stat("/proc/self/ns/net").st_ino
    except OSError as exc:
        raise NetworkError(f"rootless networking: {exc.filename}: {exc.strerror}") from exc
    if theirs == mine:
        raise NetworkError(
            "rootless networking: pydock's pause process has no network namespace of its own"
            " (it may predate this version: stop the containers and let it leave)"
        )
    return current.pause


def check() -> None:
    """Raise ``NetworkError`` when rootless networks cannot work here, saying why."""
    holder()
    if shutil.which(PASTA) is None:
        raise NetworkError("rootless networking: pasta not found (install the passt package)")


def namespace_path(pid: int) -> str:
    return f"/proc/{pid}/ns/net"


def entering(pid: int | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` that moves a child into the network namespace of ``pid`` (or ``None``)."""
    if pid is None:
        return None
    path = namespace_path(pid)

    def enter() -> None:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            runtime.linux.setns(fd, runtime.linux.CLONE_NEWNET)
        finally:
            os.close(fd)

    return enter


def _state() -> Path:
    current = rootless.session()
    if current is None:
        raise NetworkError("rootless networking: pydock's pause process is not running")
    return current.state


def _is_ours(pid: int, word: str) -> bool:
    """Whether ``pid`` runs and is this user's process with ``word`` on its command line."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            words = file.read().split(b"\0")
        owner = os.stat(f"/proc/{pid}").st_uid
    except OSError:
        return False
    return owner == os.getuid() and any(word.encode() in w for w in words)


def _stop(pid: int, word: str) -> None:
    """Stop this user's process ``pid`` (if it is still the one with ``word``) and wait for it
    to go (bounded)."""
    if not _is_ours(pid, word):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + READY_TIMEOUT
    while _is_ours(pid, word) and time.monotonic() < deadline:
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return
        time.sleep(0.02)
    with contextlib.suppress(ProcessLookupError):
        if _is_ours(pid, word):
            os.kill(pid, signal.SIGKILL)


# -- pasta --------------------------------------------------------------------------------------


def _pasta_record(state: Path) -> tuple[int, int] | None:
    try:
        pasta, pause = (int(word) for word in (state / "pasta.pid").read_text().split())
    except (OSError, ValueError):
        return None
    return pasta, pause


def ensure_pasta(pause: int, has_tap: Callable[[], bool]) -> None:
    """Start pasta for the pause process's namespace unless it runs already.

    ``has_tap`` says whether pasta's interface is up there: pasta is ready once it is.
    """
    state = _state()
    record = _pasta_record(state)
    if record is not None:
        if record[1] == pause and _is_ours(record[0], PASTA):
            return
        _stop(record[0], PASTA)  # serves a pause process that is gone
    program = shutil.which(PASTA)
    if program is None:
        raise NetworkError("rootless networking: pasta not found (install the passt package)")
    bound = _bind_namespace(state, pause)
    log = state / "pasta.log"
    command = [
        program, "--config-net", "--foreground", "--quiet", "--ipv4-only",
        "--ns-ifname", TAP, "-t", "none", "-u", "none", "-T", "none", "-U", "none",
        "--netns", str(bound), "--netns-only", "--no-netns-quit",
    ]  # fmt: skip
    with open(log, "wb") as errors:
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,
                cwd="/",
            )
        except OSError as exc:
            raise NetworkError(f"rootless networking: starting pasta: {exc.strerror}") from exc
    temporary = state / f"pasta.pid.{os.getpid()}"
    temporary.write_text(f"{process.pid} {pause}\n")
    temporary.replace(state / "pasta.pid")
    deadline = time.monotonic() + READY_TIMEOUT
    while not has_tap():
        if process.poll() is not None or time.monotonic() > deadline:
            _stop(process.pid, PASTA)
            with contextlib.suppress(OSError):
                (state / "pasta.pid").unlink()
            lines = log.read_text(errors="replace").strip().splitlines()
            why = lines[-1] if lines else f"exit status {process.returncode}"
            if "tun" in why and not os.access(TUN_DEVICE, os.R_OK | os.W_OK):
                why += f" ({TUN_DEVICE} must be readable and writable by the user)"
            raise NetworkError(f"rootless networking: pasta: {why}")
        time.sleep(0.02)


def _bind_namespace(state: Path, pause: int) -> Path:
    """Bind the pause process's network namespace onto ``<state>/netns`` (once)."""
    target = state / "netns"
    source = namespace_path(pause)
    try:
        if target.exists() and target.stat().st_ino == os.stat(source).st_ino:
            return target
        _unbind_namespace(state)
        target.touch(mode=0o600, exist_ok=True)
        runtime.linux.mount(source, target, None, runtime.linux.MS_BIND)
    except OSError as exc:
        raise NetworkError(
            f"rootless networking: binding {source} onto {target}: {exc.strerror}"
        ) from exc
    return target


def _unbind_namespace(state: Path) -> None:
    with contextlib.suppress(OSError):
        runtime.linux.umount2(state / "netns", runtime.linux.MNT_DETACH)


def stop_pasta() -> None:
    """Stop pasta (the last container left every network)."""
    state = _state()
    record = _pasta_record(state)
    if record is not None:
        _stop(record[0], PASTA)
    with contextlib.suppress(OSError):
        (state / "pasta.pid").unlink()
    _unbind_namespace(state)


# -- published ports ----------------------------------------------------------------------------


def _ports_dir() -> Path:
    directory = _state() / "ports"
    directory.mkdir(mode=0o700, exist_ok=True)
    return directory


def _listen(port: PortBinding) -> socket.socket:
    kind = socket.SOCK_STREAM if port.protocol == "tcp" else socket.SOCK_DGRAM
    sock = socket.socket(socket.AF_INET, kind)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((port.host_ip or "0.0.0.0", port.host_port))
        if kind == socket.SOCK_STREAM:
            sock.listen(128)
    except OSError as exc:
        sock.close()
        why = (exc.strerror or str(exc)).lower()
        raise NetworkError(f"publishing port {port.host_ip}:{port.host_port}: {why}") from exc
    return sock


def forward(
    container_id: str, address: str, ports: Sequence[PortBinding], pause: int, pid: int
) -> None:
    """Start the forwarder of a container's published ports (its host ports bound here)."""
    doing = f"publishing ports of container {container_id[:12]}"
    stop_forwarder(container_id)
    sockets: list[socket.socket] = []
    ready_read, ready_write = os.pipe()
    try:
        for port in ports:
            sockets.append(_listen(port))
        specs = [
            f"{sock.fileno()}/{port.protocol}/{address}/{port.container_port}"
            for sock, port in zip(sockets, ports, strict=True)
        ]
        command = [sys.executable, "-m", "pydock.network.forwarder", FORWARD_MARK,
                   namespace_path(pause), str(pid), str(ready_write), *specs]  # fmt: skip
        try:
            process = subprocess.Popen(
                command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                pass_fds=[ready_write, *(s.fileno() for s in sockets)],
                start_new_session=True,
                cwd="/",
            )
        except OSError as exc:
            raise NetworkError(f"{doing}: starting the forwarder: {exc.strerror}") from exc
        os.close(ready_write)
        ready_write = -1
        (_ports_dir() / f"{container_id}.pid").write_text(f"{process.pid}\n")
        answer = _read_ready(ready_read)
        if answer != "ok":
            stop_forwarder(container_id)
            raise NetworkError(f"{doing}: {answer or 'the forwarder did not start'}")
    finally:
        for sock in sockets:
            sock.close()
        os.close(ready_read)
        if ready_write >= 0:
            os.close(ready_write)


def _read_ready(fd: int) -> str:
    import select

    chunks = []
    deadline = time.monotonic() + READY_TIMEOUT
    while (left := deadline - time.monotonic()) > 0:
        readable, _, _ = select.select([fd], [], [], left)
        if not readable:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace").strip()


def stop_forwarder(container_id: str) -> None:
    """Stop the forwarder of a container's ports (idempotent)."""
    path = _ports_dir() / f"{container_id}.pid"
    with contextlib.suppress(OSError, ValueError):
        _stop(int(path.read_text()), FORWARD_MARK)
    with contextlib.suppress(OSError):
        path.unlink()


def forget_forwarders(gone: Iterable[str]) -> None:
    """Stop the forwarders of containers that are gone (recovery)."""
    directory = _ports_dir()
    for container_id in gone:
        if (directory / f"{container_id}.pid").exists():
            stop_forwarder(container_id)
