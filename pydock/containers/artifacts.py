"""What a container's writable layer becomes: ``diff`` lines, an ``export`` tar, a ``commit``.

The writable layer sits on the image's top layer in the container's driver, so the driver's
``changes`` and ``diff`` against that top layer give exactly what the container changed. While
the container runs its mount is pinned for the duration, so a driver's own get/put pair cannot
take the running container's root filesystem down.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, BinaryIO

import graphdriver
from pydock.clock import now_rfc3339
from pydock.containers.config import ContainerConfig
from pydock.containers.state import Action, ContainerState, transition
from pydock.containers.storage import ContainerLayers
from pydock.errors import ContentError, DriverError, LayerInputError
from pydock.image import blobs
from pydock.image.layercache import driver_step
from pydock.image.layertar import store_layer_tar
from pydock.image.reference import parse_reference
from pydock.network.etcfiles import NAMES as ETC_NAMES
from pydock.store import ContainerRecord, ImageRecord

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager


def _image_top(
    manager: ContainerManager, record: ContainerRecord
) -> tuple[ImageRecord, str | None]:
    """The container's image and the driver id of its top layer in the container's driver."""
    image = manager.store.images.get(record.image)
    if image is None:
        raise DriverError(f"reading container {record.name}: its image {record.image} is gone")
    if image.top_layer is None:
        return image, None
    storage = manager.storage(record.storage)
    cache = manager.store.layers.cache(image.top_layer, storage.home)
    if cache is None or not cache.complete:
        raise DriverError(
            f"reading container {record.name}: the image's top layer is not in driver "
            f"{record.storage}",
            layer_id=image.top_layer,
        )
    return image, cache.cache_id


@contextmanager
def _pinned(storage: ContainerLayers, record: ContainerRecord) -> Iterator[None]:
    """Hold a reference to a running container's mount for the body."""
    if record.state != ContainerState.RUNNING:
        yield
        return
    with storage.mounted(record.rw_layer, in_use=True):
        yield


def changes(manager: ContainerManager, record: ContainerRecord) -> list[graphdriver.Change]:
    """``diff``: what the container added (A), changed (C) and deleted (D)."""
    transition(record.state, Action.CHANGE, name=record.name)
    _, top = _image_top(manager, record)
    storage = manager.storage(record.storage)
    with _pinned(storage, record):
        return without_mount_stubs(storage.changes(record.rw_layer, top))


# Mount points pydock makes in the writable layer for the per-container /etc files when the
# image has none. Whatever a container writes there goes to the bound file in its directory,
# never into the layer, so these are not changes of the container's (Docker keeps them in an
# init layer below the container's, out of ``diff``).
MOUNT_STUBS = frozenset(f"/etc/{name}" for name in ETC_NAMES)


def without_mount_stubs(found: list[graphdriver.Change]) -> list[graphdriver.Change]:
    """``found`` less the /etc mount stubs, and less ``/etc`` itself when the stubs were all
    that changed under it."""
    kept = [change for change in found if change.path not in MOUNT_STUBS]
    if len(kept) == len(found):
        return found
    if not any(change.path.startswith("/etc/") for change in kept):
        kept = [change for change in kept if change.path != "/etc"]
    return kept


def size(manager: ContainerManager, record: ContainerRecord) -> int:
    """``ps -s``: bytes the container's writable layer holds over its image."""
    transition(record.state, Action.CHANGE, name=record.name)
    _, top = _image_top(manager, record)
    storage = manager.storage(record.storage)
    with _pinned(storage, record), driver_step(f"measuring the changes of {record.rw_layer}"):
        try:
            return storage.driver.diff_size(record.rw_layer, top)
        except FileNotFoundError as exc:
            # An ``rm`` (or a ``run --rm`` ending) in another process took the layer away
            # while it was walked: that is a container being removed, not a broken driver.
            current = manager.store.containers.get(record.id)
            if current is not None and current.state != ContainerState.REMOVING:
                raise
            raise DriverError(
                f"measuring container {record.name}: it was removed meanwhile"
            ) from exc


def export(manager: ContainerManager, record: ContainerRecord, out: BinaryIO) -> None:
    """``export``: the container's whole file system as one tar."""
    transition(record.state, Action.EXPORT, name=record.name)
    storage = manager.storage(record.storage)
    with _pinned(storage, record), storage.diff(record.rw_layer, None) as stream:
        shutil.copyfileobj(stream, out, 1 << 20)


def commit(
    manager: ContainerManager,
    record: ContainerRecord,
    reference: str | None,
    *,
    message: str = "",
    author: str = "",
) -> str:
    """``commit``: the container's changes become a new layer on its image; the new image id."""
    # Leased from before each blob appears until the image records it (see Images.import_image).
    with blobs.leased(manager.store, manager.content) as lease:
        return _commit(manager, record, reference, message, author, lease)


def _commit(
    manager: ContainerManager,
    record: ContainerRecord,
    reference: str | None,
    message: str,
    author: str,
    lease: blobs.Lease,
) -> str:
    transition(record.state, Action.COMMIT, name=record.name)
    ref = parse_reference(reference) if reference else None
    image, top = _image_top(manager, record)
    storage = manager.storage(record.storage)
    content = manager.content
    with _pinned(storage, record), storage.diff(record.rw_layer, top) as stream:
        try:
            blob = store_layer_tar(stream, content, before_publish=lease.publishing)
        except (LayerInputError, graphdriver.ArchiveError, ContentError) as exc:
            raise DriverError(f"committing container {record.name}: {exc}") from exc
    created = now_rfc3339()
    config = _committed_config(image, record, blob.digest, created, message, author)
    pending = storage.layers.register(blob.digest, image.top_layer)
    return storage.layers.commit_image(
        pending,
        config,
        created=created,
        size=image.size + pending.size,
        tag=str(ref) if ref is not None else None,
        lease=lease,
    )


def _committed_config(
    image: ImageRecord,
    record: ContainerRecord,
    diff_id: str,
    created: str,
    message: str,
    author: str,
) -> bytes:
    """The image's config with the new layer, a history entry and the container's settings."""
    document = json.loads(image.config)
    if not isinstance(document, dict):
        document = {}
    settings = ContainerConfig.from_json(record.config)
    inner = document.get("config") if isinstance(document.get("config"), dict) else {}
    assert isinstance(inner, dict)
    inner = dict(inner)
    inner["Cmd"] = list(settings.cmd) or None
    inner["Entrypoint"] = list(settings.entrypoint) or None
    inner["Env"] = list(settings.env) or None
    inner["WorkingDir"] = "" if settings.workdir == "/" else settings.workdir
    inner["User"] = settings.user
    document["config"] = {key: value for key, value in inner.items() if value is not None}
    rootfs = document.get("rootfs") if isinstance(document.get("rootfs"), dict) else {}
    assert isinstance(rootfs, dict)
    document["rootfs"] = {
        "type": "layers",
        "diff_ids": [*rootfs.get("diff_ids", []), diff_id],
    }
    entry: dict[str, object] = {"created": created, "created_by": " ".join(settings.args)}
    if message:
        entry["comment"] = message
    if author:
        entry["author"] = author
        document["author"] = author
    document["history"] = [*document.get("history", []), entry]
    document["created"] = created
    document["container"] = record.id
    return json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
