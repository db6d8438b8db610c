"""Rootless pydock runs in a user namespace of its own, as podman does.

Before it opens its store, an unprivileged pydock moves into a user and mount namespace in
which it is root: the image layers may then hold files of every id the maps cover (the caller's
own id as root, plus its ``/etc/subuid`` range), overlay2 can mount (with ``userxattr``), and
containers share that namespace. ``exec`` joins the namespaces of the container's monitor
instead, where the container's own namespaces can be entered.

Every command of one user and run root uses the same namespace. The first one makes it and
starts a pause process in it (``<run root>/rootless/pause.pid``) that keeps it alive between
commands; later commands join it. So mounts made by one command are there for the next, and
the fuse driver's resident mount server serves every command. The pause process is a shell
loop that leaves once no other process has been in the namespace for ``PYDOCK_PAUSE_IDLE``
seconds (60 by default); the next command then makes a new namespace.

The pause process also holds a network namespace of its own (owned by pydock's user namespace,
with ``lo`` up and forwarding on): rootless bridge networks live there (see
``pydock.network.rootlessnet``), and go with it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import runtime.idmap
import runtime.linux
import runtime.network
import runtime.userns
from pydock.errors import PydockError

PAUSE_MARK = "pydock-pause"
PAUSE_IDLE_ENV = "PYDOCK_PAUSE_IDLE"
DEFAULT_PAUSE_IDLE = 60.0


@dataclass(frozen=True)
class Session:
    """The pause process this command joined or started, and its state directory."""

    state: Path
    pause: int


_session: Session | None = None

# $1: idle seconds. Only shell built-ins run between the sleeps, so no process of the loop's
# own is in the namespace when it looks for others.
_PAUSE_LOOP = """
me=/proc/$$/ns/user
while sleep "$1"; do
    for p in /proc/[0-9]*; do
        [ "$p" = "/proc/$$" ] && continue
        [ "$p/ns/user" -ef "$me" ] && continue 2
    done
    exit 0
done
"""


def needs_namespace() -> bool:
    """Whether this process is unprivileged and still in the host's user namespace."""
    return os.geteuid() != 0 and runtime.userns.in_initial_namespace()


def enter(run_root: Path) -> None:
    """Move into pydock's user and mount namespace as root (when rootless and not there yet):
    join the one the pause process of ``run_root`` keeps, or make it and start that process."""
    global _session
    if not needs_namespace():
        return
    state = Path(run_root) / "rootless"
    try:
        state.mkdir(mode=0o700, parents=True, exist_ok=True)
        lock = os.open(state / "pause.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    except OSError as exc:
        raise PydockError(f"setting up rootless mode: {state}: {exc.strerror}") from exc
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pause = live_pause(state)
        if pause is not None:
            with contextlib.suppress(runtime.ContainerError):
                runtime.userns.join(pause)
                _session = Session(state, pause)
                return
            # It left between the look and the join: nothing was entered; make a new one.
        try:
            runtime.userns.enter(runtime.idmap.plan())
        except runtime.NamespaceUnavailableError:
            return  # user namespaces are off here: vfs still works, overlay2 will say why not
        except runtime.ContainerError as exc:
            raise PydockError(f"setting up rootless mode: {exc}") from exc
        started = _start_pause(state)
        if started is not None:
            _session = Session(state, started)
    finally:
        os.close(lock)


def adopt(run_root: Path) -> None:
    """In a process already inside pydock's user namespace (a container's exit command, a
    command run from the pause process's namespace): remember the pause process that keeps
    it, as ``enter`` does, so that rootless networks are found."""
    global _session
    if os.geteuid() != 0 or runtime.userns.in_initial_namespace():
        return
    state = Path(run_root) / "rootless"
    pause = live_pause(state)
    if pause is None:
        return
    with contextlib.suppress(OSError):
        if os.stat(f"/proc/{pause}/ns/user").st_ino == os.stat("/proc/self/ns/user").st_ino:
            _session = Session(state, pause)


def live_pause(state: Path) -> int | None:
    """The pid of the live pause process recorded in ``state``, if there is one."""
    try:
        pid = int((state / "pause.pid").read_text())
        with open(f"/proc/{pid}/cmdline", "rb") as file:
            words = file.read().split(b"\0")
        owner = os.stat(f"/proc/{pid}").st_uid
    except (OSError, ValueError):
        return None
    return pid if PAUSE_MARK.encode() in words and owner == os.getuid() else None


def session() -> Session | None:
    """The pause process of this command's user namespace (``None`` when not rootless, or when
    the command joined a container's namespaces instead)."""
    return _session


def _own_network() -> None:
    """In the pause process before it runs: a network namespace of its own, ready for bridges.

    Forwarding is on so that members of its bridges reach the outside through pasta's tap.
    Without it the pause process still keeps the user namespace; networks then say why not.
    """
    try:
        runtime.linux.unshare(runtime.linux.CLONE_NEWNET)
    except OSError:
        return
    runtime.network.bring_up_loopback()
    with contextlib.suppress(OSError), open("/proc/sys/net/ipv4/ip_forward", "w") as file:
        file.write("1")


def _start_pause(state: Path) -> int | None:
    idle = os.environ.get(PAUSE_IDLE_ENV) or str(DEFAULT_PAUSE_IDLE)
    # Without a pause process this command still works; the next one makes a namespace again.
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        process = subprocess.Popen(
            [PAUSE_MARK, "-c", _PAUSE_LOOP, PAUSE_MARK, idle],  # ps shows it by this name
            executable="/bin/sh",
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            close_fds=True,
            start_new_session=True,
            cwd="/",
            preexec_fn=_own_network,
        )
        temporary = state / f"pause.pid.{os.getpid()}"
        temporary.write_text(f"{process.pid}\n")
        temporary.replace(state / "pause.pid")
        return process.pid
    return None


def join(monitor_pid: int) -> None:
    """Join the user and mount namespaces of a container's monitor (when rootless)."""
    if not needs_namespace():
        return
    try:
        runtime.userns.join(monitor_pid)
    except runtime.ContainerError as exc:
        raise PydockError(f"joining the container's user namespace: {exc}") from exc
