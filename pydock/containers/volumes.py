"""Named volumes: directories under the root that outlive containers, as Docker's ``local`` driver.

On disk::

    <root>/volumes/<name>/_data     what the container sees at the mount point

A volume is recorded in the store (``volumes``). ``-v NAME:/path`` makes it on first use; ``-v
/path`` makes an anonymous one (a random 64-hex name) that ``rm -v`` and ``run --rm`` remove.
The first time a volume is mounted while it is empty, the image's content at the mount point is
copied into it (ownership, modes and links kept), as Docker does; after that never again.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

from graphdriver import GraphDriverError
from graphdriver.archive import apply_layer, pack_tree
from pydock.clock import now_rfc3339
from pydock.containers.config import ContainerConfig, Volume, check_volume_name
from pydock.containers.errors import (
    ContainerConflictError,
    ContainerStartError,
    ContainerUnknownError,
)
from pydock.filters import boolean, labels_match
from pydock.store import Store, VolumeRecord
from runtime.securejoin import resolve_in_root

DIRECTORY = "volumes"
DATA = "_data"


def data_dir(root: Path, name: str) -> Path:
    """Where the content of volume ``name`` lives."""
    return Path(root) / DIRECTORY / name / DATA


def create(
    store: Store,
    root: Path,
    name: str | None = None,
    *,
    labels: Mapping[str, str] | None = None,
    anonymous: bool = False,
) -> VolumeRecord:
    """Make volume ``name`` (a random name when None); an existing one is returned as it is."""
    chosen = check_volume_name(name) if name else secrets.token_hex(32)
    found = store.volumes.get(chosen)
    if found is not None:
        return found
    record = VolumeRecord(chosen, now_rfc3339(), dict(labels or {}), anonymous=anonymous)
    data_dir(root, chosen).mkdir(parents=True, exist_ok=True, mode=0o755)
    if not store.volumes.add(record):  # made meanwhile by another command
        return store.volumes.get(chosen) or record
    return record


def get(store: Store, name: str, *, doing: str) -> VolumeRecord:
    """The volume ``name``, or ``ContainerUnknownError`` in Docker's words."""
    found = store.volumes.get(name)
    if found is None:
        raise ContainerUnknownError(f"{doing} {name}: no such volume")
    return found


def select(store: Store, wanted: Mapping[str, Sequence[str]], *, doing: str) -> list[VolumeRecord]:
    """The volumes ``volume ls`` shows for these filters (``dangling``, ``name``, ``label``)."""
    found = []
    for record in store.volumes.list_volumes():
        if "dangling" in wanted:
            unused = not users(store, record.name)
            if unused != boolean(wanted["dangling"], "dangling", doing=doing):
                continue
        if "name" in wanted and not any(part in record.name for part in wanted["name"]):
            continue
        if labels_match(wanted.get("label", []), record.labels):
            found.append(record)
    return found


def users(store: Store, name: str) -> list[str]:
    """Ids of the containers that mount volume ``name``."""
    found = []
    for record in store.containers.list_containers():
        config = ContainerConfig.from_json(record.config)
        if any(v.kind == "volume" and v.name == name for v in config.volumes):
            found.append(record.id)
    return found


def remove(store: Store, root: Path, name: str, *, force: bool = False) -> None:
    """Delete volume ``name`` and its content; refused while a container uses it."""
    if store.volumes.get(name) is None:
        if force:
            return
        raise ContainerUnknownError(f"removing volume {name}: no such volume")
    using = users(store, name)
    if using:
        raise ContainerConflictError(
            f"removing volume {name}: volume is in use - [{', '.join(i[:12] for i in using)}]"
        )
    store.volumes.remove(name)
    shutil.rmtree(Path(root) / DIRECTORY / name, ignore_errors=True)


def prune(store: Store, root: Path, *, every_unused: bool = False) -> tuple[list[str], int]:
    """Remove unused anonymous volumes (``every_unused``: named ones too); names and bytes."""
    removed, reclaimed = [], 0
    for record in store.volumes.list_volumes():
        if not (record.anonymous or every_unused) or users(store, record.name):
            continue
        size = usage(root, record.name)
        remove(store, root, record.name, force=True)
        removed.append(record.name)
        reclaimed += size
    return removed, reclaimed


def usage(root: Path, name: str) -> int:
    """Bytes of regular files in the volume."""
    total = 0
    for directory, _, files in os.walk(data_dir(root, name)):
        for file in files:
            try:
                total += os.lstat(os.path.join(directory, file)).st_size
            except OSError:
                continue
    return total


def attach(store: Store, root: Path, config: ContainerConfig) -> tuple[ContainerConfig, list[str]]:
    """``config`` with every volume made and its source set; also the anonymous ones made."""
    made: list[str] = []
    mounts: list[Volume] = []
    for volume in config.volumes:
        if volume.kind != "volume":
            mounts.append(volume)
            continue
        anonymous = not volume.name
        if anonymous or store.volumes.get(volume.name) is None:
            record = create(store, root, volume.name or None, anonymous=anonymous)
            if anonymous:
                made.append(record.name)
        else:
            record = get(store, volume.name, doing="mounting volume")
        source = str(data_dir(root, record.name))
        mounts.append(replace(volume, name=record.name, source=source))
    return replace(config, volumes=tuple(mounts)), made


def inherit(
    config: ContainerConfig, sources: Sequence[tuple[ContainerConfig, str]]
) -> ContainerConfig:
    """``--volumes-from``: ``config`` with the volumes and binds of each source container's
    config (``mode`` "ro" or "rw" overrides theirs), as Docker: a later source wins a mount
    point over an earlier one, the container's own mounts over all of them; tmpfs stay behind."""
    inherited: dict[str, Volume] = {}
    for other, mode in sources:
        for volume in other.volumes:
            if volume.kind == "tmpfs":
                continue
            readonly = volume.readonly if not mode else mode == "ro"
            inherited[volume.destination] = replace(volume, readonly=readonly)
    own = {volume.destination for volume in config.volumes}
    extra = tuple(v for destination, v in inherited.items() if destination not in own)
    return replace(config, volumes=extra + config.volumes)


def anonymous_of(store: Store, config: ContainerConfig) -> list[str]:
    """The anonymous volumes among ``config``'s mounts (what ``rm -v`` removes)."""
    found = []
    for volume in config.volumes:
        record = store.volumes.get(volume.name) if volume.kind == "volume" else None
        if record is not None and record.anonymous:
            found.append(record.name)
    return found


def populate(store: Store, root: Path, volumes: Sequence[Volume], rootfs: Path) -> None:
    """Copy the image's content at each new, empty volume's mount point into the volume."""
    for volume in volumes:
        record = store.volumes.get(volume.name) if volume.kind == "volume" else None
        if record is None or record.populated:
            continue
        target = data_dir(root, volume.name)
        try:
            source = resolve_in_root(rootfs, volume.destination)
            if not any(target.iterdir()) and source.is_dir() and not source.is_symlink():
                with tempfile.TemporaryFile(dir=target.parent) as spool:
                    pack_tree(source, spool)
                    spool.seek(0)
                    apply_layer(target, spool)
                # The mount point's own mode and owner, as Docker copies them.
                st = os.stat(source)
                os.chmod(target, st.st_mode & 0o7777)
                os.chown(target, st.st_uid, st.st_gid)
        except (OSError, GraphDriverError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ContainerStartError(
                f"copying the image's {volume.destination} into volume {volume.name}: {why}"
            ) from exc
        store.volumes.mark_populated(volume.name)


def inspect_document(root: Path, record: VolumeRecord) -> dict[str, object]:
    """``volume inspect``, shaped as Docker's."""
    return {
        "CreatedAt": record.created,
        "Driver": "local",
        "Labels": dict(record.labels) or None,
        "Mountpoint": str(data_dir(root, record.name)),
        "Name": record.name,
        "Options": None,
        "Scope": "local",
    }
