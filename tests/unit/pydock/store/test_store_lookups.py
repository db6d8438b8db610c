"""The store's small lookups and refusals, each on what the store holds."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pydock.store import ImageRecord, Store, current_owner
from pydock.store.networks import NetworkRecord, PortBinding
from pydock.store.volumes import VolumeRecord

CREATED = "2026-12-06T00:00:00Z"
DIFF = "sha256:" + "d" * 64


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path)
    yield opened
    opened.close()


def test_an_image_keeps_the_manifest_it_was_last_loaded_with(store: Store) -> None:
    image_id = "sha256:" + "1" * 64
    with store.transaction():
        store.images.add(ImageRecord(image_id, "{}", None, None, CREATED, 0))
    store.images.set_manifest(image_id, "sha256:" + "m" * 64)
    found = store.images.get(image_id)
    assert found is not None and found.manifest_digest == "sha256:" + "m" * 64
    assert store.images.tag_time("docker.io/library/nosuch:latest") is None


def test_unknown_blobs_and_repo_digests_are_none(store: Store) -> None:
    assert store.distribution.layer_blob("sha256:" + "0" * 64) is None
    assert store.distribution.resolve_repo_digest("docker.io/x/y", "sha256:" + "0" * 64) is None


def test_a_diff_is_in_use_while_a_layer_has_it(store: Store) -> None:
    assert not store.layers.uses_diff(DIFF)
    with store.transaction():
        store.layers.add("sha256:" + "2" * 64, DIFF, None, owner=current_owner(), created=CREATED)
    assert store.layers.uses_diff(DIFF)
    assert not store.layers.uses_diff("sha256:" + "e" * 64)


def test_a_taken_network_or_volume_name_is_refused(store: Store) -> None:
    network = NetworkRecord("n" * 64, "front", "bridge", CREATED, "10.1.0.0/24", "10.1.0.1")
    assert store.networks.add(network)
    assert not store.networks.add(NetworkRecord("m" * 64, "front", "bridge", CREATED))
    assert [n.id for n in store.networks.list_networks()] == ["n" * 64]
    assert store.volumes.add(VolumeRecord("data", CREATED))
    assert not store.volumes.add(VolumeRecord("data", CREATED, anonymous=True))
    kept = store.volumes.get("data")
    assert kept is not None and not kept.anonymous


def test_recovery_has_work_while_a_port_is_held(store: Store) -> None:
    assert not store.networks.has_rows()
    binding = PortBinding("c" * 64, "tcp", 80, "127.0.0.1", 8080)
    assert store.networks.hold_ports([binding]) is None
    assert store.networks.has_rows()
    store.networks.release_ports("c" * 64)
    assert not store.networks.has_rows()
