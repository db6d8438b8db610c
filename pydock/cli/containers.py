"""Container commands that start nothing: stop, kill, wait, rm, ps, inspect, logs, diff, commit,
export, cleanup. ``wait`` prints the exit status; pydock's own failures give 125.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from pydock.cli.base import EXIT_FAILURE, fail
from pydock.clock import utc_now
from pydock.containers import artifacts, health, lifecycle, logs, views
from pydock.containers.config import ContainerConfig
from pydock.containers.errors import ContainerConfigError
from pydock.containers.manager import ContainerManager
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.errors import PydockError, UsageError
from pydock.filters import labels_match, parse_filters
from pydock.format import human_size
from pydock.image.resolve import resolve_image
from pydock.network.views import ports_text
from pydock.store import ContainerRecord
from pydock.template import Row, TemplateError, render_rows, template_step
from pydock.template import parse as parse_template


def cmd_inspect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print a JSON array describing each image or container (-f: each through a template)."""
    with template_step("inspecting"):
        template = parse_template(args.format) if args.format else None
    found: list[dict[str, object]] = []
    status = 0
    for name in args.images:
        try:
            document = inspect_any(engine, name)
            if template is not None:
                out.write(template.render(document) + "\n")
        except TemplateError as exc:
            fail(f"inspecting {name}: {exc}")
            status = EXIT_FAILURE
            continue
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        found.append(document)
    if template is None:
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
        lifecycle.stop(manager, record, None if args.time is None else float(args.time))
        return str(args.names[0]) if len(args.names) == 1 else record.name

    return _each(engine, args.names, "stopping", stop)


def cmd_kill(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Send a signal (default SIGKILL) to running containers."""
    number = parse_signal(args.signal)
    manager = engine.containers

    def kill(record: ContainerRecord) -> str:
        lifecycle.signal_container(manager, record, number)
        manager.store.containers.update(record.id, stopped=True)  # its restart policy yields
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
        manager.remove(record, force=args.force, volumes=args.volumes)
        return record.name

    return _each(engine, args.names, "removing", remove)


PS_FILTERS = ("status", "label", "name", "id", "ancestor", "exited", "volume")
_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")


def cmd_ps(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List containers: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, NAMES."""
    manager = engine.containers
    wanted = parse_filters(args.filter, PS_FILTERS, doing="listing containers")
    for status in wanted.get("status", []):
        if status not in _STATUSES:
            raise UsageError(f"listing containers: invalid filter 'status={status}'")
    for code in wanted.get("exited", []):
        if not code.lstrip("-").isdigit():
            raise UsageError(f"listing containers: invalid filter 'exited={code}'")
    ancestors = _ancestor_ids(engine, wanted.get("ancestor", []))
    records = []
    for record in manager.store.containers.list_containers():
        if record.state in (ContainerState.CREATING, ContainerState.REMOVING):
            continue
        current = lifecycle.refresh(manager, record)
        if current is None:
            continue
        shown = args.all or "status" in wanted or "exited" in wanted
        shown = shown or current.state == ContainerState.RUNNING
        if shown and _ps_matches(current, wanted, ancestors):
            records.append(current)
    now = utc_now()
    ports = {record.id: ports_text(manager.store, record) for record in records}
    if args.quiet:
        out.write("".join(f"{record.id[:12]}\n" for record in records))
        return 0
    sizes = {r.id: _size_text(manager, r) for r in records} if args.size else {}
    healths = {r.id: health.current_status(manager, r) for r in records}
    rows = [
        views.ps_json(r, now, sizes.get(r.id, "0B"), ports[r.id], healths[r.id]) for r in records
    ]
    if args.format == "json":
        out.write("".join(json.dumps(row) + "\n" for row in rows))
        return 0
    default = views.PS_DEFAULT + ("\t{{.Size}}" if args.size else "")
    text = args.format or default
    if text == "table":
        text = default
    labels = [ContainerConfig.from_json(r.config).label_map for r in records]
    data = [_with_label(row, found) for row, found in zip(rows, labels, strict=True)]
    with template_step("listing containers"):
        out.write(render_rows(text, data, views.PS_HEADERS, default))
    return 0


def _with_label(fields: dict[str, str], labels: dict[str, str]) -> Row:
    return Row(fields, {"Label": lambda key: labels.get(str(key), "")})


def _ps_matches(
    record: ContainerRecord, wanted: dict[str, list[str]], ancestors: set[str] | None
) -> bool:
    config = ContainerConfig.from_json(record.config)
    if "status" in wanted and record.state not in wanted["status"]:
        return False
    if "name" in wanted and not any(re.search(v, record.name) for v in wanted["name"]):
        return False
    if "id" in wanted and not any(record.id.startswith(v) for v in wanted["id"]):
        return False
    if ancestors is not None and record.image not in ancestors:
        return False
    if "exited" in wanted and (
        record.state != ContainerState.EXITED
        or str(record.exit_code if record.exit_code is not None else 0) not in wanted["exited"]
    ):
        return False
    if "volume" in wanted and not any(
        v.name in wanted["volume"] or v.destination in wanted["volume"] for v in config.volumes
    ):
        return False
    return labels_match(wanted.get("label", []), config.label_map)


def _ancestor_ids(engine: Engine, names: list[str]) -> set[str] | None:
    """The image ids ``ancestor=`` names (an unknown image matches nothing)."""
    if not names:
        return None
    found = set()
    for name in names:
        try:
            found.add(resolve_image(engine.store, name, doing="listing containers")[0].id)
        except PydockError:
            continue
    return found


def _size_text(manager: ContainerManager, record: ContainerRecord) -> str:
    """``ps -s``: the writable layer's size and, as ``virtual``, with the image's."""
    written = artifacts.size(manager, record)
    image = manager.store.images.get(record.image)
    virtual = written + (image.size if image is not None else 0)
    return f"{human_size(written)} (virtual {human_size(virtual)})"


def cmd_logs(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print what a container wrote (-f: keep following while it runs)."""
    manager = engine.containers
    window = logs.Window(
        tail=_tail_lines(args.tail),
        since=_log_time(args.since, "--since"),
        until=_log_time(args.until, "--until"),
        timestamps=args.timestamps,
    )
    record = manager.lookup(args.container, doing="reading logs of")
    out.flush()

    def is_running() -> bool:
        current = manager.store.containers.get(record.id)
        if current is None:
            return False
        current = lifecycle.refresh(manager, current)
        return current is not None and current.state == ContainerState.RUNNING

    logs.show(manager.files(record.id), window=window, follow=args.follow, is_running=is_running)
    return 0


def _log_time(text: str | None, flag: str) -> int | None:
    """``--since``/``--until``: a time in ns since the epoch (None: not given)."""
    if text is None:
        return None
    try:
        return logs.parse_time(text)
    except ValueError as exc:
        raise UsageError(f"reading logs: invalid {flag} {text!r}: {exc}") from exc


def _tail_lines(text: str) -> int | None:
    """``--tail``: ``all`` (None) or a number of lines; a negative number means all, as Docker."""
    if text == "all":
        return None
    try:
        lines = int(text)
    except ValueError as exc:
        raise UsageError(f"reading logs: invalid --tail {text!r}: a number or 'all'") from exc
    return lines if lines >= 0 else None


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


def cmd_cp(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Copy files between a container and the host (either may be -, a tar stream)."""
    from pydock.containers import copy  # only this command needs it

    source, destination = _container_path(args.source), _container_path(args.destination)
    manager = engine.containers
    if source is not None and destination is not None:
        raise UsageError("copying files: copying between containers is not supported")
    if source is not None:
        if args.destination == "-" and os.isatty(1):
            raise UsageError("copying files: refusing to write a tar to a terminal")
        record = manager.lookup(source[0], doing="copying from")
        out.flush()
        with os.fdopen(os.dup(1), "wb") as stream:
            copy.copy_out(manager, record, source[1], args.destination, stream)
        return 0
    if destination is None:
        raise UsageError("copying files: one of SRC and DEST must be CONTAINER:PATH")
    record = manager.lookup(destination[0], doing="copying into")
    copy.copy_in(manager, record, args.source, destination[1], sys.stdin.buffer)
    return 0


def _container_path(text: str) -> tuple[str, str] | None:
    """``CONTAINER:PATH`` split, or None for a host path (one with a / before any colon)."""
    name, colon, path = text.partition(":")
    if not colon or not name or "/" in name or text.startswith("."):
        return None
    return name, path or "/"


def cmd_cleanup(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Record a stopped container's exit and release its storage (run by its monitor)."""
    manager = engine.containers
    record = manager.store.containers.get(args.container)
    if record is not None:
        current = lifecycle.refresh(manager, record)
        if current is not None:
            from pydock.containers import control

            control.restart_by_policy(manager, current)
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
    return views.container_inspect(manager, record)
