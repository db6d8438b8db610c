"""The caller's handle on one container: start, wait, kill, delete, following the state table."""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import socket
from pathlib import Path

from . import channel
from .cgroups import Cgroup
from .errors import (
    CommandNotExecutableError,
    CommandNotFoundError,
    ContainerError,
    ExecError,
    SetupError,
)
from .monitor import read_exit_file
from .spec import ContainerSpec
from .state import Event, State, transition


class Container:
    """A container created by this process: init's pid, its monitor, its state."""

    def __init__(
        self,
        spec: ContainerSpec,
        *,
        monitor_pid: int,
        pid: int,
        sock: socket.socket,
        cgroup: Cgroup | None,
        console_fd: int | None,
        monitor_pidfd: int,
        exit_file: Path | None = None,
    ) -> None:
        """``monitor_pidfd`` is a pidfd of the monitor, the handle's to close; the status of a
        monitor that is not this process's child (a spawner's) is read from ``exit_file``."""
        self.spec = spec
        self.monitor_pid = monitor_pid
        self.pid = pid
        self.cgroup = cgroup
        self.console_fd = console_fd
        self.state = State.CREATED
        self.exit_code: int | None = None
        self._sock: socket.socket | None = sock
        self.exit_file = exit_file
        self._pidfd = os.pidfd_open(pid)
        self._monitor_pidfd = monitor_pidfd

    @property
    def container_id(self) -> str:
        """The id given in the spec."""
        return self.spec.container_id

    def _event(self, event: Event) -> None:
        self.state = transition(self.state, event, container_id=self.container_id)

    def start(self, timeout: float = 30.0) -> None:
        """Execute the command; raise ExecError (exit code 126 or 127) if it cannot run."""
        transition(self.state, Event.START, container_id=self.container_id)
        assert self._sock is not None
        self._sock.settimeout(timeout)
        try:
            channel.send(self._sock, "start")
            message = channel.receive(self._sock)
        except OSError as exc:
            raise ContainerError(
                f"starting container {self.container_id}: {exc}", container_id=self.container_id
            ) from exc
        finally:
            self._sock.close()
            self._sock = None
        if message is None:
            self._event(Event.START)
            return
        self.wait()
        raise report_error(message, self.container_id)

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the container to exit and return its Docker exit status."""
        if self.exit_code is not None:
            return self.exit_code
        ready, _, _ = select.select([self._monitor_pidfd], [], [], timeout)
        if not ready:
            raise TimeoutError(f"container {self.container_id} still runs after {timeout} s")
        self.exit_code = monitor_status(self._monitor_pidfd, self.exit_file)
        self._event(Event.EXIT)
        self._release()
        return self.exit_code

    def poll(self) -> int | None:
        """Return the exit status if the container has exited, else None."""
        try:
            return self.wait(timeout=0)
        except TimeoutError:
            return None

    def take_monitor(self) -> int:
        """Hand over the monitor (a pidfd of it, the caller's to close) to a caller that waits
        for it elsewhere; this handle lets go of its descriptors and is done."""
        pidfd = self._monitor_pidfd
        os.close(self._pidfd)
        self._pidfd = self._monitor_pidfd = -1
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        return pidfd

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send ``sig`` to the container's init; a no-op once it has exited."""
        transition(self.state, Event.KILL, container_id=self.container_id)
        with contextlib.suppress(ProcessLookupError):
            signal.pidfd_send_signal(self._pidfd, sig)

    def delete(self, *, force: bool = False) -> None:
        """Release what is left of a stopped container; ``force`` kills a live one first."""
        if self.state is State.DELETED:
            return
        if force and self.state is not State.STOPPED:
            self.kill()
            self.wait()
        self._event(Event.DELETE)
        self._release()
        if self.console_fd is not None:
            os.close(self.console_fd)
            self.console_fd = None
        for fd in (self._pidfd, self._monitor_pidfd):
            os.close(fd)
        self._pidfd = self._monitor_pidfd = -1

    def _release(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
        if self.cgroup is not None:
            self.cgroup.remove()


def reap_status(pidfd: int) -> int | None:
    """Reap the ended monitor that ``pidfd`` refers to and return its Docker exit status;
    ``None`` when it is not this process's child (a spawner reaps its own)."""
    try:
        result = os.waitid(os.P_PIDFD, pidfd, os.WEXITED)
    except ChildProcessError:
        return None
    if result is None or result.si_code != os.CLD_EXITED:
        # The monitor was killed; init died with it (parent-death signal).
        return 128 + signal.SIGKILL
    return result.si_status


def monitor_status(pidfd: int, exit_file: Path | None) -> int:
    """The Docker exit status of a monitor that has ended: its wait status when it is this
    process's child, else the status it recorded in ``exit_file``."""
    status = reap_status(pidfd)
    if status is None and exit_file is not None:
        status = read_exit_file(exit_file)
    # No status recorded: the monitor was killed, and init died with it.
    return 128 + signal.SIGKILL if status is None else status


def report_error(message: channel.Message, container_id: str) -> ContainerError:
    """Turn a failure reported by the monitor or init into the error the caller raises."""
    text = f"starting container {container_id}: {message.text('message')}"
    err = message.number("errno")
    if message.kind == "exec-error":
        kind: type[ExecError] = (
            CommandNotFoundError if err == errno.ENOENT else CommandNotExecutableError
        )
        return kind(text, errno=err, container_id=container_id)
    return SetupError(text, errno=err, container_id=container_id, path=message.text("path") or None)
