"""A container's storage in its graph driver: the image's layers, its writable layer, its mount.

The image's layers are made present in the container's driver on demand: a layer already
unpacked in the driver's home (overlay2 and fuse share one) is reused, a missing one is unpacked
from the content store. The writable layer is created on the image's top layer only after the
container's row names it, so start-up recovery never mistakes it for debris.

Mounts outlive the pydock process that made them while the container runs; whoever sees the
container exit releases the mount (``adopt`` takes a mount left by another process, the last
``put`` unmounts it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import graphdriver
from pydock.errors import ContentError
from pydock.image.config import ImageConfig
from pydock.image.content import ContentStore
from pydock.image.layercache import LayerManager, driver_step
from pydock.store import ImageRecord, Store


class ContainerLayers:
    """Image layers and writable layers of containers in one graph driver."""

    def __init__(self, layers: LayerManager) -> None:
        self.layers = layers
        self.store, self.content = layers.store, layers.content
        self.driver, self.home = layers.driver, layers.home

    def prepare_image(self, image: ImageRecord) -> str | None:
        """Make every layer of ``image`` present in the driver; return the top's driver id."""
        parent: str | None = None
        top: str | None = None
        for diff_id in ImageConfig.parse(image.config).diff_ids:
            pending = self.layers.register_finished(diff_id, parent, opener=self._opener(diff_id))
            parent, top = pending.chain_id, pending.cache_id
        return top

    def _opener(self, diff_id: str) -> _LayerOpener:
        return _LayerOpener(self.store, self.content, diff_id)

    def create_rw(self, layer_id: str, parent: str | None) -> None:
        """Create the container's writable layer (its row must exist already)."""
        with driver_step(f"creating the writable layer {layer_id}"):
            self.driver.create_read_write(layer_id, parent)

    def remove_rw(self, layer_id: str) -> None:
        """Remove the container's writable layer, unmounting it first if it is still mounted."""
        with (
            driver_step(f"removing the writable layer {layer_id}"),
            contextlib.suppress(graphdriver.LayerUnknownError),
        ):
            try:
                self.driver.remove(layer_id)
            except graphdriver.LayerInUseError:
                self.release(layer_id)  # left by a run whose exit nobody recorded
                self.driver.remove(layer_id)

    def mount(self, layer_id: str) -> Path:
        """Mount the writable layer (refcounted) and return the container's root filesystem."""
        with driver_step(f"mounting the root filesystem {layer_id}"):
            return self.driver.get(layer_id)

    def unmount(self, layer_id: str) -> None:
        """Drop this process's reference to the mount."""
        with driver_step(f"unmounting the root filesystem {layer_id}"):
            self.driver.put(layer_id)

    def mount_problem(self, layer_id: str) -> str | None:
        """Why the container's root file system no longer serves its files, or ``None``."""
        return self.driver.mount_problem(layer_id)

    def release(self, layer_id: str) -> None:
        """Unmount a mount that a container's run left, whichever process made it."""
        if not self.driver.exists(layer_id):
            return
        with driver_step(f"unmounting the root filesystem {layer_id}"):
            # A mount made by another process is adopted (none up: nothing to do; a get
            # would mount it again, maybe under a removal by whoever took it down) ...
            if not self.driver.is_mounted(layer_id) and not self.driver.adopt(layer_id):
                return
            while self.driver.is_mounted(layer_id):
                self.driver.put(layer_id)  # ... so that the last put takes it down

    def keep_mounted(self, layer_id: str) -> None:
        """Leave the mount in place when this process ends (a container still uses it)."""
        self.driver.counter.forget(layer_id)

    @contextmanager
    def mounted(self, layer_id: str, *, in_use: bool = False) -> Iterator[Path]:
        """The root filesystem, mounted for the body.

        With ``in_use`` (the container runs) the mount is left in place afterwards: it is the
        running container's, and driver calls in the body may take references of their own.
        """
        root = self.mount(layer_id)
        try:
            yield root
        finally:
            if in_use:
                self.keep_mounted(layer_id)
            else:
                self.unmount(layer_id)

    def changes(self, layer_id: str, parent: str | None) -> list[graphdriver.Change]:
        """What the container changed, as ``docker diff`` lists it."""
        with driver_step(f"reading the changes of {layer_id}"):
            return self.driver.changes(layer_id, parent)

    def diff(self, layer_id: str, parent: str | None) -> BinaryIO:
        """The container's changes as a layer tar (``parent=None``: the whole file system)."""
        with driver_step(f"archiving the changes of {layer_id}"):
            return self.driver.diff(layer_id, parent)


class _LayerOpener:
    """Opens a layer's tar by diff id: the uncompressed blob, or a checked compressed one."""

    def __init__(self, store: Store, content: ContentStore, diff_id: str) -> None:
        self.store = store
        self.content = content
        self.diff_id = diff_id

    def _candidates(self) -> Iterable[str]:
        yield self.diff_id
        yield from (blob.digest for blob in self.store.distribution.blobs_of(self.diff_id))

    @contextmanager
    def __call__(self) -> Iterator[BinaryIO]:
        for digest in self._candidates():
            if self.content.exists(digest):
                with self.content.open(digest) as stream:
                    yield stream
                return
        raise ContentError(
            f"unpacking layer {self.diff_id}: no blob of it is in the content store",
            digest=self.diff_id,
        )
