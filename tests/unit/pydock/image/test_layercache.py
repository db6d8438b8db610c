"""Layers across the store and a real (unprivileged) vfs driver: register, reuse, undo,
remove, and recovery of what a crashed process left."""

from __future__ import annotations

import io
import json
import random
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

import graphdriver
from pydock.clock import now_rfc3339
from pydock.errors import DriverError
from pydock.image import blobs
from pydock.image.config import chain_id
from pydock.image.content import ContentStore
from pydock.image.ingest import ImageIngest, LayerBlob
from pydock.image.layercache import LayerManager
from pydock.image.layertar import store_layer_tar
from pydock.store import Store, current_owner
from unit.pydock.store.deadowner import dead_owner

pytestmark = pytest.mark.skipif(
    "vfs" not in graphdriver.registered(), reason="vfs driver not installed"
)


def layer_tar(seed: int, files: int = 3) -> bytes:
    rng = random.Random(seed)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(files):
            data = rng.randbytes(rng.randrange(1, 5000))
            info = tarfile.TarInfo(f"seed{seed}/file{index}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def content_size(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sum(member.size for member in tar.getmembers() if member.isreg())


class World:
    """A store, content store and vfs driver under one temporary root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.store = Store.open(root)
        self.content = ContentStore(root)
        self.driver = graphdriver.get_driver("vfs", root / "vfs")
        self.layers = LayerManager(self.store, self.content, self.driver, "vfs", lambda home: None)

    def put(self, data: bytes) -> str:
        return store_layer_tar(io.BytesIO(data), self.content).digest


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    made = World(tmp_path)
    yield made
    made.driver.cleanup()
    made.store.close()


def test_register_unpacks_once_and_reuses(world: World) -> None:
    data = layer_tar(1)
    diff = world.put(data)
    first = world.layers.register(diff, None)
    assert first.fresh and first.size == content_size(data) and first.chain_id == diff
    layer = world.store.layers.get(diff)
    assert layer is not None and not layer.complete  # complete only with the image
    world.layers.finish(first)
    layer = world.store.layers.get(diff)
    assert layer is not None and layer.complete and layer.size == first.size
    again = world.layers.register(diff, None)
    assert not again.fresh and again.cache_id == first.cache_id
    assert world.driver.list_layers() == [first.cache_id]
    path = Path(world.driver.metadata(first.cache_id)["Path"])
    assert (path / "seed1" / "file0").is_file()


def test_child_layer_builds_on_its_parent(world: World) -> None:
    base = world.layers.register(world.put(layer_tar(1)), None)
    world.layers.finish(base)
    top_diff = world.put(layer_tar(2))
    top = world.layers.register(top_diff, base.chain_id)
    world.layers.finish(top)
    assert top.chain_id == chain_id(base.chain_id, top_diff)
    root = Path(world.driver.metadata(top.cache_id)["Path"])
    assert (root / "seed1").is_dir() and (root / "seed2").is_dir()


def test_failed_unpack_leaves_no_row_and_no_directory(world: World) -> None:
    data = layer_tar(3)
    # Store a broken blob under a made-up digest, as if the content store had been damaged.
    broken = world.content.write_bytes(data[:700]).digest
    with pytest.raises(DriverError, match="unpacking layer"):
        world.layers.register(broken, None)
    assert world.store.layers.list_layers() == []
    assert world.store.layers.caches() == []
    assert world.driver.list_layers() == []


def test_unused_layers_are_removed_top_first(world: World) -> None:
    base = world.layers.register(world.put(layer_tar(1)), None)
    world.layers.finish(base)
    top = world.layers.register(world.put(layer_tar(2)), base.chain_id)
    world.layers.finish(top)
    doomed = world.layers.mark_unused([base.chain_id, top.chain_id])
    assert doomed == [top.chain_id, base.chain_id]
    assert world.layers.remove_marked(doomed) == doomed
    assert world.store.layers.list_layers() == []
    assert world.driver.list_layers() == []
    assert world.content.list_digests() == []


def test_recover_removes_leftovers_of_dead_processes_only(world: World) -> None:
    diff = world.put(layer_tar(4))
    created = now_rfc3339()
    # A crashed import: rows written, directory made, never completed.
    with world.store.transaction():
        world.store.layers.add(diff, diff, None, owner=dead_owner(), created=created)
        world.store.layers.add_cache(diff, "vfs", "crashed", owner=dead_owner(), created=created)
    world.driver.create("crashed", None)
    # An import in progress in a live process (this one).
    live = world.put(layer_tar(5))
    with world.store.transaction():
        world.store.layers.add(live, live, None, owner=current_owner(), created=created)
        world.store.layers.add_cache(
            live, "vfs", "inprogress", owner=current_owner(), created=created
        )
    world.driver.create("inprogress", None)
    # A directory no row knows of.
    world.driver.create("orphan", None)

    removed = world.layers.recover()

    assert sorted(removed) == ["crashed", "orphan"]
    assert world.driver.list_layers() == ["inprogress"]
    assert world.store.layers.get(diff) is None
    assert [cache.cache_id for cache in world.store.layers.caches()] == ["inprogress"]


def test_recover_removes_a_stack_left_half_removed(world: World) -> None:
    base = world.layers.register(world.put(layer_tar(1)), None)
    world.layers.finish(base)
    top = world.layers.register(world.put(layer_tar(2)), base.chain_id)
    world.layers.finish(top)
    # An rmi killed after marking both layers for removal, before removing anything.
    for chain in (top.chain_id, base.chain_id):
        world.store.layers.mark_removing(chain, owner=dead_owner())
    assert sorted(world.layers.recover()) == sorted([top.cache_id, base.cache_id])
    assert world.store.layers.list_layers() == []
    assert world.driver.list_layers() == []


def test_reused_layer_removed_meanwhile_is_refused(world: World) -> None:
    first = world.layers.register(world.put(layer_tar(1)), None)
    world.layers.finish(first)
    reused = world.layers.register(first.diff_id, None)
    assert not reused.fresh
    world.layers.remove_marked(world.layers.mark_unused([first.chain_id]))
    with pytest.raises(DriverError, match="removed it meanwhile"):
        world.layers.finish(reused)


def test_commit_registers_again_when_a_prune_takes_the_reused_layer(world: World) -> None:
    first = world.layers.register(world.put(layer_tar(1)), None)
    world.layers.finish(first)
    config = b'{"rootfs": {"type": "layers", "diff_ids": ["' + first.diff_id.encode() + b'"]}}'
    with blobs.leased(world.store, world.content) as lease:
        lease.hold(first.diff_id)  # as import does for the blob it stored
        reused = world.layers.register(first.diff_id, None)
        assert not reused.fresh
        # A concurrent prune removes the copy between register and the image's transaction.
        world.layers.remove_marked(world.layers.mark_unused([first.chain_id]))
        assert world.driver.list_layers() == []
        image_id = world.layers.commit_image(
            reused, config, created=now_rfc3339(), size=reused.size, tag="again:1", lease=lease
        )
    image = world.store.images.get(image_id)
    assert image is not None and image.top_layer == first.chain_id
    layer = world.store.layers.get(first.chain_id)
    cache = world.store.layers.cache(first.chain_id, "vfs")
    assert layer is not None and layer.complete and cache is not None and cache.complete
    assert world.driver.list_layers() == [cache.cache_id]
    assert cache.cache_id != reused.cache_id  # unpacked afresh


def test_register_finished_unpacks_again_after_a_concurrent_removal(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    first = world.layers.register(world.put(layer_tar(2)), None)
    world.layers.finish(first)
    real_register = world.layers.register
    calls = []

    def register_then_lose(diff_id: str, parent: str | None, **kwargs: object) -> object:
        pending = real_register(diff_id, parent)
        calls.append(pending.fresh)
        if not pending.fresh:  # another pydock removes it right after it was found
            world.layers.remove_marked(world.layers.mark_unused([pending.chain_id]))
        return pending

    monkeypatch.setattr(world.layers, "register", register_then_lose)
    with blobs.leased(world.store, world.content) as lease:
        lease.hold(first.diff_id)  # an image's blobs stay while the image does
        pending = world.layers.register_finished(first.diff_id, None)
    assert calls == [False, True]
    assert pending.fresh
    cache = world.store.layers.cache(first.chain_id, "vfs")
    assert cache is not None and cache.complete and cache.cache_id == pending.cache_id


def test_load_registers_again_when_a_prune_takes_the_reused_layers(world: World) -> None:
    data = [layer_tar(3), layer_tar(4)]
    digests = [world.put(item) for item in data]
    base = world.layers.register(digests[0], None)
    world.layers.finish(base)
    top = world.layers.register(digests[1], base.chain_id)
    world.layers.finish(top)
    config = json.dumps({"rootfs": {"type": "layers", "diff_ids": digests}}).encode()
    with blobs.leased(world.store, world.content) as lease:
        ingest = ImageIngest(world.store, world.content, world.layers, lease)
        for digest, item in zip(digests, data, strict=True):
            ingest.add_layer(
                LayerBlob(digest, "application/vnd.oci.image.layer.v1.tar", len(item), digest)
            )
        # Both copies were reused; a concurrent prune removes them before the commit.
        world.layers.remove_marked(world.layers.mark_unused([base.chain_id, top.chain_id]))
        assert world.driver.list_layers() == []
        image_id = ingest.commit(config, tags=["loaded:1"])
    image = world.store.images.get(image_id)
    assert image is not None and image.top_layer == top.chain_id
    caches = [world.store.layers.cache(chain, "vfs") for chain in (base.chain_id, top.chain_id)]
    assert all(cache is not None and cache.complete for cache in caches)
    assert sorted(world.driver.list_layers()) == sorted(c.cache_id for c in caches if c)
