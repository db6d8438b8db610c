"""Garbage collection of the content store: references, leases, candidates."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydock.errors import ContentError
from pydock.image import blobs
from pydock.image.content import ContentStore
from pydock.store import ImageRecord, LayerBlobRecord, Store, current_owner

CREATED = "2024-01-01T00:00:00Z"


@pytest.fixture
def store() -> Store:
    return Store.in_memory()


def test_collect_keeps_what_images_and_layers_use(store: Store, tmp_path: Path) -> None:
    content = ContentStore(tmp_path)
    config = content.write_bytes(b'{"rootfs":{}}').digest
    layer = content.write_bytes(b"layer tar").digest
    packed = content.write_bytes(b"gzip of the layer").digest
    manifest = content.write_bytes(b"manifest").digest
    orphan = content.write_bytes(b"orphan").digest
    store.layers.add(layer, layer, None, owner="x", created=CREATED)
    store.distribution.add_layer_blob(LayerBlobRecord(packed, layer, "gzip", 17, 9))
    store.images.add(ImageRecord(config, "{}", manifest, None, CREATED, 0))
    report = blobs.collect(store, content)
    assert report.deleted == (orphan,) and report.reclaimed == len(b"orphan")
    assert sorted(content.list_digests()) == sorted([config, layer, packed, manifest])
    assert blobs.usage(store, content) == (
        4,
        sum(content.size(d) for d in content.list_digests()),
        0,
        0,
    )


def test_leases_protect_blobs_of_live_owners_only(store: Store, tmp_path: Path) -> None:
    content = ContentStore(tmp_path)
    mine = content.write_bytes(b"in progress").digest
    theirs = content.write_bytes(b"of a dead process").digest
    store.distribution.lease([mine], current_owner())
    store.distribution.lease([theirs], "999999999:1")
    assert blobs.collect(store, content).deleted == (theirs,)
    assert store.distribution.leased() == {mine}
    store.distribution.release(current_owner())
    assert blobs.collect(store, content).deleted == (mine,)


def test_a_failed_lease_deletes_only_what_it_wrote(store: Store, tmp_path: Path) -> None:
    content = ContentStore(tmp_path)
    kept = content.write_bytes(b"someone else's").digest
    with pytest.raises(ContentError), blobs.leased(store, content) as lease:
        written = content.write_bytes(b"mine").digest
        lease.hold(written, kept)
        lease.wrote(written)
        raise ContentError("boom")
    assert content.list_digests() == [kept]
    assert store.distribution.leased() == set()


def test_a_blob_is_leased_before_it_appears(store: Store, tmp_path: Path) -> None:
    """The window a concurrent prune could use: blob stored, not yet recorded by its writer."""
    content = ContentStore(tmp_path)
    seen: list[bool] = []
    with blobs.leased(store, content) as lease:

        def hold(digest: str) -> None:
            seen.append(content.exists(digest))  # not there yet when the lease is taken
            lease.hold(digest)

        written = content.write_bytes(b"layer in flight", before_publish=hold).digest
        report = blobs.collect(store, content)  # a prune between the write and the record
        assert report.deleted == () and content.exists(written)
    assert seen == [False]
    # Once the lease ends, nothing protects an unrecorded blob any more.
    assert blobs.collect(store, content).deleted == (written,)
