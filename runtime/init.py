"""The container's first process (pid 1 of its pid namespace), from set-up to exec.

It is forked by the monitor after the user and pid namespaces exist. On a cgroup v1 host it
first moves itself into the container's cgroups (through ``tasks`` files the caller opened,
which spares the kernel's grace period of a move by pid); it creates the remaining namespaces
but the cgroup one and builds the root filesystem, meanwhile on v2 the caller moves it into its
cgroup; then it waits until the caller says the move is done, enters a new cgroup namespace
(rooted at that cgroup), takes the command's identity, reports ``ready`` and executes the
command when the caller says ``start``; so the command starts under the container's limits.
Any failure is sent to the caller as one message and the process exits; it never returns into
the caller's Python code.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import signal
import socket
import termios
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol

from . import cgroups, channel, identity, linux, network, reaper, rootfs, seccomp
from .errors import SetupError
from .seccomp_profile import SeccompProfile
from .spec import ContainerSpec, NetworkMode, Rlimit, User, environment
from .user import home_for

# Exit status of a process that failed before exec; the caller reads the reason from the socket.
SETUP_FAILED = 125


@dataclass(frozen=True)
class LaunchPlan:
    """What the init process needs beyond the spec, decided by the caller before forking."""

    spec: ContainerSpec
    root: Path
    userns: bool
    # The caller is itself in a user namespace: no mknod, and no sysfs of the host network.
    nested: bool
    setgroups_allowed: bool
    pts_gid: int | None
    stdio: tuple[int, int, int]
    # Open ``tasks`` files of the container's v1 cgroups: init moves itself in through them
    # (cgroups.join); empty when the caller moves it.
    cgroup_handles: tuple[int, ...] = ()


class ExecFailure(Exception):
    """The command could not be executed; carries the errno that decides 126 or 127."""

    def __init__(self, err: int, message: str) -> None:
        super().__init__(message)
        self.errno = err


def find_command(name: str, search_path: str) -> str:
    """Find ``name`` in ``search_path`` as exec would, keeping a non-executable match for EACCES."""
    if "/" in name:
        return name
    fallback = None
    for directory in search_path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate):
            if os.access(candidate, os.X_OK):
                return candidate
            fallback = fallback or candidate
    if fallback is None:
        raise ExecFailure(errno.ENOENT, f"executing {name!r}: executable file not found in $PATH")
    return fallback


def install_stdio(fds: tuple[int, int, int]) -> None:
    """Make ``fds`` the process's 0, 1 and 2, whatever numbers they have now."""
    copies = [fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10) for fd in fds]
    for target, fd in enumerate(copies):
        os.dup2(fd, target)
    for fd in copies:
        os.close(fd)


def reset_signals() -> None:
    """Give the command default dispositions: Python ignores SIGPIPE and SIGXFSZ."""
    for number in range(1, signal.NSIG):
        if number in (signal.SIGKILL, signal.SIGSTOP):
            continue
        try:
            signal.signal(number, signal.SIG_DFL)
        except (OSError, ValueError):
            continue
    signal.pthread_sigmask(signal.SIG_SETMASK, set())


def close_fds(keep: int) -> None:
    """Close every descriptor above 2 except ``keep`` (close-on-exec, it reports exec errors)."""
    highest = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 20)
    os.closerange(3, keep)
    os.closerange(keep + 1, max(highest, keep + 2))


def _expect(sock: socket.socket, kind: str) -> None:
    message = channel.receive(sock)
    if message is None or message.kind != kind:
        raise SetupError(f"waiting for {kind!r} from the caller: the caller went away")


def _console(sock: socket.socket) -> int:
    """Open a terminal in the container's devpts, hand its master to the caller, return slave."""
    master, slave = os.openpty()
    rootfs.bind_console(os.ttyname(slave))
    channel.send(sock, "console", fd=master)
    os.close(master)
    return slave


def _setup(plan: LaunchPlan, sock: socket.socket) -> list[str]:
    """Everything between fork and exec; returns the command's environment."""
    spec = plan.spec
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    if spec.oom_score_adj is not None:
        # Before the identity changes: lowering the score needs CAP_SYS_RESOURCE.
        write_oom_score_adj(spec.oom_score_adj)
    flags = linux.CLONE_NEWNS
    if "uts" not in spec.host_namespaces:
        flags |= linux.CLONE_NEWUTS
    if "ipc" not in spec.host_namespaces:
        flags |= linux.CLONE_NEWIPC
    if spec.network is NetworkMode.NONE:
        flags |= linux.CLONE_NEWNET
    steps: list[tuple[str, Callable[[], None]]] = []
    if plan.cgroup_handles:
        # First, so the namespaces and mounts made next are charged to the container.
        steps.append(("joining the container's cgroup", lambda: cgroups.join(plan.cgroup_handles)))
    steps.append(("creating namespaces", lambda: linux.unshare(flags)))
    if "uts" not in spec.host_namespaces:
        steps.append(("setting the hostname", lambda: linux.sethostname(spec.effective_hostname)))
    if spec.domainname:
        steps.append(("setting the domainname", lambda: linux.setdomainname(spec.domainname)))
    if spec.network is NetworkMode.NONE:
        steps.append(("bringing up lo", network.bring_up_loopback))
    for what, step in steps:
        try:
            step()
        except OSError as exc:
            raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno) from exc
    confinement = build_filter(spec)
    os.umask(0o022)
    rootfs.prepare(spec, plan.root, in_userns=plan.userns or plan.nested, pts_gid=plan.pts_gid)
    rootfs.pivot(plan.root)
    # Before /proc/sys turns read-only.
    write_sysctls(spec.sysctls)
    rootfs.mask(spec.masked_paths)
    rootfs.make_readonly(spec.readonly_paths)
    _expect(sock, "continue")  # in the container's cgroup now
    if "cgroup" not in spec.host_namespaces:
        try:
            linux.unshare(linux.CLONE_NEWCGROUP)
        except OSError as exc:
            raise SetupError(f"creating namespaces: {exc.strerror}", errno=exc.errno) from exc
    stdio = plan.stdio
    if spec.tty:
        slave = _console(sock)
        stdio = (slave, slave, slave)
    if spec.readonly_rootfs:
        rootfs.remount_readonly("/", "making the rootfs read-only")
    try:
        with open("/etc/passwd", errors="replace") as f:
            home = home_for(f.read(), spec.user.uid)
    except OSError:
        home = "/"
    env = environment(spec, home)
    install_stdio(stdio)
    take_identity(spec, setgroups_allowed=plan.setgroups_allowed, confinement=confinement)
    # An euid change clears the parent-death signal; set it again.
    linux.prctl(linux.PR_SET_PDEATHSIG, signal.SIGKILL)
    enter_cwd(spec, confinement=confinement)
    return env


def write_oom_score_adj(value: int) -> None:
    """``--oom-score-adj``: the score of this process (the container's first, or an exec'd
    one), inherited by what it starts."""
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise SetupError(f"writing oom_score_adj {value}: {exc.strerror}", errno=exc.errno) from exc


def write_sysctls(sysctls: tuple[tuple[str, str], ...]) -> None:
    """Write each ``--sysctl`` below /proc/sys (the container's own proc, after pivot_root)."""
    for name, value in sysctls:
        path = "/proc/sys/" + name.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            raise SetupError(
                f"setting sysctl {name}={value}: {exc.strerror}", errno=exc.errno, path=path
            ) from exc


class ProcessSpec(Protocol):
    """What a container's command and an exec'd process both say about the process."""

    @property
    def tty(self) -> bool: ...
    @property
    def rlimits(self) -> tuple[Rlimit, ...]: ...
    @property
    def user(self) -> User: ...
    @property
    def capabilities(self) -> frozenset[str]: ...
    @property
    def cwd(self) -> str: ...
    @property
    def no_new_privileges(self) -> bool: ...
    @property
    def seccomp(self) -> SeccompProfile | None: ...


def build_filter(spec: ProcessSpec) -> seccomp.Program | None:
    """The process's seccomp program for its capabilities (the caller compiled it before
    forking, so this finds it made)."""
    if spec.seccomp is None:
        return None
    return seccomp.compile_program(spec.seccomp, spec.capabilities)


def take_identity(
    spec: ProcessSpec, *, setgroups_allowed: bool, confinement: seccomp.Program | None = None
) -> None:
    """A session of its own (the terminal as controlling tty), then limits, user, capabilities.

    Without no-new-privileges only a process holding CAP_SYS_ADMIN may load a seccomp filter,
    so ``confinement`` is loaded here, before the capabilities go, as runc does; the filter
    allows every syscall the rest of the set-up makes (set*id, capset, prctl, chdir, execve).
    """
    os.setsid()
    if spec.tty:
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)
    identity.apply_rlimits(spec.rlimits)
    if confinement is not None and not spec.no_new_privileges:
        confinement.load()
    identity.switch_user(spec.user, spec.capabilities, setgroups_allowed=setgroups_allowed)


def enter_cwd(spec: ProcessSpec, *, confinement: seccomp.Program | None = None) -> None:
    """Change to the working directory, then drop the right to gain privileges if asked.

    With no-new-privileges set, loading a seccomp filter needs no privilege: ``confinement``
    is loaded now, after the capabilities are set, so fewer syscalls run under it.
    """
    try:
        os.chdir(spec.cwd)
    except OSError as exc:
        raise SetupError(
            f"changing to working directory {spec.cwd}: {exc.strerror}", errno=exc.errno
        ) from exc
    if spec.no_new_privileges:
        identity.forbid_new_privileges()
        if confinement is not None:
            confinement.load()


def run(plan: LaunchPlan, sock: socket.socket) -> NoReturn:
    """Set up and execute the container's command; report any failure on ``sock``."""
    status = SETUP_FAILED
    try:
        env = _setup(plan, sock)
        reset_signals()
        close_fds(sock.fileno())
        channel.send(sock, "ready")
        _expect(sock, "start")
        if plan.spec.init:
            reaper.run(lambda: execute(plan.spec.args, env, sock), sock, tty=plan.spec.tty)
        execute(plan.spec.args, env, sock)
    except SetupError as exc:
        _report(sock, "error", {"errno": exc.errno, "message": str(exc), "path": exc.path})
    except BaseException as exc:
        err = getattr(exc, "errno", None)
        _report(sock, "error", {"errno": err, "message": f"setting up: {exc}"})
    finally:
        os._exit(status)


def execute(args: tuple[str, ...], env: list[str], sock: socket.socket) -> NoReturn:
    """Execute ``args`` with ``env``; report a failure on ``sock`` and exit 126 or 127."""
    status = 126
    try:
        search_path = next((e[5:] for e in reversed(env) if e.startswith("PATH=")), "")
        command = find_command(args[0], search_path)
        try:
            os.execve(command, list(args), dict(e.split("=", 1) for e in env))
        except OSError as exc:
            raise ExecFailure(
                exc.errno or errno.EACCES, f"executing {command!r}: {exc.strerror}"
            ) from exc
    except ExecFailure as exc:
        status = 127 if exc.errno == errno.ENOENT else 126
        _report(sock, "exec-error", {"errno": exc.errno, "message": str(exc)})
    finally:
        os._exit(status)


def _report(sock: socket.socket, kind: str, fields: dict[str, object]) -> None:
    # If the caller is gone, the exit status is all that is left.
    with contextlib.suppress(OSError):
        channel.send(sock, kind, fields)
