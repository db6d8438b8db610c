"""``exec``: run another process in a running container by joining its namespaces.

    caller --fork--> joiner: setns into the container's user, ipc, uts, net, cgroup, pid and
                     mount namespaces (in that order, the user namespace first as runc does)
    joiner --fork--> process: pid N of the container's pid namespace (setns of a pid namespace
                     only applies to children); it reports its pid, waits until the caller has
                     put it into the container's cgroups, takes the container's identity and
                     executes the command
    joiner           waits for the process and exits with its Docker status

Failures are reported on a seqpacket channel exactly as a container's init reports them, so an
exec of a missing command raises :class:`CommandNotFoundError` (127).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
from dataclasses import dataclass, field
from pathlib import Path
from typing import NoReturn

from . import capabilities, cgroups, channel, init, linux, reaper, seccomp
from .container import report_error
from .errors import ContainerError, SetupError
from .seccomp_default import DEFAULT_PROFILE
from .seccomp_profile import SeccompProfile
from .spec import DEFAULT_PATH, Rlimit, User

# /proc/PID/ns names in the order they are joined, with their CLONE_* type.
NAMESPACES = (
    ("user", linux.CLONE_NEWUSER),
    ("ipc", linux.CLONE_NEWIPC),
    ("uts", linux.CLONE_NEWUTS),
    ("net", linux.CLONE_NEWNET),
    ("cgroup", linux.CLONE_NEWCGROUP),
    ("pid", linux.CLONE_NEWPID),
    ("mnt", linux.CLONE_NEWNS),
)


@dataclass(frozen=True)
class ExecSpec:
    """A process to start in the running container whose init is ``target_pid``."""

    container_id: str
    target_pid: int
    args: tuple[str, ...]
    env: tuple[str, ...] = (f"PATH={DEFAULT_PATH}",)
    cwd: str = "/"
    user: User = field(default_factory=User)
    capabilities: frozenset[str] = capabilities.DEFAULT_CAPABILITIES
    no_new_privileges: bool = False
    rlimits: tuple[Rlimit, ...] = ()
    tty: bool = False
    # The container's profile: an exec'd process is confined as the container's command is.
    seccomp: SeccompProfile | None = DEFAULT_PROFILE
    # The container's ``--oom-score-adj``, as runc gives it to exec'd processes too.
    oom_score_adj: int | None = None


class ExecProcess:
    """A process started by :func:`execute`: wait for it, signal it, read its terminal."""

    def __init__(self, container_id: str, joiner: int, pid: int, console_fd: int | None) -> None:
        self.container_id = container_id
        self.joiner = joiner
        self.pid = pid
        self.console_fd = console_fd
        self.exit_code: int | None = None
        self._pidfd = os.pidfd_open(joiner)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the process and return its Docker exit status."""
        if self.exit_code is not None:
            return self.exit_code
        ready, _, _ = select.select([self._pidfd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"exec in {self.container_id} still runs after {timeout} s")
        _, wait_status = os.waitpid(self.joiner, 0)
        self.exit_code = reaper.exit_status(wait_status)
        os.close(self._pidfd)
        if self.console_fd is not None:
            os.close(self.console_fd)
            self.console_fd = None
        return self.exit_code

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the executed process."""
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.pid, sig)


def _open_namespaces(pid: int, container_id: str) -> list[tuple[int, int]]:
    """Descriptors of the target's namespaces that differ from ours, in joining order."""
    opened: list[tuple[int, int]] = []
    try:
        for name, kind in NAMESPACES:
            theirs = Path(f"/proc/{pid}/ns/{name}")
            if os.stat(theirs).st_ino == os.stat(f"/proc/self/ns/{name}").st_ino:
                continue
            opened.append((os.open(theirs, os.O_RDONLY | os.O_CLOEXEC), kind))
    except OSError as exc:
        for fd, _ in opened:
            os.close(fd)
        raise ContainerError(
            f"joining container {container_id}: {exc.strerror} ({exc.filename})",
            container_id=container_id,
        ) from exc
    return opened


def _cgroup_dirs(pid: int) -> list[Path]:
    """The cgroup directories of ``pid`` that differ from the caller's, one per hierarchy."""
    mounted = cgroups.mounted_hierarchies(Path("/proc/self/mountinfo").read_text())
    theirs = cgroups.own_cgroups(Path(f"/proc/{pid}/cgroup").read_text())
    ours = cgroups.own_cgroups(Path("/proc/self/cgroup").read_text())
    found = []
    for hierarchy in mounted:
        names = sorted(hierarchy.controllers) if hierarchy.version == 1 else [""]
        key = next((n for n in names if n in theirs), None)
        if key is None or theirs[key] == ours.get(key):
            continue
        relative = os.path.relpath(theirs[key], hierarchy.root)
        if not relative.startswith(".."):
            found.append(hierarchy.mountpoint / relative)
    return found


def _process(spec: ExecSpec, sock: socket.socket) -> NoReturn:
    """The executed process, inside every namespace: identity, then exec."""
    status = init.SETUP_FAILED
    try:
        message = channel.receive(sock)
        if message is None or message.kind != "continue":
            raise SetupError("waiting for the caller: it went away")
        stdio = (0, 1, 2)
        if spec.tty:
            master, slave = os.openpty()
            channel.send(sock, "console", fd=master)
            os.close(master)
            stdio = (slave, slave, slave)
        init.install_stdio(stdio)
        if spec.oom_score_adj is not None:
            init.write_oom_score_adj(spec.oom_score_adj)
        setgroups = Path("/proc/self/setgroups").read_text().strip() != "deny"
        confinement = init.build_filter(spec)
        init.take_identity(spec, setgroups_allowed=setgroups, confinement=confinement)
        init.enter_cwd(spec, confinement=confinement)
        init.reset_signals()
        init.close_fds(sock.fileno())
        init.execute(spec.args, list(spec.env), sock)
    except BaseException as exc:
        err = getattr(exc, "errno", None)
        text = str(exc) if isinstance(exc, SetupError) else f"setting up: {exc}"
        with contextlib.suppress(OSError):
            channel.send(sock, "error", {"errno": err, "message": text})
    finally:
        os._exit(status)


def _joiner(spec: ExecSpec, namespaces: list[tuple[int, int]], sock: socket.socket) -> NoReturn:
    """Join the namespaces, fork the process, report its pid, wait for it."""
    status = init.SETUP_FAILED
    try:
        linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
        for fd, kind in namespaces:
            try:
                linux.setns(fd, kind)
            except OSError as exc:
                raise SetupError(f"joining namespaces: {exc.strerror}", errno=exc.errno) from exc
            os.close(fd)
        pid = os.fork()
        if pid == 0:
            _process(spec, sock)
        channel.send(sock, "pid", {"pid": pid})
        sock.close()
        null = os.open(os.devnull, os.O_RDWR)
        for target in (0, 1, 2):
            os.dup2(null, target)
        # Hold nothing of the caller's while waiting: a resident caller (the API service)
        # has other processes' pipes open, whose readers must see their end.
        init.close_fds(2)
        status = reaper.exit_status(os.waitpid(pid, 0)[1])
    except BaseException as exc:
        err = getattr(exc, "errno", None)
        with contextlib.suppress(OSError):
            channel.send(sock, "error", {"errno": err, "message": f"joining: {exc}"})
    finally:
        os._exit(status)


def execute(
    spec: ExecSpec,
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    timeout: float = 30.0,
) -> ExecProcess:
    """Start ``spec`` in its container; raise ExecError (126/127) if it cannot be executed."""
    where = f"executing in container {spec.container_id}"
    stdio = (stdin, stdout, stderr)
    if spec.seccomp is not None:
        # Compiled (libseccomp loaded on the way) before joining the container's mount
        # namespace, where the host's library is gone.
        seccomp.compile_program(spec.seccomp, spec.capabilities)
    namespaces = _open_namespaces(spec.target_pid, spec.container_id)
    ours, theirs = channel.pair()
    try:
        directories = _cgroup_dirs(spec.target_pid)
        joiner = os.fork()
    except BaseException:
        for fd, _ in namespaces:
            os.close(fd)
        ours.close()
        theirs.close()
        raise
    if joiner == 0:
        ours.close()
        wanted = [target if given is None else given for target, given in enumerate(stdio)]
        copies = [fcntl.fcntl(given, fcntl.F_DUPFD_CLOEXEC, 10) for given in wanted]
        for target, copy in enumerate(copies):
            os.dup2(copy, target)
        _joiner(spec, namespaces, theirs)
    theirs.close()
    for fd, _ in namespaces:
        os.close(fd)
    ours.settimeout(timeout)
    console: int | None = None
    try:
        message = channel.receive(ours)
        if message is None or message.kind != "pid":
            raise _failure(message, spec.container_id, where)
        pid = message.number("pid") or 0
        for directory in directories:
            try:
                (directory / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                raise ContainerError(
                    f"{where}: joining cgroup {directory}: {exc.strerror}",
                    container_id=spec.container_id,
                ) from exc
        channel.send(ours, "continue")
        while (message := channel.receive(ours)) is not None:
            if message.kind != "console":
                raise _failure(message, spec.container_id, where)
            console = message.fd
        return ExecProcess(spec.container_id, joiner, pid, console)
    except BaseException:
        if console is not None:
            os.close(console)
        with contextlib.suppress(ProcessLookupError):
            os.kill(joiner, signal.SIGKILL)
        os.waitpid(joiner, 0)
        raise
    finally:
        ours.close()


def _failure(message: channel.Message | None, container_id: str, where: str) -> ContainerError:
    if message is None:
        return ContainerError(f"{where}: set-up ended without a report", container_id=container_id)
    if message.kind in ("error", "exec-error"):
        error = report_error(message, container_id)
        error.message = error.message.replace(f"starting container {container_id}", where, 1)
        error.args = (error.message,)
        return error
    return ContainerError(f"{where}: unexpected {message.kind!r}", container_id=container_id)
