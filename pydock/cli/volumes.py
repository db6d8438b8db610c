"""Volume commands: volume create, ls, inspect, rm, prune."""

from __future__ import annotations

import argparse
import json
from typing import TextIO

from pydock.cli.base import EXIT_FAILURE, fail
from pydock.cli.prune import confirm
from pydock.containers import volumes
from pydock.engine import Engine
from pydock.errors import PydockError, UsageError
from pydock.filters import parse_filters
from pydock.format import human_size
from pydock.template import Row, render_rows, template_step
from pydock.template import parse as parse_template

VOLUME_FILTERS = ("dangling", "label", "name")
VOLUME_HEADERS = {
    "Driver": "DRIVER",
    "Name": "VOLUME NAME",
    "Labels": "LABELS",
    "Mountpoint": "MOUNTPOINT",
    "Scope": "SCOPE",
}
VOLUME_DEFAULT = "table {{.Driver}}\t{{.Name}}"


def _labels(items: list[str]) -> dict[str, str]:
    found = {}
    for item in items:
        key, _, value = item.partition("=")
        if not key:
            raise UsageError(f"creating a volume: the label {item!r} has no name")
        found[key] = value
    return found


def cmd_volume_create(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Create a volume and print its name."""
    if args.driver != "local":
        raise UsageError(
            f"creating a volume: only the local driver is supported, not {args.driver}"
        )
    record = volumes.create(engine.store, engine.root, args.name, labels=_labels(args.label))
    out.write(record.name + "\n")
    return 0


def cmd_volume_ls(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """List volumes: DRIVER, VOLUME NAME."""
    doing = "listing volumes"
    wanted = parse_filters(args.filter, VOLUME_FILTERS, doing=doing)
    root = engine.root
    found = volumes.select(engine.store, wanted, doing=doing)
    if args.quiet:
        out.write("".join(f"{record.name}\n" for record in found))
        return 0
    rows = [
        Row(
            {
                "Driver": "local",
                "Name": record.name,
                "Labels": ",".join(f"{k}={v}" for k, v in sorted(record.labels.items())),
                "Mountpoint": str(volumes.data_dir(root, record.name)),
                "Scope": "local",
            },
            {"Label": lambda key, labels=record.labels: labels.get(str(key), "")},
        )
        for record in found
    ]
    if args.format == "json":
        out.write("".join(json.dumps(dict(row)) + "\n" for row in rows))
        return 0
    text = VOLUME_DEFAULT if args.format in (None, "table") else args.format
    with template_step(doing):
        out.write(render_rows(text, rows, VOLUME_HEADERS, VOLUME_DEFAULT))
    return 0


def cmd_volume_inspect(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Print a JSON array describing each volume (-f: each through a template)."""
    with template_step("inspecting volumes"):
        template = parse_template(args.format) if args.format else None
    found: list[dict[str, object]] = []
    status = 0
    for name in args.names:
        try:
            record = volumes.get(engine.store, name, doing="inspecting volume")
            document = volumes.inspect_document(engine.root, record)
            if template is not None:
                with template_step(f"inspecting volume {name}"):
                    out.write(template.render(document) + "\n")
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        found.append(document)
    if template is None:
        out.write(json.dumps(found, indent=4) + "\n")
    return status


def cmd_volume_rm(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove volumes no container uses."""
    status = 0
    for name in args.names:
        try:
            volumes.remove(engine.store, engine.root, name, force=args.force)
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        out.write(name + "\n")
    return status


def cmd_volume_prune(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove unused anonymous volumes (-a: every unused volume)."""
    warning = "all volumes not used by at least one container"
    if not args.all:
        warning = "all anonymous local volumes not used by at least one container"
    if not confirm("pruning volumes", [warning], force=args.force, out=out):
        return 0
    removed, reclaimed = volumes.prune(engine.store, engine.root, every_unused=args.all)
    if removed:
        out.write("Deleted Volumes:\n" + "".join(f"{name}\n" for name in removed) + "\n")
    out.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0
