"""Layer identities, image configs, and storing a layer tar from any compression."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from pathlib import Path

import pytest
import zstandard

import graphdriver
from pydock.errors import LayerInputError
from pydock.image.config import (
    HistoryEntry,
    ImageConfig,
    build_config,
    chain_id,
    chain_ids,
    image_id,
)
from pydock.image.content import ContentStore
from pydock.image.layertar import store_layer_tar

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64


def seeded_tar(seed: int = 3) -> bytes:
    rng = random.Random(seed)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index in range(4):
            info = tarfile.TarInfo(f"file{index}")
            data = rng.randbytes(rng.randrange(1, 20000))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def test_chain_ids_follow_the_oci_definition() -> None:
    assert chain_id(None, A) == A
    second = "sha256:" + hashlib.sha256(f"{A} {B}".encode()).hexdigest()
    assert chain_id(A, B) == second
    third = "sha256:" + hashlib.sha256(f"{second} {A}".encode()).hexdigest()
    assert chain_ids([A, B, A]) == [A, second, third]
    assert chain_ids([]) == []


def test_config_is_canonical_and_names_its_layers() -> None:
    history = [HistoryEntry("2024-05-01T12:00:00Z", comment="Imported from -")]
    config = build_config([A], created="2024-05-01T12:00:00Z", history=history)
    assert config == build_config([A], created="2024-05-01T12:00:00Z", history=history)
    document = json.loads(config)
    assert document["rootfs"] == {"type": "layers", "diff_ids": [A]}
    assert document["os"] == "linux" and document["architecture"]
    assert document["history"] == [
        {"created": "2024-05-01T12:00:00Z", "comment": "Imported from -"}
    ]
    assert image_id(config) == "sha256:" + hashlib.sha256(config).hexdigest()
    parsed = ImageConfig.parse(config)
    assert parsed.diff_ids == (A,) and parsed.created == "2024-05-01T12:00:00Z"


def test_parse_tolerates_sparse_configs() -> None:
    parsed = ImageConfig.parse("{}")
    assert parsed.diff_ids == () and parsed.history == () and parsed.config == {}


@pytest.mark.parametrize(
    "compress",
    [lambda data: data, gzip.compress, lambda data: zstandard.ZstdCompressor().compress(data)],
    ids=["plain", "gzip", "zstd"],
)
def test_stored_layer_is_the_uncompressed_tar(tmp_path: Path, compress: object) -> None:
    content = ContentStore(tmp_path)
    data = seeded_tar()
    assert callable(compress)
    stored = store_layer_tar(io.BytesIO(compress(data)), content)
    assert stored.digest == "sha256:" + hashlib.sha256(data).hexdigest()
    assert content.read_bytes(stored.digest) == data


def test_truncated_gzip_layer_stores_nothing(tmp_path: Path) -> None:
    content = ContentStore(tmp_path)
    packed = gzip.compress(seeded_tar())
    with pytest.raises((LayerInputError, graphdriver.ArchiveError)):
        store_layer_tar(io.BytesIO(packed[: len(packed) // 2]), content)
    assert content.list_digests() == []
    assert list(content.directory.iterdir()) == []


def test_truncated_plain_layer_stores_nothing(tmp_path: Path) -> None:
    content = ContentStore(tmp_path)
    data = seeded_tar()
    with pytest.raises(LayerInputError, match="truncated"):
        store_layer_tar(io.BytesIO(data[:3000]), content)
    assert list(content.directory.iterdir()) == []
