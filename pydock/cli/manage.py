"""Container commands on a run's course: restart, rename, pause, unpause, top, stats, update,
attach. Failures of pydock give 125; ``attach`` passes the container's status on."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from pydock.cli.base import EXIT_FAILURE, fail
from pydock.containers import control, lifecycle
from pydock.containers.errors import ContainerConflictError
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.errors import PydockError
from pydock.format import human_size, table
from pydock.store import ContainerRecord

POLL_SECONDS = 0.1


def _each(
    engine: Engine, names: list[str], doing: str, action: Callable[[ContainerRecord], None]
) -> int:
    """Run ``action`` on each named container and print its name; 125 if any failed."""
    status = 0
    for name in names:
        try:
            action(engine.containers.lookup(name, doing=doing))
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        sys.stdout.write(f"{name}\n")
    return status


def cmd_restart(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Stop (if running) and start containers again."""
    manager = engine.containers
    timeout = None if args.time is None else float(args.time)
    return _each(engine, args.names, "restarting", lambda r: control.restart(manager, r, timeout))


def cmd_rename(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Give a container a new name."""
    manager = engine.containers
    control.rename(manager, manager.lookup(args.container, doing="renaming"), args.new_name)
    return 0


def cmd_pause(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Freeze every process of running containers."""
    manager = engine.containers
    return _each(engine, args.names, "pausing", lambda r: control.pause(manager, r))


def cmd_unpause(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Let the processes of paused containers run again."""
    manager = engine.containers
    return _each(engine, args.names, "unpausing", lambda r: control.unpause(manager, r))


def cmd_top(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show the processes of a running container (``ps`` options, default ``-ef``)."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="listing the processes of")
    out.write(control.top(manager, record, tuple(args.ps_options)))
    return 0


def _stats_rows(samples: list[control.Usage]) -> list[list[str]]:
    rows = []
    for sample in samples:
        share = sample.memory / sample.memory_limit * 100 if sample.memory_limit else 0.0
        rows.append(
            [
                sample.record.id[:12],
                sample.record.name,
                f"{sample.cpu_percent:.2f}%",
                f"{human_size(sample.memory)} / {human_size(sample.memory_limit)}",
                f"{share:.2f}%",
                str(sample.pids),
            ]
        )
    return rows


STATS_HEADERS = ["CONTAINER ID", "NAME", "CPU %", "MEM USAGE / LIMIT", "MEM %", "PIDS"]


def cmd_stats(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show CPU, memory and process figures of running containers, from their cgroups."""
    manager = engine.containers

    def chosen() -> list[ContainerRecord]:
        if args.names:
            return [manager.lookup(name, doing="reading the stats of") for name in args.names]
        found = []
        for record in manager.store.containers.list_containers():
            if record.state == ContainerState.RUNNING:
                current = lifecycle.refresh(manager, record)
                if current is not None and current.state == ContainerState.RUNNING:
                    found.append(current)
        return found

    while True:
        samples = control.usage(manager, chosen())
        if args.format == "json":
            for sample, row in zip(samples, _stats_rows(samples), strict=True):
                keys = ["ID", "Name", "CPUPerc", "MemUsage", "MemPerc", "PIDs"]
                document = dict(zip(keys, row, strict=True))
                document["Container"] = sample.record.id[:12]
                out.write(json.dumps(document) + "\n")
        else:
            if not args.no_stream and out.isatty():
                out.write("\x1b[2J\x1b[H")  # a fresh screen per sample, as Docker
            out.write(table(STATS_HEADERS, _stats_rows(samples)) + "\n")
        out.flush()
        if args.no_stream:
            return 0


def cmd_update(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Change the limits (and restart policy) of containers, live for running ones."""
    manager = engine.containers

    def update(record: ContainerRecord) -> None:
        control.update(
            manager,
            record,
            memory=args.memory,
            cpus=args.cpus,
            pids_limit=args.pids_limit,
            restart=args.restart,
        )

    return _each(engine, args.names, "updating", update)


@contextlib.contextmanager
def _proxied_signals(pid: int) -> Iterator[None]:
    """Pass SIGINT, SIGTERM, SIGHUP, SIGQUIT on to the container while attached (Docker's
    ``--sig-proxy``)."""

    def forward(number: int, _frame: object) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, number)

    numbers = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT)
    previous = {number: signal.signal(number, forward) for number in numbers}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _copy_new(path: Path, offset: int, target: int) -> int:
    """Copy what ``path`` has past ``offset`` to ``target``; the new offset."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return offset
    try:
        os.lseek(fd, offset, os.SEEK_SET)
        while data := os.read(fd, 1 << 16):
            view = memoryview(data)
            while view:
                view = view[os.write(target, view) :]
            offset += len(data)
    finally:
        os.close(fd)
    return offset


def cmd_attach(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show a running container's output from now on until it exits; its exit status."""
    manager = engine.containers
    record = lifecycle.refresh(manager, manager.lookup(args.container, doing="attaching to"))
    if record is None or record.state != ContainerState.RUNNING or record.pid is None:
        name = args.container
        raise ContainerConflictError(f"attaching to container {name}: it is not running")
    files = manager.files(record.id)
    out.flush()
    logs = [files.stdout_log, files.stderr_log]
    offsets = [_size(path) for path in logs]
    proxy = _proxied_signals(record.pid) if args.sig_proxy else contextlib.nullcontext()
    with proxy:
        while True:
            status = lifecycle.exit_status(manager, record)
            offsets = [_copy_new(p, o, fd) for p, o, fd in zip(logs, offsets, (1, 2), strict=True)]
            if status is not None:
                break
            time.sleep(POLL_SECONDS)
    lifecycle.refresh(manager, record)
    return status
