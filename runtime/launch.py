"""``create`` and ``run``: fork the monitor and walk it and init through the set-up.

The monitor is forked here, or by the spawner a resident caller installed (see
:mod:`runtime.spawner`); the steps are the same either way.

The caller answers each step over the seqpacket channel (see :mod:`runtime.channel`):

    monitor: "userns"   caller writes the id maps (runc's order: the user namespace first)
    monitor: "pid"      v2: caller moves init into the cgroup while init builds the rootfs
                        (v1: init moved itself), then says "continue"; init unshares its
                        cgroup ns only after that
    init:    "console"  with a tty: the master side of the container's terminal
    init:    "ready"    set-up done: ``create`` returns a CREATED container
    caller:  "start"    init executes the command: end-of-file, or "exec-error"

A failure at any step kills what was forked, removes the cgroup and raises.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
from collections.abc import Sequence
from pathlib import Path

from . import cgroups, channel, idmap, init, seccomp
from . import spawner as spawners
from .cgroups import Cgroup
from .container import Container, reap_status, report_error
from .errors import CgroupError, ContainerError, InvalidSpecError, SeccompError, SetupError
from .logindex import LogCopy
from .spec import ContainerSpec

TTY_GROUP = 5


def _check(spec: ContainerSpec, mapping: idmap.IdMapping | None) -> Path:
    """Validate what can be checked before forking; return the rootfs's real path."""
    where = f"creating container {spec.container_id}"
    root = spec.rootfs.resolve()
    if not root.is_dir():
        raise InvalidSpecError(
            f"{where}: rootfs {spec.rootfs} is not a directory",
            container_id=spec.container_id,
            path=spec.rootfs,
        )
    for volume in spec.mounts:
        if not volume.source.exists():
            raise InvalidSpecError(
                f"{where}: bind source {volume.source} does not exist",
                container_id=spec.container_id,
                path=volume.source,
            )
    user = spec.user
    if mapping is not None and not (mapping.maps_uid(user.uid) and mapping.maps_gid(user.gid)):
        raise InvalidSpecError(
            f"{where}: user {user.uid}:{user.gid} is not mapped in the user namespace (without "
            "newuidmap and /etc/subuid ranges only root is)",
            container_id=spec.container_id,
        )
    return root


def _expect(sock: socket.socket, kinds: tuple[str, ...], container_id: str) -> channel.Message:
    """Receive the next set-up message, which must be one of ``kinds``; raise reported errors."""
    where = f"creating container {container_id}"
    try:
        message = channel.receive(sock)
    except TimeoutError as exc:
        raise ContainerError(
            f"{where}: set-up did not answer in time", container_id=container_id
        ) from exc
    if message is None:
        raise ContainerError(f"{where}: set-up ended without a report", container_id=container_id)
    if message.kind in ("error", "exec-error"):
        raise report_error(message, container_id)
    if message.kind not in kinds:
        raise ContainerError(
            f"{where}: expected {' or '.join(kinds)} from set-up, got {message.kind!r}",
            container_id=container_id,
        )
    return message


def _raise_reported(sock: socket.socket, container_id: str) -> None:
    """Raise the failure init already reported, if any: init sets up while the caller moves it
    into its cgroup, and a move fails once init has died of its own error."""
    ready, _, _ = select.select([sock], [], [], 0)
    if not ready:
        return
    message = channel.receive(sock)
    if message is not None and message.kind in ("error", "exec-error"):
        raise report_error(message, container_id)


def _write_maps(pid: int, mapping: idmap.IdMapping, container_id: str) -> None:
    try:
        idmap.write(pid, mapping)
    except subprocess.CalledProcessError as exc:
        why = exc.stderr.decode(errors="replace").strip() if exc.stderr else str(exc)
        raise SetupError(
            f"writing the id maps of container {container_id}: {why}", container_id=container_id
        ) from exc
    except OSError as exc:
        raise SetupError(
            f"writing the id maps of container {container_id}: {exc.strerror}",
            errno=exc.errno,
            container_id=container_id,
            path=exc.filename,
        ) from exc


def _abandon(monitor: int, pid: int | None, cgroup: Cgroup | None, sock: socket.socket) -> None:
    """Undo a failed create: kill init and the monitor (``monitor`` is a pidfd of it, closed
    here), reap it (a spawner reaps its own), remove the cgroup."""
    if pid is not None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    with contextlib.suppress(ProcessLookupError):
        signal.pidfd_send_signal(monitor, signal.SIGKILL)
    select.select([monitor], [], [])
    reap_status(monitor)
    os.close(monitor)
    sock.close()
    if cgroup is not None:
        cgroup.remove()


def create(
    spec: ContainerSpec,
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    exit_file: Path | None = None,
    detach: bool = False,
    cgroup_parent: str | None = None,
    id_mapping: idmap.IdMapping | None = None,
    exit_command: tuple[str, ...] = (),
    log_copies: Sequence[LogCopy] = (),
    timeout: float = 30.0,
) -> Container:
    """Set up ``spec`` in new namespaces and return it CREATED, ready for ``start``.

    ``stdin``/``stdout``/``stderr`` are descriptors for the command (default: the caller's).
    With ``detach`` the monitor starts its own session so it outlives the caller's terminal;
    ``exit_file`` is where it records the exit status either way, and ``exit_command`` (argv)
    is started once the status is recorded; ``log_copies`` are output pipes the monitor copies
    into log files (the caller closes its write ends once created). ``id_mapping`` overrides the
    user-namespace maps that :func:`runtime.idmap.plan` would choose. A spawner's monitor is
    not this process's child: its container's status comes from ``exit_file`` alone.
    """
    use_userns = spec.userns if spec.userns is not None else os.geteuid() != 0
    mapping = (id_mapping or idmap.plan()) if use_userns else None
    root = _check(spec, mapping)
    if spec.seccomp is not None:
        # Compiled here, so init has it after pivot_root, where only the image's files are
        # left; a caller that starts many containers compiles each profile once.
        seccomp.library()
        try:
            seccomp.compile_program(spec.seccomp, spec.capabilities)
        except SeccompError as exc:
            raise SeccompError(
                f"starting container {spec.container_id}: {exc}",
                errno=exc.errno,
                container_id=spec.container_id,
            ) from exc
    here = idmap.current()
    cgroup = None
    handles: tuple[int, ...] = ()
    if spec.cgroup is not None:
        cgroup = cgroups.create_tracked(spec.container_id, spec.cgroup, parent=cgroup_parent)
        if cgroup is not None:
            try:
                handles = cgroup.join_handles()
            except CgroupError:
                cgroup.remove()
                raise
    plan = init.LaunchPlan(
        spec=spec,
        root=root,
        userns=use_userns,
        setgroups_allowed=(
            mapping.allows_setgroups if mapping is not None else idmap.setgroups_allowed_here()
        ),
        nested=not idmap.is_initial(here),
        pts_gid=TTY_GROUP if (mapping or here).maps_gid(TTY_GROUP) else None,
        stdio=(
            0 if stdin is None else stdin,
            1 if stdout is None else stdout,
            2 if stderr is None else stderr,
        ),
        cgroup_handles=handles,
    )
    job = spawners.MonitorJob(plan, cgroup, exit_file, detach, exit_command, len(log_copies))
    ours, theirs = channel.pair()
    monitor_pidfd: int | None = None
    spawner = spawners.installed()
    try:
        if spawner is not None:
            monitor_pid, monitor_pidfd = spawner.spawn(job, theirs, log_copies)
        else:
            try:
                monitor_pid = os.fork()
            except OSError as exc:
                raise ContainerError(
                    f"creating container {spec.container_id}: fork: {exc.strerror}",
                    container_id=spec.container_id,
                ) from exc
    except ContainerError:
        ours.close()
        theirs.close()
        for fd in handles:
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        raise
    if monitor_pid == 0:
        ours.close()
        job.run(theirs, log_copies)
    theirs.close()
    for fd in handles:  # init's copies are the monitor's until it forks init
        os.close(fd)
    if monitor_pidfd is None:
        monitor_pidfd = os.pidfd_open(monitor_pid)
    ours.settimeout(timeout)
    pid: int | None = None
    console: int | None = None
    try:
        _expect(ours, ("userns",), spec.container_id)
        if mapping is not None:
            _write_maps(monitor_pid, mapping, spec.container_id)
        channel.send(ours, "continue")
        pid = _expect(ours, ("pid",), spec.container_id).number("pid")
        if pid is None:
            raise ContainerError(f"creating container {spec.container_id}: no pid reported")
        if cgroup is not None and not handles:
            try:
                cgroup.add(pid)
            except CgroupError:
                _raise_reported(ours, spec.container_id)
                raise
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            # init may have failed meanwhile: its report, read next, says why.
            channel.send(ours, "continue")
        steps = ("console", "ready")
        while (message := _expect(ours, steps, spec.container_id)).kind == "console":
            console = message.fd
        return Container(
            spec,
            monitor_pid=monitor_pid,
            pid=pid,
            sock=ours,
            cgroup=cgroup,
            console_fd=console,
            monitor_pidfd=monitor_pidfd,
            exit_file=exit_file,
        )
    except BaseException:
        if console is not None:
            os.close(console)
        _abandon(monitor_pidfd, pid, cgroup, ours)
        raise


def run(
    spec: ContainerSpec,
    *,
    stdin: int | None = None,
    stdout: int | None = None,
    stderr: int | None = None,
    exit_file: Path | None = None,
    detach: bool = False,
    cgroup_parent: str | None = None,
    id_mapping: idmap.IdMapping | None = None,
    exit_command: tuple[str, ...] = (),
    log_copies: Sequence[LogCopy] = (),
    timeout: float = 30.0,
) -> Container:
    """Create and start ``spec`` (see :func:`create`); the command is running on return."""
    container = create(
        spec,
        stdin=stdin,
        stdout=stdout,
        stderr=stderr,
        exit_file=exit_file,
        detach=detach,
        cgroup_parent=cgroup_parent,
        id_mapping=id_mapping,
        exit_command=exit_command,
        log_copies=log_copies,
        timeout=timeout,
    )
    container.start(timeout=timeout)
    return container
