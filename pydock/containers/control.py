"""Verbs on a container's run beyond start and stop: restart (by hand or by its policy), rename,
pause and unpause (the cgroup freezer), top, stats and update (the cgroup's figures and limits).

A run's cgroup is recorded when it starts (``ContainerRecord.cgroup``); the monitor removes it
when the run ends, so a verb that needs it works on running containers only.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import runtime
from pydock.containers import attach, lifecycle
from pydock.containers.config import (
    check_name,
    parse_cpus,
    parse_memory,
    parse_restart_policy,
)
from pydock.containers.errors import (
    ContainerConfigError,
    ContainerConflictError,
    ContainerStartError,
)
from pydock.containers.state import ContainerState
from pydock.errors import PydockError
from pydock.store import ContainerRecord

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager

# A policy restart waits 100 ms, doubled for each restart before it, at most a minute (Docker's
# back-off), so that a command that fails at once does not spin.
RESTART_DELAY = 0.1
RESTART_DELAY_MAX = 60.0


def start_detached(manager: ContainerManager, record: ContainerRecord) -> ContainerRecord:
    """Start ``record`` in the background (its output to its logs); the running record."""
    config = manager.config_of(record)
    attachment = attach.choose(
        manager.files(record.id), detach=True, tty=config.tty, interactive=False, keep_logs=True
    )
    try:
        hook = lifecycle.exit_command(manager, record)
        started = lifecycle.start(
            manager,
            record,
            attachment.stdio(),
            exit_command=hook,
            log_copies=attachment.log_copies(),
        )
        attachment.started(started.container)
    finally:
        attachment.close()
    return started.record


def restart(manager: ContainerManager, record: ContainerRecord, timeout: float | None) -> None:
    """``restart``: stop the container if it runs, then start it in the background."""
    lifecycle.stop(manager, record, timeout)
    current = manager.store.containers.get(record.id)
    if current is None:
        raise ContainerConflictError(f"restarting container {record.name}: it was removed")
    start_detached(manager, current)


def restart_by_policy(manager: ContainerManager, record: ContainerRecord) -> bool:
    """After a run ended: start it again if its ``--restart`` policy says so; whether it did."""
    policy = parse_restart_policy(manager.config_of(record).restart)
    status = record.exit_code if record.exit_code is not None else 0
    if record.state != ContainerState.EXITED or not policy.wants_restart(
        status, record.restart_count, stopped=record.stopped
    ):
        return False
    time.sleep(min(RESTART_DELAY * 2**record.restart_count, RESTART_DELAY_MAX))
    current = manager.store.containers.get(record.id)
    # Someone else started, stopped or removed it meanwhile: theirs is the last word.
    if current is None or current.stopped or current.finished != record.finished:
        return False
    if current.state != ContainerState.EXITED:
        return False
    manager.store.containers.update(record.id, restart_count=record.restart_count + 1)
    with contextlib.suppress(ContainerConflictError, ContainerStartError):
        start_detached(manager, replace(current, restart_count=record.restart_count + 1))
        return True
    return False


def rename(manager: ContainerManager, record: ContainerRecord, new_name: str) -> None:
    """``rename``: give the container another name (one no other container has)."""
    name = check_name(new_name.removeprefix("/"))
    if name == record.name:
        raise ContainerConflictError(f"renaming container {record.name}: it already has that name")
    taken = manager.store.containers.by_name(name)
    if taken is not None:
        raise ContainerConflictError(
            f"renaming container {record.name}: the name {name!r} is already in use by "
            f"container {taken.id[:12]}"
        )
    try:
        manager.store.containers.update(record.id, name=name)
    except Exception as exc:  # the unique index: another process took the name just now
        if "UNIQUE" not in str(exc):
            raise
        raise ContainerConflictError(
            f"renaming container {record.name}: the name {name!r} is already in use"
        ) from exc


def _running(manager: ContainerManager, record: ContainerRecord, doing: str) -> ContainerRecord:
    current = lifecycle.refresh(manager, record)
    if current is None or current.state != ContainerState.RUNNING:
        raise ContainerConflictError(f"{doing} container {record.name}: it is not running")
    return current


def _cgroup(record: ContainerRecord, doing: str) -> runtime.Cgroup:
    cgroup = lifecycle.cgroup_of(record)
    if cgroup is None:
        raise ContainerConflictError(
            f"{doing} container {record.name}: it has no cgroup (cgroups need root, or a "
            "delegated cgroup v2 tree)"
        )
    return cgroup


def pause(manager: ContainerManager, record: ContainerRecord) -> None:
    """``pause``: freeze every process of the container (cgroup freezer)."""
    current = _running(manager, record, "pausing")
    if current.paused:
        raise ContainerConflictError(f"pausing container {record.name}: it is already paused")
    try:
        _cgroup(current, "pausing").freeze(True)
    except runtime.CgroupError as exc:
        raise ContainerConflictError(f"pausing container {record.name}: {exc}") from exc
    manager.store.containers.update(record.id, paused=True)


def unpause(manager: ContainerManager, record: ContainerRecord) -> None:
    """``unpause``: let a paused container's processes run again."""
    current = _running(manager, record, "unpausing")
    if not current.paused:
        raise ContainerConflictError(f"unpausing container {record.name}: it is not paused")
    lifecycle.thaw(manager, current)


def container_pids(record: ContainerRecord) -> list[int]:
    """The host pids of the container's processes: those in its first process's pid namespace
    (which also finds ``exec``'d processes, and works without a cgroup)."""
    if record.pid is None:
        return []
    try:
        namespace = os.readlink(f"/proc/{record.pid}/ns/pid")
    except OSError:
        return []
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError):
                if os.readlink(f"/proc/{entry}/ns/pid") == namespace:
                    found.append(int(entry))
    return sorted(found)


def top(manager: ContainerManager, record: ContainerRecord, ps_args: tuple[str, ...]) -> str:
    """``top``: the host's ``ps`` (default ``-ef``) limited to the container's processes."""
    current = _running(manager, record, "listing the processes of")
    pids = set(container_pids(current))
    try:
        done = subprocess.run(
            ["ps", *(ps_args or ("-ef",))], capture_output=True, text=True, timeout=30, check=False
        )
    except OSError as exc:
        raise PydockError(f"listing the processes of {record.name}: ps: {exc.strerror}") from exc
    if done.returncode != 0:
        why = done.stderr.strip().splitlines()[0] if done.stderr.strip() else "failed"
        raise ContainerConfigError(f"listing the processes of {record.name}: ps: {why}")
    lines = done.stdout.splitlines()
    if not lines or "PID" not in lines[0].split():
        raise ContainerConfigError(
            f"listing the processes of {record.name}: ps output has no PID column"
        )
    column = lines[0].split().index("PID")
    kept = [lines[0]]
    for line in lines[1:]:
        words = line.split()
        if len(words) > column and words[column].isdigit() and int(words[column]) in pids:
            kept.append(line)
    return "\n".join(kept) + "\n"


@dataclass(frozen=True)
class Usage:
    """One ``stats`` sample of a container."""

    record: ContainerRecord
    cpu_percent: float
    memory: int
    memory_limit: int
    pids: int


def host_memory() -> int:
    """The host's memory in bytes (the limit of a container that has none); 0 if unknown."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def host_cpu_ns() -> int:
    """CPU time the host has spent, all CPUs together, in nanoseconds (``/proc/stat``)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        with open("/proc/stat") as source:
            fields = source.readline().split()
        ticks = sum(int(field) for field in fields[1:8])  # user to softirq, as Docker sums them
        return ticks * 1_000_000_000 // os.sysconf("SC_CLK_TCK")
    return 0


def cgroup_usage(
    manager: ContainerManager, record: ContainerRecord
) -> tuple[ContainerRecord, runtime.CgroupUsage]:
    """One reading of a running container's cgroup figures (the API's ``stats``)."""
    current = _running(manager, record, "reading the stats of")
    cgroup = _cgroup(current, "reading the stats of")
    try:
        return current, cgroup.usage()
    except OSError as exc:  # the run ended and its cgroup went meanwhile
        why = (exc.strerror or str(exc)).lower()
        doing = f"reading the stats of container {record.name}"
        raise ContainerConflictError(f"{doing}: {why}") from exc


def usage(
    manager: ContainerManager, records: list[ContainerRecord], interval: float = 0.5
) -> list[Usage]:
    """``stats``: CPU (over ``interval`` seconds), memory and processes of running containers."""
    groups = []
    for record in records:
        current = _running(manager, record, "reading the stats of")
        groups.append((current, _cgroup(current, "reading the stats of")))
    first = [(time.monotonic(), cgroup.usage()) for _, cgroup in groups]
    time.sleep(interval)  # a measuring window, as Docker's two samples
    found = []
    for (record, cgroup), (then, before) in zip(groups, first, strict=True):
        now, after = time.monotonic(), cgroup.usage()
        elapsed_ns = max(1.0, (now - then) * 1e9)
        cpu = max(0, after.cpu_ns - before.cpu_ns) / elapsed_ns * 100
        limit = after.memory_limit or host_memory()
        found.append(Usage(record, cpu, after.memory, limit, after.pids))
    return found


def update(
    manager: ContainerManager,
    record: ContainerRecord,
    *,
    memory: str | None,
    cpus: str | None,
    pids_limit: int | None,
    restart: str | None,
) -> None:
    """``update``: new limits (and restart policy) for the next runs and, live, this one."""
    config = manager.config_of(record)
    if memory is None and cpus is None and pids_limit is None and restart is None:
        raise ContainerConfigError(f"updating container {record.name}: nothing to update")
    new_memory = parse_memory(memory) if memory is not None else None
    new_cpus = parse_cpus(cpus) if cpus is not None else None
    new_pids = pids_limit if pids_limit is not None and pids_limit > 0 else None
    updated = replace(
        config,
        memory=new_memory if memory is not None else config.memory,
        cpus=new_cpus if cpus is not None else config.cpus,
        pids_limit=new_pids if pids_limit is not None else config.pids_limit,
    )
    if restart is not None:
        policy = parse_restart_policy(restart)
        if config.auto_remove and policy.name != "no":
            raise ContainerConfigError(
                f"updating container {record.name}: --restart conflicts with --rm"
            )
        updated = replace(updated, restart=str(policy))
    current = lifecycle.refresh(manager, record, auto_remove=False) or record
    live = runtime.CgroupLimits(memory=new_memory, cpus=new_cpus, pids=new_pids)
    if current.state == ContainerState.RUNNING and not live.is_empty():
        try:
            _cgroup(current, "updating").update(live)
        except runtime.CgroupError as exc:
            raise ContainerConfigError(f"updating container {record.name}: {exc}") from exc
    manager.store.containers.update(record.id, config=updated.to_json())
