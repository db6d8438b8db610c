"""The per-container monitor: creates the user and pid namespaces, forks init, reaps it.

It is the caller's child and init's parent, marked as a child subreaper. After forking init it
closes every descriptor it inherited, so a detached container holds nothing of the command that
started it; it forwards the usual termination signals to init, waits for it, removes the
cgroup, records the exit status (``128+N`` for signal N) in the exit file when one is given,
and exits with that status itself; an exit command, when one is given (the caller's clean-up,
as conmon's), then starts from a helper forked before the pid namespace existed. Given output
pipes, a thread copies them into the log files with each line's time (as conmon's logging)
and the exit is recorded only after they have ended, so ``wait`` then ``logs`` sees it all.
"""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn

from . import channel, init, linux, reaper
from .cgroups import Cgroup
from .errors import ContainerError
from .logindex import LogCopy, copy_until_closed

# How long the monitor waits, once init is gone, for the log copies to reach end-of-file
# (only a process outside the container that still holds a pipe's write end delays them).
LOG_DRAIN_TIMEOUT = 10.0

OOM_KILLED = "oom-killed"


def write_exit_file(path: Path, status: int, *, oom_killed: bool = False) -> None:
    """Record ``status`` in ``path`` atomically; a second line says the OOM killer struck."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(f"{status}\n" + (f"{OOM_KILLED}\n" if oom_killed else ""))
    os.replace(partial, path)


def read_exit_file(path: Path) -> int | None:
    """Return the status recorded in ``path``, or None while the container runs."""
    try:
        return int(path.read_text().split("\n", 1)[0].strip())
    except (FileNotFoundError, ValueError):
        return None


def read_oom_killed(path: Path) -> bool:
    """Whether the exit recorded in ``path`` came with an OOM kill in the container's cgroup."""
    try:
        return OOM_KILLED in path.read_text().split()
    except FileNotFoundError:
        return False


def _let_go_of_caller(*keep: int) -> None:
    """Drop every descriptor inherited from the caller but ``keep``; stdio becomes /dev/null."""
    null = os.open("/dev/null", os.O_RDWR)
    for target in (0, 1, 2):
        os.dup2(null, target)
    highest = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 20)
    start = 3
    for fd in sorted({fd for fd in keep if fd > 2}):
        os.closerange(start, fd)
        start = fd + 1
    os.closerange(start, highest)


def _start_log_copies(copies: Sequence[LogCopy]) -> threading.Thread | None:
    """Copy the container's output pipes into its logs in a thread of this process."""
    if not copies:
        return None

    def copy() -> None:
        # Nobody is left to tell: a failed copy ends, and the container sees a closed pipe.
        with contextlib.suppress(OSError):
            copy_until_closed(copies)

    thread = threading.Thread(target=copy, name="log-copy", daemon=True)
    thread.start()
    return thread


# The exit-command helper: wait for end-of-file on standard input, then become the command.
_WAIT_THEN_EXEC = 'read -r _; exec "$@" </dev/null'


def start_exit_helper(argv: tuple[str, ...], read_end: int) -> None:
    """Start the helper that runs ``argv`` at end-of-file on ``read_end`` (a pipe whose write
    end only the monitor holds, so the exit command also runs if the monitor is killed).

    It is a shell, in a session of its own, with none of the caller's descriptors (a pipe of
    the container's output held open would keep its reader waiting); subprocess starts it with
    vfork, where forking a large caller cost the start milliseconds.
    """
    subprocess.Popen(
        ["/bin/sh", "-c", _WAIT_THEN_EXEC, "sh", *argv],
        stdin=read_end,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
    )


def _prepare_exit_command(argv: tuple[str, ...]) -> int:
    """Start the exit command's helper (:func:`start_exit_helper`) from the monitor; return
    the monitor's end of its pipe. Before the pid namespace exists: a process there cannot
    fork once init has died."""
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        start_exit_helper(argv, read_end)
    finally:
        os.close(read_end)
    return write_end


def _kill_remaining(cgroup: Cgroup) -> None:
    """SIGKILL every process left in the container's cgroup and reap those that were ours."""
    for _ in range(10):
        left = cgroup.pids()
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        reaper.reap_exited()
        time.sleep(0.01)


def run(
    plan: init.LaunchPlan,
    sock: socket.socket,
    *,
    cgroup: Cgroup | None,
    exit_file: Path | None,
    detach: bool,
    exit_command: tuple[str, ...] = (),
    log_copies: Sequence[LogCopy] = (),
    exit_hook: int = -1,
) -> NoReturn:
    """Run the monitor in the freshly forked child; never returns.

    With ``log_copies`` the container's output arrives on pipes that the monitor copies into
    the log files (and their line-time indexes) until they end, before recording the exit.
    ``exit_hook`` is the write end of the pipe of an exit command's helper its parent started
    (a spawner, while this runs); without one the monitor starts the helper itself.
    """
    status = init.SETUP_FAILED
    try:
        if detach:
            os.setsid()
        linux.prctl(linux.PR_SET_CHILD_SUBREAPER, 1)
        if plan.userns:
            linux.unshare(linux.CLONE_NEWUSER)
        channel.send(sock, "userns")
        message = channel.receive(sock)
        if message is None or message.kind != "continue":
            raise ContainerError("waiting for the id maps: the caller went away")
        hook = exit_hook
        if hook < 0 and exit_command:
            hook = _prepare_exit_command(exit_command)
        # Here, between the user namespace (only a single-threaded process may enter one) and
        # the pid namespace (after which this process may no longer create threads). Nothing
        # writes to the pipes before init runs the command, so the thread idles in select()
        # while init is forked.
        copier = _start_log_copies(log_copies)
        # Only the children of this process enter the new pid namespace: init becomes pid 1.
        if "pid" not in plan.spec.host_namespaces:
            linux.unshare(linux.CLONE_NEWPID)
        pid = os.fork()
        if pid == 0:
            init.run(plan, sock)
        channel.send(sock, "pid", {"pid": pid})
        sock.close()
        _let_go_of_caller(hook, *(fd for copy in log_copies for fd in copy.fds))
        reaper.forward_signals(pid)
        status = reaper.reap_until(pid)
        if "pid" in plan.spec.host_namespaces and cgroup is not None:
            # No pid namespace ends with init and takes the rest along: end them here, as
            # runc does for a container that shares the host's.
            _kill_remaining(cgroup)
        if copier is not None:
            copier.join(LOG_DRAIN_TIMEOUT)
        oom_killed = False
        if cgroup is not None:
            oom_killed = cgroup.oom_killed()
            # On failure the caller's wait() tries again and reports it.
            with contextlib.suppress(ContainerError):
                cgroup.remove()
        if exit_file is not None:
            write_exit_file(exit_file, status, oom_killed=oom_killed)
    except BaseException as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        with contextlib.suppress(OSError):
            channel.send(sock, "error", {"message": f"starting the monitor: {why}"})
    finally:
        os._exit(status)
