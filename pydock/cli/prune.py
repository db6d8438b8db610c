"""Housekeeping: ``container prune``, ``image prune`` and ``system prune``, as Docker words them.

Without ``-f`` Docker asks before deleting anything. pydock asks too when standard input is a
terminal; otherwise it refuses (a script that meant it says ``-f``), so nothing is deleted by a
prompt nobody saw.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from pydock.cli.base import fail
from pydock.containers import artifacts, lifecycle
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.errors import PydockError, UsageError
from pydock.format import human_size
from pydock.store import is_owner_alive


def confirm(doing: str, warnings: Sequence[str], *, force: bool, out: TextIO) -> bool:
    """Docker's ``WARNING! This will remove: ...`` question; ``-f`` answers yes."""
    if force:
        return True
    if not sys.stdin.isatty():
        raise UsageError(
            f"{doing}: refusing to delete without confirmation: standard input is not a"
            " terminal (use -f)"
        )
    if len(warnings) == 1:
        out.write(f"WARNING! This will remove {warnings[0]}.\n")
    else:
        out.write("WARNING! This will remove:\n")
        out.write("".join(f"  - {warning}\n" for warning in warnings))
    out.write("Are you sure you want to continue? [y/N] ")
    out.flush()
    return sys.stdin.readline().strip().lower() in ("y", "yes")


def prune_containers(engine: Engine) -> tuple[list[str], int]:
    """Remove every stopped container; their ids and the bytes their layers held."""
    manager = engine.containers
    deleted, reclaimed = [], 0
    for record in manager.store.containers.list_containers():
        current = lifecycle.refresh(manager, record)
        if current is None or current.state not in (ContainerState.CREATED, ContainerState.EXITED):
            continue
        if current.owner is not None and is_owner_alive(current.owner):
            continue  # a ``run`` that is about to start it
        try:
            size = artifacts.size(manager, current)
        except PydockError:
            size = 0
        try:
            manager.remove(current)
        except PydockError as exc:  # started or removed by someone else meanwhile
            fail(str(exc))
            continue
        deleted.append(current.id)
        reclaimed += size
    return deleted, reclaimed


def prune_images(engine: Engine, *, every_unused: bool) -> tuple[list[str], int]:
    """Remove dangling images (``every_unused``: every image no container uses).

    Returns the report lines as ``image prune`` prints them (``untagged: ...``,
    ``deleted: sha256:...``) and the bytes.
    """
    report, reclaimed = engine.images.prune_images(
        every_unused=every_unused, on_error=lambda exc: fail(str(exc))
    )
    lines = []
    for line in report:
        word, _, rest = line.partition(": ")
        lines.append(f"{word.lower()}: {rest}")
    return lines, reclaimed


def cmd_container_prune(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove all stopped containers."""
    if not confirm("pruning containers", ["all stopped containers"], force=args.force, out=out):
        return 0
    deleted, reclaimed = prune_containers(engine)
    if deleted:
        out.write("Deleted Containers:\n" + "".join(f"{cid}\n" for cid in deleted) + "\n")
    out.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0


def cmd_image_prune(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove dangling images (-a: every image no container uses)."""
    warning = (
        "all images without at least one container associated to them"
        if args.all
        else "all dangling images"
    )
    if not confirm("pruning images", [warning], force=args.force, out=out):
        return 0
    lines, reclaimed = prune_images(engine, every_unused=args.all)
    if lines:
        out.write("Deleted Images:\n" + "".join(f"{line}\n" for line in lines) + "\n")
    out.write(f"Total reclaimed space: {human_size(reclaimed)}\n")
    return 0


def cmd_system_prune(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Remove stopped containers, dangling (-a: unused) images, unreferenced blobs and with
    ``--volumes`` unused anonymous volumes."""
    warnings = [
        "all stopped containers",
        "all images without at least one container associated to them"
        if args.all
        else "all dangling images",
        "all blobs of the content store no image or layer refers to",
    ]
    if args.volumes:
        warnings.insert(1, "all anonymous volumes not used by at least one container")
    if not confirm("pruning", warnings, force=args.force, out=out):
        return 0
    deleted, reclaimed = prune_containers(engine)
    if deleted:
        out.write("Deleted Containers:\n" + "".join(f"{cid}\n" for cid in deleted) + "\n")
    volume_bytes = 0
    if args.volumes:
        from pydock.containers import volumes  # only this verb needs it

        removed, volume_bytes = volumes.prune(engine.store, engine.root)
        if removed:
            out.write("Deleted Volumes:\n" + "".join(f"{name}\n" for name in removed) + "\n")
    lines, image_bytes = prune_images(engine, every_unused=args.all)
    if lines:
        out.write("Deleted Images:\n" + "".join(f"{line}\n" for line in lines) + "\n")
    report = engine.images.prune_blobs()
    out.write("".join(f"Deleted blob: {digest}\n" for digest in report.deleted))
    total = reclaimed + volume_bytes + image_bytes + report.reclaimed
    out.write(f"Total reclaimed space: {human_size(total)}\n")
    return 0
