"""Container commands that start nothing: stop, kill, wait, rm, ps, inspect, logs, diff, commit,
export, cleanup. ``wait`` prints the exit status; pydock's own failures give 125.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from pydock.cli.base import EXIT_FAILURE, fail
from pydock.clock import utc_now
from pydock.containers import artifacts, lifecycle, logs, views
from pydock.containers.errors import ContainerConfigError
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.errors import PydockError
from pydock.format import table
from pydock.network.views import network_view, ports_text
from pydock.store import ContainerRecord


def cmd_inspect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print a JSON array describing each image or container."""
    found: list[dict[str, object]] = []
    status = 0
    for name in args.images:
        try:
            found.append(inspect_any(engine, name))
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
    out.write(json.dumps(found, indent=4) + "\n")
    return status


def _each(
    engine: Engine, names: list[str], doing: str, action: Callable[[ContainerRecord], str | None]
) -> int:
    """Run ``action`` on each named container; print what it returns; 125 if any failed."""
    status = 0
    for name in names:
        try:
            line = action(engine.containers.lookup(name, doing=doing))
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        if line is not None:
            sys.stdout.write(f"{line}\n")
    return status


def cmd_stop(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Stop running containers: SIGTERM, then SIGKILL after -t seconds."""
    manager = engine.containers

    def stop(record: ContainerRecord) -> str:
        lifecycle.stop(manager, record, float(args.time))
        return str(args.names[0]) if len(args.names) == 1 else record.name

    return _each(engine, args.names, "stopping", stop)


def cmd_kill(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Send a signal (default SIGKILL) to running containers."""
    number = parse_signal(args.signal)
    manager = engine.containers

    def kill(record: ContainerRecord) -> str:
        lifecycle.signal_container(manager, record, number)
        return record.name

    return _each(engine, args.names, "killing", kill)


def cmd_wait(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Wait for containers to stop and print their exit codes."""
    manager = engine.containers
    return _each(engine, args.names, "waiting for", lambda r: str(lifecycle.wait(manager, r)))


def cmd_rm(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove containers (-f: kill running ones first)."""
    manager = engine.containers

    def remove(record: ContainerRecord) -> str:
        manager.remove(record, force=args.force)
        return record.name

    return _each(engine, args.names, "removing", remove)


def cmd_ps(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List containers: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, NAMES."""
    manager = engine.containers
    records = []
    for record in manager.store.containers.list_containers():
        if record.state in (ContainerState.CREATING, ContainerState.REMOVING):
            continue
        current = lifecycle.refresh(manager, record)
        if current is not None and (args.all or current.state == ContainerState.RUNNING):
            records.append(current)
    now = utc_now()
    ports = {record.id: ports_text(manager.store, record) for record in records}
    if args.quiet:
        out.write("".join(f"{record.id[:12]}\n" for record in records))
    elif args.format == "json":
        out.write(
            "".join(
                json.dumps(views.ps_json(record, now, ports[record.id])) + "\n"
                for record in records
            )
        )
    else:
        headers = ["CONTAINER ID", "IMAGE", "COMMAND", "CREATED", "STATUS", "PORTS", "NAMES"]
        rows = [views.ps_row(record, now, ports[record.id]) for record in records]
        out.write(table(headers, rows) + "\n")
    return 0


def cmd_logs(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print what a container wrote (-f: keep following while it runs)."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="reading logs of")
    out.flush()

    def is_running() -> bool:
        current = manager.store.containers.get(record.id)
        if current is None:
            return False
        current = lifecycle.refresh(manager, current)
        return current is not None and current.state == ContainerState.RUNNING

    logs.show(manager.files(record.id), follow=args.follow, is_running=is_running)
    return 0


def cmd_diff(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List the files a container added (A), changed (C) or deleted (D)."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="reading the changes of")
    found = artifacts.changes(manager, lifecycle.refresh(manager, record) or record)
    out.write("".join(f"{change}\n" for change in found))
    return 0


def cmd_commit(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Make a new image from a container's changes and print its id."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="committing")
    current = lifecycle.refresh(manager, record) or record
    image_id = artifacts.commit(
        manager, current, args.reference, message=args.message or "", author=args.author or ""
    )
    out.write(image_id + "\n")
    return 0


def cmd_export(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Write a container's file system as a tar archive (-o FILE, or standard output)."""
    manager = engine.containers
    record = manager.lookup(args.container, doing="exporting")
    current = lifecycle.refresh(manager, record) or record
    if args.output is None:
        if os.isatty(1):
            raise ContainerConfigError(
                "exporting: refusing to write a tar to a terminal (use -o FILE or a redirect)"
            )
        out.flush()
        with os.fdopen(os.dup(1), "wb") as stream:
            artifacts.export(manager, current, stream)
        return 0
    target = Path(args.output)
    partial = target.with_name(f".{target.name}.partial")
    try:
        with open(partial, "wb") as stream:
            artifacts.export(manager, current, stream)
        os.replace(partial, target)
    except OSError as exc:
        raise PydockError(f"exporting to {target}: {(exc.strerror or str(exc)).lower()}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return 0


def cmd_cleanup(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Record a stopped container's exit and release its storage (run by its monitor)."""
    manager = engine.containers
    record = manager.store.containers.get(args.container)
    if record is not None:
        lifecycle.refresh(manager, record)
    return 0


def parse_signal(text: str) -> int:
    """``-s``: a signal by number or name (``KILL``, ``SIGTERM``)."""
    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            return number
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        found = getattr(signal.Signals, name, None)
        if isinstance(found, signal.Signals):
            return int(found)
    raise ContainerConfigError(f"parsing signal {text!r}: no such signal")


def inspect_any(engine: Engine, name: str) -> dict[str, object]:
    """``inspect``: a container by name or id, else an image."""
    manager = engine.containers
    if not manager.exists(name):
        return engine.images.inspect_image(name)
    record = manager.lookup(name, doing="inspecting")
    record = lifecycle.refresh(manager, record) or record
    storage = manager.storage(record.storage)
    graph: dict[str, object] = {"Name": record.storage, "Data": {}}
    if storage.driver.exists(record.rw_layer):
        graph["Data"] = storage.driver.metadata(record.rw_layer)
    log_path = str(manager.files(record.id).stdout_log)
    settings, bindings = network_view(manager.store, record)
    return views.inspect_document(
        record, graph, log_path=log_path, network_settings=settings, port_bindings=bindings
    )
