"""Image layers across the store and the graph drivers: register, remove, recover.

Order of writes, so that a kill -9 at any moment leaves a store that opens and lists:

* register: rows (incomplete, owned by this process) -> driver ``create`` + ``apply_diff``
  -> rows complete, with the size, in the caller's transaction (with the image that uses it);
* remove: rows marked incomplete -> driver ``remove`` -> rows deleted;
* recover (start-up): incomplete rows of dead processes -> their directories removed -> rows
  deleted; then directories no row knows of are removed.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from dataclasses import dataclass
from typing import BinaryIO

import graphdriver
from pydock.clock import now_rfc3339
from pydock.errors import DriverError, LayerInputError
from pydock.image import blobs
from pydock.image.config import chain_id
from pydock.image.content import ContentStore, digest_bytes
from pydock.store import CacheRecord, ImageRecord, Store, current_owner, is_owner_alive

# How often a second importer of the same layer looks whether the first one is done.
WAIT_INTERVAL_SECONDS = 0.2
# How many times an import or commit registers its layer again when a concurrent prune or rmi
# removed the existing copy it was about to reuse (each retry unpacks it afresh).
REGISTER_ATTEMPTS = 3
# The diff id of 0 bytes: no layer tar has it, as even an empty one holds the end-of-archive
# blocks. Docker takes 0 bytes for an empty layer (moby#18170); pydock's import refuses an
# empty input, and load and pull (a gzip of nothing included) refuse such a layer here.
EMPTY_DIFF_ID = digest_bytes(b"")

DriverLookup = Callable[[str], graphdriver.Driver | None]
LayerOpener = Callable[[], AbstractContextManager[BinaryIO]]


@dataclass(frozen=True)
class PendingLayer:
    """A layer that :meth:`LayerManager.register` made present in the current driver."""

    chain_id: str
    diff_id: str
    cache_id: str
    size: int
    fresh: bool  # unpacked by this call: still incomplete until finish()
    new_row: bool  # the layers row was created by this call
    parent: str | None = None  # the chain id it was registered on


class LayerVanishedError(DriverError):
    """A reused layer was removed by another pydock between register and finish."""


class LayerManager:
    """Keeps the layer rows of the store and the layer directories of the drivers in step."""

    def __init__(
        self,
        store: Store,
        content: ContentStore,
        driver: graphdriver.Driver,
        home: str,
        drivers_by_home: DriverLookup,
    ) -> None:
        self.store = store
        self.content = content
        self.driver = driver
        self.home = home
        self._drivers_by_home = drivers_by_home

    def register(
        self, diff_id: str, parent: str | None, *, opener: LayerOpener | None = None
    ) -> PendingLayer:
        """Make the layer ``diff_id`` on ``parent`` present in the driver, unpacking if needed.

        The layer tar is read from ``opener()`` if given, else from the content store under
        ``diff_id``. If the layer is already there it is reused; if another live process is
        unpacking it, this waits for it.
        """
        if diff_id == EMPTY_DIFF_ID:
            raise LayerInputError(f"unpacking layer {diff_id}: the layer is 0 bytes, not a tar")
        chain = chain_id(parent, diff_id)
        parent_cache = self._parent_cache(parent)
        while True:
            with self.store.transaction():
                layer = self.store.layers.get(chain)
                new_row = layer is None
                if layer is None:
                    self.store.layers.add(
                        chain, diff_id, parent, owner=current_owner(), created=now_rfc3339()
                    )
                cache = self.store.layers.cache(chain, self.home)
                if cache is None:
                    cache_id = secrets.token_hex(32)
                    self.store.layers.add_cache(
                        chain, self.home, cache_id, owner=current_owner(), created=now_rfc3339()
                    )
            if cache is None:
                break
            if cache.complete and layer is not None and layer.complete:
                return PendingLayer(
                    chain, diff_id, cache.cache_id, layer.size, False, False, parent
                )
            if is_owner_alive(cache.owner):
                time.sleep(WAIT_INTERVAL_SECONDS)
            else:
                self._discard(cache)
        pending = PendingLayer(chain, diff_id, cache_id, 0, True, new_row, parent)
        try:
            with driver_step(f"unpacking layer {diff_id}"):
                self.driver.create(cache_id, parent_cache)
                with opener() if opener else self.content.open(diff_id) as blob:
                    size = self.driver.apply_diff(cache_id, parent_cache, blob)
        except BaseException:
            self.abandon(pending)
            raise
        return PendingLayer(chain, diff_id, cache_id, size, True, new_row, parent)

    def finish(self, pending: PendingLayer) -> None:
        """Mark a freshly unpacked layer complete, or check a reused one is still there.

        Run it inside the transaction that records the image using the layer, so that a
        concurrent ``rmi`` either sees the new image or has already taken the layer away.
        """
        if pending.fresh:
            self.store.layers.complete(pending.chain_id, self.home, pending.size)
            return
        layer = self.store.layers.get(pending.chain_id)
        cache = self.store.layers.cache(pending.chain_id, self.home)
        if layer is None or not layer.complete or cache is None or not cache.complete:
            raise LayerVanishedError(
                f"using layer {pending.chain_id}: another pydock removed it meanwhile; try again",
                layer_id=pending.chain_id,
            )

    def commit_image(
        self,
        pending: PendingLayer,
        config: bytes,
        *,
        created: str,
        size: int,
        tag: str | None,
        lease: blobs.Lease,
    ) -> str:
        """Store the image ``config`` and record it, its new top layer ``pending`` and ``tag``
        in one transaction; the image id. On failure the layer is abandoned (the lease collects
        the blobs written, if nothing else uses them)."""
        try:
            image_id = self.content.write_bytes(config, before_publish=lease.publishing).digest
            record = ImageRecord(image_id, config.decode(), None, pending.chain_id, created, size)
        except BaseException:
            self.abandon(pending)
            raise

        def record_image() -> None:
            self.store.images.add(record)
            if tag is not None:
                self.store.images.tag(tag, image_id, created=created)

        # The blob stays leased, so a layer registered again unpacks from the content store.
        self.finish_retrying(pending, also=record_image)
        return image_id

    def register_finished(
        self, diff_id: str, parent: str | None, *, opener: LayerOpener | None = None
    ) -> PendingLayer:
        """:meth:`register` then :meth:`finish` on their own (see :meth:`finish_retrying`)."""
        return self.finish_retrying(self.register(diff_id, parent, opener=opener), opener=opener)

    def finish_retrying(
        self,
        pending: PendingLayer,
        *,
        also: Callable[[], None] = lambda: None,
        opener: LayerOpener | None = None,
    ) -> PendingLayer:
        """:meth:`finish` ``pending`` and run ``also`` in one transaction; when a concurrent
        prune or rmi took a reused copy in between, register the layer again (from
        ``opener``, else the content store) and retry, up to ``REGISTER_ATTEMPTS`` times.
        On failure the layer is abandoned. Returns the layer that was finished."""
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                with self.store.transaction():
                    self.finish(pending)
                    also()
                return pending
            except LayerVanishedError:
                if attempt == REGISTER_ATTEMPTS - 1:
                    raise
            except BaseException:
                self.abandon(pending)
                raise
            pending = self.register(pending.diff_id, pending.parent, opener=opener)
        raise AssertionError("unreachable")

    def abandon(self, pending: PendingLayer) -> None:
        """Undo :meth:`register` of a fresh layer after a failure; keeps rows it cannot undo."""
        if not pending.fresh:
            return
        try:
            self.driver.remove(pending.cache_id)
        except graphdriver.LayerUnknownError:
            pass
        except graphdriver.GraphDriverError:
            return  # rows stay incomplete; recovery removes them once this process is gone
        with self.store.transaction():
            self.store.layers.remove_cache(self.home, pending.cache_id)
            if pending.new_row:
                self.store.layers.remove(pending.chain_id)

    def mark_unused(self, chain_ids: list[str]) -> list[str]:
        """Mark for removal, top first, the layers of a stack that nothing uses any more.

        ``chain_ids`` is base first; marking stops at the first layer still used by an image
        or another layer. Run it in the transaction that deletes the image; then call
        :meth:`remove_marked` with the result.
        """
        doomed: list[str] = []
        with self.store.transaction():
            for chain in reversed(chain_ids):
                children = set(self.store.layers.children(chain)) - set(doomed)
                if children or self.store.images.using_layer(chain):
                    break
                if self.store.layers.get(chain) is None:
                    break
                self.store.layers.mark_removing(chain, owner=current_owner())
                doomed.append(chain)
        return doomed

    def remove_marked(self, doomed: list[str]) -> list[str]:
        """Remove the directories and rows of layers from :meth:`mark_unused`, top first.

        Returns the chain ids removed; a layer kept in a driver home that cannot be reached
        from here stays (incomplete) for a later start-up to recover.
        """
        removed = []
        for chain in doomed:
            layer = self.store.layers.get(chain)
            for cache in self.store.layers.caches(chain):
                self._discard(cache)
            if not self.store.layers.remove(chain):
                break
            removed.append(chain)
            if layer is not None:
                # Not a plain delete: another command may hold the same content under a lease.
                blobs.collect(self.store, self.content, [layer.diff_id])
        return removed

    def recover(self) -> list[str]:
        """Remove what crashed processes left: incomplete rows and unknown directories.

        Best effort: a leftover that cannot be removed now (its driver is unavailable, or it
        is busy) keeps its row and is tried again at the next start. Returns the driver ids
        of the directories removed.
        """
        try:
            listed = self.driver.list_layers()  # before reading rows: see the module docstring
        except graphdriver.GraphDriverError:
            listed = []
        removed: list[str] = []
        for cache in self.store.stale_caches():
            with suppress(DriverError):
                if self._discard(cache):
                    removed.append(cache.cache_id)
        stale = [layer.chain_id for layer in self.store.stale_layers()]
        while stale:  # children before parents: repeat while a pass removes something
            left = [chain for chain in stale if not self.store.layers.remove(chain)]
            if len(left) == len(stale):
                break
            stale = left
        known = {cache.cache_id for cache in self.store.layers.caches(driver=self.home)}
        known |= self.store.container_layers()
        for cache_id in listed:
            if cache_id in known or cache_id in removed:
                continue
            with suppress(graphdriver.GraphDriverError):
                self._remove_dir(self.driver, cache_id)
                removed.append(cache_id)
        self.content.sweep_temporary()
        return removed

    def _parent_cache(self, parent: str | None) -> str | None:
        if parent is None:
            return None
        cache = self.store.layers.cache(parent, self.home)
        # A parent this process unpacked moments ago is still incomplete: the layers of one
        # image are completed together, with the image, when it is committed.
        if cache is None or not (cache.complete or cache.owner == current_owner()):
            raise DriverError(
                f"registering a layer on {parent}: the parent is not in driver {self.driver.name}",
                layer_id=parent,
            )
        return cache.cache_id

    def _discard(self, cache: CacheRecord) -> bool:
        """Remove one layer copy (directory, then row); ``False`` if its driver is unavailable."""
        driver = self.driver if cache.driver == self.home else self._drivers_by_home(cache.driver)
        if driver is None:
            return False
        with driver_step(f"removing layer {cache.chain_id}"):
            self._remove_dir(driver, cache.cache_id)
        self.store.layers.remove_cache(cache.driver, cache.cache_id)
        return True

    @staticmethod
    def _remove_dir(driver: graphdriver.Driver, cache_id: str) -> None:
        with suppress(graphdriver.LayerUnknownError):
            driver.remove(cache_id)


@contextmanager
def driver_step(doing: str) -> Iterator[None]:
    """Turn a graph-driver error in the body into a ``DriverError`` saying what was done."""
    try:
        yield
    except graphdriver.GraphDriverError as exc:
        raise DriverError(f"{doing}: {exc}", layer_id=exc.layer_id, path=exc.path) from exc
