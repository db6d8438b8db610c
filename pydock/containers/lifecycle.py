"""Containers with a process: start, notice the exit, stop, kill, wait.

A started container's monitor outlives the pydock process that started it and writes the exit
status into ``<root>/containers/<id>/exit``. Whoever sees the status first (the foreground
``run``, the exit command the monitor starts for a detached container, or any later command
that reads the container) releases the root filesystem mount and records the exit; the
store's compare-and-set update makes sure only one of them records it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import runtime
from pydock.clock import now_rfc3339
from pydock.containers import health, hostopts, networking
from pydock.containers import volumes as named_volumes
from pydock.containers.config import ContainerConfig, capabilities_of, seccomp_of
from pydock.containers.errors import ContainerConflictError, ContainerStartError
from pydock.containers.state import Action, ContainerState, transition
from pydock.containers.storage import ContainerLayers
from pydock.errors import PydockError
from pydock.store import ContainerRecord, is_owner_alive, owner_of
from runtime.logindex import LogCopy

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager

# Status recorded when the monitor vanished without writing one (it was killed, and init with it).
LOST_STATUS = 128 + signal.SIGKILL
POLL_SECONDS = 0.1


@dataclass
class Started:
    """A container this process started: its record, runtime handle and storage."""

    record: ContainerRecord
    container: runtime.Container
    storage: ContainerLayers


def runtime_spec(
    record: ContainerRecord,
    config: ContainerConfig,
    rootfs: Path,
    etc_files: tuple[runtime.BindMount, ...] = (),
) -> runtime.ContainerSpec:
    """The runtime's spec of a container whose root filesystem is mounted at ``rootfs``.

    ``etc_files`` (the generated /etc/hosts, ...) are bound before the volumes, so a volume on
    one of those paths wins, as in Docker.
    """
    doing = f"starting container {record.name}"
    try:
        user = runtime.resolve_user(
            rootfs, config.user, container_id=record.id, group_add=config.group_add
        )
        caps = capabilities_of(config)
        devices = tuple(
            runtime.Device(Path(source), destination, permissions)
            for source, destination, permissions in map(hostopts.device_parts, config.devices)
        )
        limits = runtime.CgroupLimits(
            config.memory,
            config.cpus,
            config.pids_limit,
            cpu_shares=config.cpu_shares,
            cpuset_cpus=config.cpuset_cpus or None,
            memory_swap=config.memory_swap,
            memory_reservation=config.memory_reservation,
            device_denies=tuple(filter(None, (device.cgroup_deny() for device in devices))),
            cpu_period=config.cpu_period,
            cpu_quota=config.cpu_quota,
            cpuset_mems=config.cpuset_mems or None,
        )
        rlimits = tuple(runtime.Rlimit(*hostopts.ulimit_parts(entry)) for entry in config.ulimits)
        mounts = etc_files + tuple(
            runtime.BindMount(Path(v.source), v.destination, v.readonly)
            for v in config.volumes
            if v.kind != "tmpfs"
        )
        tmpfs = tuple(
            runtime.TmpfsMount(v.destination, v.options)
            for v in config.volumes
            if v.kind == "tmpfs"
        )
        return runtime.ContainerSpec(
            container_id=record.id,
            rootfs=rootfs,
            args=config.args,
            env=config.env,
            cwd=config.workdir,
            user=user,
            hostname=config.hostname,
            readonly_rootfs=config.read_only,
            mounts=mounts,
            tmpfs=tmpfs,
            network=runtime_network(config.network),
            capabilities=caps,
            no_new_privileges=config.no_new_privileges,
            tty=config.tty,
            # Always a cgroup where the host allows: stats, top, pause and the OOM count.
            cgroup=limits,
            init=config.init,
            seccomp=seccomp_of(config),
            # --privileged, as Docker: no masked or read-only paths, the host's devices.
            masked_paths=() if config.privileged else runtime.DEFAULT_MASKED_PATHS,
            readonly_paths=() if config.privileged else runtime.DEFAULT_READONLY_PATHS,
            host_devices=config.privileged,
            writable_sysfs=config.privileged,
            rlimits=rlimits,
            domainname=config.domainname,
            shm_size=config.shm_size or runtime.DEFAULT_SHM_SIZE,
            sysctls=tuple(
                (name, value) for name, _, value in (s.partition("=") for s in config.sysctls)
            ),
            host_namespaces=frozenset(
                name
                for name, mode in (
                    ("pid", config.pid_mode),
                    ("ipc", config.ipc_mode),
                    ("uts", config.uts_mode),
                    ("cgroup", config.cgroupns_mode),
                )
                if mode == "host"
            ),
            devices=devices,
            oom_score_adj=config.oom_score_adj,
        )
    except runtime.ContainerError as exc:
        raise ContainerStartError(f"{doing}: {exc}") from exc


def runtime_network(network: str) -> runtime.NetworkMode:
    """``host`` shares the host's namespace; every other network gets a namespace of its own."""
    return runtime.NetworkMode.HOST if network == "host" else runtime.NetworkMode.NONE


def start(
    manager: ContainerManager,
    record: ContainerRecord,
    stdio: tuple[int, int, int],
    *,
    exit_command: tuple[str, ...] = (),
    detach: bool = True,
    log_copies: Sequence[LogCopy] = (),
) -> Started:
    """Mount the root filesystem and start the container's command.

    The command runs when this returns; a command that cannot be executed raises
    ``ContainerStartError`` with exit code 126 or 127 after the exit was recorded. Without
    ``detach`` this process keeps its reference to the mount, to drop it in :func:`on_exit`
    (or hand it over with ``Started.storage.keep_mounted`` if it must leave early).
    ``log_copies`` are output pipes the container's monitor copies into its logs.
    """
    transition(record.state, Action.START, name=record.name)
    config = manager.config_of(record)
    storage = manager.storage(record.storage)
    files = manager.files(record.id)
    files.create()
    files.exit_file.unlink(missing_ok=True)
    rootfs = storage.mount(record.rw_layer)
    plumbing = networking.Plumbing(manager, record, config)
    try:
        named_volumes.populate(manager.store, manager.root, config.volumes, rootfs)
        plumbing.attach()
        spec = runtime_spec(record, config, rootfs, plumbing.mounts(files.directory))
        container = runtime.create(
            spec,
            stdin=stdio[0],
            stdout=stdio[1],
            stderr=stdio[2],
            exit_file=files.exit_file,
            detach=True,
            exit_command=exit_command,
            log_copies=log_copies,
        )
        try:
            plumbing.connect(container.pid)
        except BaseException:
            container.delete(force=True)
            raise
    except runtime.ContainerError as exc:
        plumbing.abandon()
        storage.unmount(record.rw_layer)
        _keep_error(manager, record, _reason(exc))
        raise ContainerStartError(f"starting container {record.name}: {_reason(exc)}") from exc
    except ContainerStartError as exc:
        storage.unmount(record.rw_layer)
        _keep_error(manager, record, str(exc).removeprefix(f"starting container {record.name}: "))
        raise
    except BaseException:
        plumbing.abandon()
        storage.unmount(record.rw_layer)
        raise
    if detach:
        # From here the mount is the container's: it stays when this process ends.
        storage.keep_mounted(record.rw_layer)
    running = manager.store.containers.update(
        record.id,
        expect=(ContainerState.CREATED, ContainerState.EXITED),
        state=ContainerState.RUNNING,
        pid=container.pid,
        monitor=owner_of(container.monitor_pid),
        started=now_rfc3339(),
        finished=None,
        exit_code=None,
        error=None,
        owner=None,
        oom_killed=False,
        paused=False,
        stopped=False,
        cgroup=container.cgroup.to_json() if container.cgroup is not None else None,
    )
    if not running:
        container.delete(force=True)
        plumbing.abandon()
        storage.release(record.rw_layer)
        raise ContainerConflictError(f"starting container {record.name}: another pydock did")
    plumbing.done()
    record = manager.store.containers.get(record.id) or record
    try:
        container.start()
    except runtime.ExecError as exc:
        on_exit(manager, record, exc.exit_code, auto_remove=False, error=_reason(exc))
        raise ContainerStartError(
            f"starting container {record.name}: {_reason(exc)}", exit_code=exc.exit_code
        ) from exc
    except runtime.ContainerError as exc:
        status = container.poll()
        if status is None:
            container.kill()
            status = container.wait()
        on_exit(manager, record, status, auto_remove=False, error=_reason(exc))
        raise ContainerStartError(f"starting container {record.name}: {_reason(exc)}") from exc
    check = health.Healthcheck.from_text(config.healthcheck)
    if check is not None and check.is_active:
        health.spawn(
            pydock_command(manager, record), record.id, container.pid, files.directory, check
        )
    return Started(record, container, storage)


def _keep_error(manager: ContainerManager, record: ContainerRecord, reason: str) -> None:
    """A start that failed before the command ran: the container stays, with the reason (as
    Docker's ``State.Error``), and no process owns it any more."""
    manager.store.containers.update(
        record.id, expect=(ContainerState.CREATED, ContainerState.EXITED), error=reason, owner=None
    )


def _reason(exc: runtime.ContainerError) -> str:
    """The runtime's message without its own ``starting container <id>:`` prefix."""
    prefix = f"starting container {exc.container_id}: "
    return exc.message.removeprefix(prefix) if exc.container_id else exc.message


def on_exit(
    manager: ContainerManager,
    record: ContainerRecord,
    status: int,
    *,
    auto_remove: bool = True,
    error: str | None = None,
) -> ContainerRecord | None:
    """Record that the container exited with ``status``; release its mount; honour ``--rm``.

    Returns the updated record, or ``None`` when the container was removed.
    """
    storage = manager.storage(record.storage)
    with contextlib.suppress(PydockError):
        storage.release(record.rw_layer)
    row = manager.store.containers.get(record.id)
    cgroup = cgroup_of(record)
    # The run's monitor died before it could remove its cgroup (killed, or a reboot).
    same_run = row is not None and row.monitor == record.monitor
    if cgroup is not None and same_run and not is_owner_alive(record.monitor):
        with contextlib.suppress(runtime.CgroupError):
            cgroup.remove()
    networking.release(manager, record.id)
    claimed = manager.store.containers.update(
        record.id,
        expect=(ContainerState.RUNNING,),
        state=ContainerState.EXITED,
        exit_code=status,
        finished=now_rfc3339(),
        error=error,
        oom_killed=runtime.read_oom_killed(manager.files(record.id).exit_file),
        paused=False,
        cgroup=None,
    )
    current = manager.store.containers.get(record.id)
    if claimed and current is not None and auto_remove and manager.config_of(current).auto_remove:
        manager.remove(current)
        return None
    return current


def exit_status(manager: ContainerManager, record: ContainerRecord) -> int | None:
    """The status of the container's current run once it has ended, else ``None``."""
    exit_file = manager.files(record.id).exit_file
    status = runtime.read_exit_file(exit_file)
    if status is not None or is_owner_alive(record.monitor):
        return status
    # The monitor is gone: it wrote the file just now, or it was killed before it could.
    status = runtime.read_exit_file(exit_file)
    return LOST_STATUS if status is None else status


def refresh(
    manager: ContainerManager, record: ContainerRecord, *, auto_remove: bool = True
) -> ContainerRecord | None:
    """``record`` brought up to date: a run that has ended is recorded as exited."""
    return catch_up(manager, record, auto_remove=auto_remove)[0]


def catch_up(
    manager: ContainerManager, record: ContainerRecord, *, auto_remove: bool = True
) -> tuple[ContainerRecord | None, int | None]:
    """:func:`refresh`, and the status of the run it found ended (``None`` if it runs or had
    ended before): the one place it is left once ``--rm`` has removed the container."""
    if record.state != ContainerState.RUNNING:
        return record, None
    status = exit_status(manager, record)
    error = None
    if status is None:
        error = manager.storage(record.storage).mount_problem(record.rw_layer)
        if error is None:
            return record, None
        # Its root file system is gone (the FUSE process died): the run cannot go on.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            if record.pid is not None:
                os.kill(record.pid, signal.SIGKILL)
        status = wait_exit(manager, record, timeout=10)
        if status is None:
            return record, None
    return on_exit(manager, record, status, auto_remove=auto_remove, error=error), status


def signal_container(manager: ContainerManager, record: ContainerRecord, number: int) -> None:
    """Send signal ``number`` to the container's first process."""
    current = refresh(manager, record, auto_remove=False) or record
    transition(current.state, Action.KILL, name=current.name)
    if current.pid is None or exit_status(manager, current) is not None:
        raise ContainerConflictError(f"killing container {current.name}: it is not running")
    with contextlib.suppress(ProcessLookupError):
        os.kill(current.pid, number)
    if current.paused:
        # As Docker: a signal to a paused container thaws it, so that it can act on it.
        thaw(manager, current)


def cgroup_of(record: ContainerRecord) -> runtime.Cgroup | None:
    """The cgroup of the container's current run, while it is there."""
    if record.cgroup is None:
        return None
    cgroup = runtime.Cgroup.from_json(record.id, record.cgroup)
    return cgroup if cgroup.exists() else None


def thaw(manager: ContainerManager, record: ContainerRecord) -> None:
    """Unfreeze a paused container's cgroup and record it."""
    cgroup = cgroup_of(record)
    if cgroup is not None:
        try:
            cgroup.freeze(False)
        except runtime.CgroupError as exc:
            raise ContainerConflictError(f"unpausing container {record.name}: {exc}") from exc
    manager.store.containers.update(record.id, paused=False)


def wait_exit(
    manager: ContainerManager, record: ContainerRecord, timeout: float | None = None
) -> int | None:
    """Block until the container's current run ends; its status, or ``None`` on timeout."""
    deadline = None if timeout is None else time.monotonic() + timeout
    monitor = _open_monitor(record.monitor)
    try:
        while (status := exit_status(manager, record)) is None:
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return None
            if monitor is None:
                time.sleep(POLL_SECONDS if left is None else min(POLL_SECONDS, left))
            else:
                select.select([monitor], [], [], left)
        return status
    finally:
        if monitor is not None:
            os.close(monitor)


def _open_monitor(owner: str | None) -> int | None:
    """A pidfd of the monitor named by ``owner`` while it is that process, else ``None``."""
    pid_text = (owner or "").partition(":")[0]
    if not pid_text.isdigit():
        return None
    try:
        fd = os.pidfd_open(int(pid_text))
    except OSError:
        return None
    if not is_owner_alive(owner):  # checked after opening: the pid cannot be reused now
        os.close(fd)
        return None
    return fd


def stop(manager: ContainerManager, record: ContainerRecord, timeout: float | None = None) -> None:
    """The stop signal (``--stop-signal``, default SIGTERM), then SIGKILL after ``timeout``
    seconds (default ``--stop-timeout``, else 10); returns once it has exited. The container's
    restart policy leaves it stopped."""
    manager.store.containers.update(record.id, stopped=True)
    current = refresh(manager, record)
    if current is None or current.state != ContainerState.RUNNING:
        return
    config = manager.config_of(current)
    if timeout is None:
        timeout = float(config.stop_timeout if config.stop_timeout is not None else 10)
    with contextlib.suppress(ContainerConflictError):
        signal_container(manager, current, signal.Signals[config.stop_signal])
    if wait_exit(manager, current, timeout) is None:
        kill_and_wait(manager, current)
    refresh(manager, current)


def kill_and_wait(manager: ContainerManager, record: ContainerRecord) -> None:
    """SIGKILL the container and wait for its monitor to record the exit."""
    with contextlib.suppress(ContainerConflictError):
        signal_container(manager, record, signal.SIGKILL)
    wait_exit(manager, record)


def wait(manager: ContainerManager, record: ContainerRecord) -> int:
    """``wait``: block until the container stops; its exit status."""
    current: ContainerRecord | None = record
    while current is not None and current.state == ContainerState.CREATED:
        time.sleep(POLL_SECONDS)  # as Docker: a created container is waited for until it ran
        current = manager.store.containers.get(record.id)
    if current is None:
        raise ContainerConflictError(f"waiting for container {record.name}: it was removed")
    if current.state == ContainerState.RUNNING:
        status = wait_exit(manager, current)
        refresh(manager, current)
        return LOST_STATUS if status is None else status
    return current.exit_code if current.exit_code is not None else 0


def exit_command(manager: ContainerManager, record: ContainerRecord) -> tuple[str, ...]:
    """The command a detached container's monitor runs when it exits: ``pydock cleanup``."""
    return (*pydock_command(manager, record), "cleanup", record.id)


def pydock_command(manager: ContainerManager, record: ContainerRecord) -> tuple[str, ...]:
    """The command line of a pydock on this root and ``record``'s storage, before its verb."""
    argv = [sys.executable, "-m", "pydock", "--root", str(manager.root)]
    argv += ["--run-root", str(manager.run_root)]
    argv += manager.drivers.storage_arguments(record.storage)
    return tuple(argv)
