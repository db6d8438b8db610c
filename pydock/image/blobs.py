"""Which blobs of the content store are in use, and collecting those that are not.

A blob is referenced by an image (its config, its manifest, a manifest it was pulled by), by a
layer (its uncompressed tar, or a checked compressed blob of it), or by a lease: a pull or a
load in progress leases a digest before it writes or reuses the blob, so a concurrent
``system prune`` or ``rmi`` never takes a blob from under it. Collection runs inside one store
transaction, whose write lock keeps new leases out until it is done.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from pydock.errors import ContentError
from pydock.image.content import ContentStore
from pydock.store import Store, current_owner


@dataclass(frozen=True)
class PruneReport:
    """What a collection removed: blob digests and the bytes they held."""

    deleted: tuple[str, ...]
    reclaimed: int


def referenced(store: Store) -> set[str]:
    """Digests that images, layers or live leases still refer to."""
    found: set[str] = set()
    for image in store.images.list_images():
        found.add(image.id)
        if image.manifest_digest:
            found.add(image.manifest_digest)
    diff_ids = {layer.diff_id for layer in store.layers.list_layers()}
    found |= diff_ids
    found.update(
        blob.digest for blob in store.distribution.all_layer_blobs() if blob.diff_id in diff_ids
    )
    found.update(store.distribution.all_repo_digests())
    found |= store.distribution.leased()
    return found


def collect(
    store: Store, content: ContentStore, candidates: Iterable[str] | None = None
) -> PruneReport:
    """Delete unreferenced blobs (only among ``candidates`` if given) and stale layer-blob rows."""
    deleted: list[str] = []
    reclaimed = 0
    with store.transaction():
        wanted = content.list_digests() if candidates is None else sorted(set(candidates))
        keep = referenced(store)
        diff_ids = {layer.diff_id for layer in store.layers.list_layers()}
        for blob in store.distribution.all_layer_blobs():
            if blob.diff_id not in diff_ids and blob.digest not in keep:
                store.distribution.remove_layer_blob(blob.digest)
        for digest in wanted:
            if digest in keep or not content.exists(digest):
                continue
            size = content.size(digest)
            if content.delete(digest):
                deleted.append(digest)
                reclaimed += size
    return PruneReport(tuple(deleted), reclaimed)


def usage(store: Store, content: ContentStore) -> tuple[int, int, int, int]:
    """``(blobs, bytes, unreferenced blobs, unreferenced bytes)`` of the content store."""
    keep = referenced(store)
    total = count = loose = loose_bytes = 0
    for digest in content.list_digests():
        try:
            size = content.size(digest)
        except ContentError:  # removed meanwhile by another pydock
            continue
        count += 1
        total += size
        if digest not in keep:
            loose += 1
            loose_bytes += size
    return count, total, loose, loose_bytes


class Lease:
    """The blobs one operation holds; released (and its unused new blobs deleted) at the end."""

    def __init__(self, store: Store, content: ContentStore) -> None:
        self.store = store
        self.content = content
        self.owner = current_owner()
        self.digests: set[str] = set()
        self.written: set[str] = set()

    def hold(self, *digests: str) -> None:
        """Lease ``digests`` before writing or reusing them."""
        fresh = [digest for digest in digests if digest not in self.digests]
        if fresh:
            self.store.distribution.lease(fresh, self.owner)
            self.digests.update(fresh)

    def publishing(self, digest: str) -> None:
        """For ``ContentStore.write(before_publish=...)``: lease a blob about to appear, and
        count it as this operation's (collected, unless something else uses it, on failure)."""
        self.hold(digest)
        self.wrote(digest)

    def wrote(self, digest: str) -> None:
        """Note that this operation created blob ``digest`` (deleted again on failure)."""
        self.written.add(digest)

    def end(self, *, failed: bool) -> None:
        """Drop the leases; after a failure, delete the blobs written that nothing uses."""
        self.store.distribution.release(self.owner)
        if failed and self.written:
            collect(self.store, self.content, self.written)


@contextmanager
def leased(store: Store, content: ContentStore) -> Iterator[Lease]:
    """A :class:`Lease` for the body, ended (cleaning up on failure) when the body exits."""
    lease = Lease(store, content)
    try:
        yield lease
    except BaseException:
        lease.end(failed=True)
        raise
    lease.end(failed=False)
