"""A small resident process that forks container monitors for a long-lived caller.

:func:`runtime.create` forks the monitor from the caller. For the CLI that is a process that
lives as long as one command; for a resident caller (the API service) it is a large Python
process whose fork costs milliseconds of page-table copying and copy-on-write faults at every
start, and whose every monitor keeps a private copy of whatever pages the caller has written
since. A spawner is a separate interpreter that imports only the runtime: the caller sends it
the launch (pickled, with its descriptors over ``SCM_RIGHTS``), it forks the monitor and answers
with the monitor's pid and a pidfd of it. The monitor then runs exactly as a forked one does;
its parent is the spawner, which reaps it, so the caller waits on the pidfd and takes the exit
status from the exit file.

The spawner ends when the caller closes its end, or dies (the socket then reaches end-of-file);
the monitors it forked run on.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import socket
import struct
import subprocess
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import NoReturn

from . import monitor, reaper, seccomp
from .cgroups import Cgroup
from .errors import ContainerError, SeccompError
from .init import LaunchPlan
from .logindex import LogCopy

# A launch's pickled job is a few kilobytes; its descriptors are the channel, stdio, the cgroup
# handles and three per log copy.
MAX_MESSAGE = 1 << 20
MAX_FDS = 64
START_TIMEOUT = 30.0
FD_SIZE = struct.calcsize("i")


# The spawner process: only the runtime imported (not run as ``-m``: its jobs must unpickle
# as this module's classes, not ``__main__``'s).
_MAIN = "import sys; from runtime.spawner import serve; serve(int(sys.argv[1]))"


@dataclass(frozen=True)
class MonitorJob:
    """What :func:`runtime.monitor.run` is called with, descriptors left out (they travel
    beside it, in the order :meth:`descriptors` gives)."""

    plan: LaunchPlan
    cgroup: Cgroup | None
    exit_file: Path | None
    detach: bool
    exit_command: tuple[str, ...]
    log_copies: int

    @staticmethod
    def descriptors(plan: LaunchPlan, sock: socket.socket, copies: Sequence[LogCopy]) -> list[int]:
        """The descriptors a job needs, in the order :meth:`rebuild` reads them."""
        fds = [sock.fileno(), *plan.stdio, *plan.cgroup_handles]
        for copy in copies:
            fds += copy.fds
        return fds

    def descriptor_count(self) -> int:
        return 4 + len(self.plan.cgroup_handles) + 3 * self.log_copies

    def rebuild(self, fds: list[int]) -> tuple[MonitorJob, socket.socket, list[LogCopy]]:
        """The job, channel and log copies again, on the descriptors received."""
        handles = len(self.plan.cgroup_handles)
        stdio = (fds[1], fds[2], fds[3])
        plan = replace(self.plan, stdio=stdio, cgroup_handles=tuple(fds[4 : 4 + handles]))
        rest = fds[4 + handles :]
        copies = [LogCopy(*rest[i : i + 3]) for i in range(0, 3 * self.log_copies, 3)]
        return replace(self, plan=plan), socket.socket(fileno=fds[0]), copies

    def run(
        self, sock: socket.socket, log_copies: Sequence[LogCopy], exit_hook: int = -1
    ) -> NoReturn:
        """Be the monitor of this job (in a freshly forked child); never returns."""
        monitor.run(
            self.plan,
            sock,
            cgroup=self.cgroup,
            exit_file=self.exit_file,
            detach=self.detach,
            exit_command=self.exit_command,
            log_copies=log_copies,
            exit_hook=exit_hook,
        )


class Spawner:
    """The caller's end: starts the spawner process and asks it for monitors (thread-safe)."""

    def __init__(self) -> None:
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            # The runtime this process runs, whatever the working directory holds.
            source = str(Path(__file__).resolve().parent.parent)
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-c", _MAIN, str(theirs.fileno())],
                env={**os.environ, "PYTHONPATH": source},
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                # Where the caller's own errors go: a spawner that fails says why there.
                start_new_session=True,
            )
        except OSError:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.settimeout(START_TIMEOUT)
        self._sock = ours
        self._lock = threading.Lock()

    def spawn(
        self, job: MonitorJob, sock: socket.socket, log_copies: Sequence[LogCopy]
    ) -> tuple[int, int]:
        """Fork the monitor of ``job`` in the spawner; return its pid and a pidfd of it."""
        fds = MonitorJob.descriptors(job.plan, sock, log_copies)
        container_id = job.plan.spec.container_id
        with self._lock:
            try:
                socket.send_fds(self._sock, [pickle.dumps(job)], fds)
                reply, received, _ = _receive(self._sock, 4096, 1)
            except OSError as exc:
                raise ContainerError(
                    f"creating container {container_id}: the monitor spawner failed: "
                    f"{exc.strerror or exc}",
                    container_id=container_id,
                ) from exc
        text = reply.decode(errors="replace")
        if not received or not text.isdigit():
            for fd in received:
                os.close(fd)
            why = text or "it ended"
            raise ContainerError(
                f"creating container {container_id}: the monitor spawner: {why}",
                container_id=container_id,
            )
        return int(text), received[0]

    def alive(self) -> bool:
        """Whether the spawner process still runs."""
        return self.process.poll() is None

    def close(self) -> None:
        """End the spawner (its monitors keep running) and reap it."""
        self._sock.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def _receive(sock: socket.socket, size: int, most: int) -> tuple[bytes, list[int], int]:
    """A message and the descriptors it carries, received close-on-exec (as the caller's own
    were: the channel must end when init executes its command, and nothing may leak into
    it); ``socket.recv_fds`` of Python 3.11 drops the flag that does so."""
    data, ancillary, flags, _ = sock.recvmsg(
        size, socket.CMSG_SPACE(most * FD_SIZE), socket.MSG_CMSG_CLOEXEC
    )
    fds: list[int] = []
    for level, kind, payload in ancillary:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            whole = len(payload) - len(payload) % FD_SIZE
            fds += struct.unpack(f"{whole // FD_SIZE}i", payload[:whole])
    return data, fds, flags


_installed: Spawner | None = None


def install(spawner: Spawner | None) -> None:
    """Make ``spawner`` fork every monitor this process starts (``None``: fork them here)."""
    global _installed
    _installed = spawner


def installed() -> Spawner | None:
    """The spawner :func:`install` set, while its process runs."""
    spawner = _installed
    return spawner if spawner is not None and spawner.alive() else None


# -- the spawner process ---------------------------------------------------------------------


def _warm(plan: LaunchPlan) -> None:
    """What init would otherwise do at every start: compile the seccomp program (kept for the
    next container with the same profile), as the caller did before sending the job."""
    spec = plan.spec
    if spec.seccomp is not None:
        # A failure is init's to report, in its own words.
        with contextlib.suppress(SeccompError):
            seccomp.compile_program(spec.seccomp, spec.capabilities)


def _serve_one(sock: socket.socket, wakeup: tuple[int, int]) -> bool:
    """Answer one request; False once the caller has gone."""
    try:
        data, fds, flags = _receive(sock, MAX_MESSAGE, MAX_FDS)
    except ConnectionResetError:
        return False
    if not data:
        for fd in fds:
            os.close(fd)
        return False
    try:
        if flags & (socket.MSG_TRUNC | socket.MSG_CTRUNC):
            raise ValueError("request too large")
        job = pickle.loads(data)
        if not isinstance(job, MonitorJob):
            raise ValueError("not a monitor job")
        if len(fds) != job.descriptor_count():
            raise ValueError(
                f"{len(fds)} descriptors for a job that needs {job.descriptor_count()}"
            )
        _warm(job.plan)
        pid, pidfd = _fork_monitor(job, fds, sock, wakeup)
    except Exception as exc:
        for fd in fds:
            os.close(fd)
        with contextlib.suppress(OSError):
            sock.send(str(exc).encode() or type(exc).__name__.encode())
        return True
    for fd in fds:
        os.close(fd)
    try:
        socket.send_fds(sock, [str(pid).encode()], [pidfd])
    except OSError:
        return False
    finally:
        os.close(pidfd)
    return True


def _fork_monitor(
    job: MonitorJob, fds: list[int], sock: socket.socket, wakeup: tuple[int, int]
) -> tuple[int, int]:
    """Fork the job's monitor; return its pid and a pidfd. The exit command's helper is
    started here, while the monitor sets up, rather than by the monitor before it forks init
    (its start was a millisecond of every container's); the spawner reaps it too."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC) if job.exit_command else (-1, -1)
    try:
        pid = os.fork()
        if pid == 0:
            _become_monitor(job, fds, sock, (*wakeup, read_end), write_end)
        pidfd = os.pidfd_open(pid)
    except BaseException:
        if read_end >= 0:
            os.close(read_end)
        raise
    finally:
        if write_end >= 0:
            os.close(write_end)  # the monitor's alone now: its end is the helper's end-of-file
    if read_end < 0:
        return pid, pidfd
    try:
        monitor.start_exit_helper(job.exit_command, read_end)
    except BaseException:
        signal.pidfd_send_signal(pidfd, signal.SIGKILL)
        os.close(pidfd)
        raise
    finally:
        os.close(read_end)
    return pid, pidfd


def _become_monitor(
    job: MonitorJob, fds: list[int], sock: socket.socket, spawner_fds: tuple[int, ...], hook: int
) -> NoReturn:
    """In the forked child: drop the spawner's own state, then run the monitor (``hook``:
    the write end of the exit command helper's pipe, -1 for none)."""
    try:
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        sock.close()
        for fd in spawner_fds:
            if fd >= 0:
                os.close(fd)
        job, channel, copies = job.rebuild(fds)
    except BaseException:
        os._exit(1)
    job.run(channel, copies, hook)


def serve(fd: int) -> None:
    """The spawner's loop: fork a monitor per request, reap the monitors that end."""
    sock = socket.socket(fileno=fd)
    # Terminal signals are for the caller, which ends the spawner by closing the socket.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    wakeup = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
    signal.set_wakeup_fd(wakeup[1])
    signal.signal(signal.SIGCHLD, lambda number, frame: None)
    while True:
        ready, _, _ = select.select([sock.fileno(), wakeup[0]], [], [])
        if wakeup[0] in ready:
            with contextlib.suppress(BlockingIOError):
                while os.read(wakeup[0], 512):
                    pass
            reaper.reap_exited()
        if sock.fileno() in ready and not _serve_one(sock, wakeup):
            break
    reaper.reap_exited()
