"""``load`` (and ``pull``) of archives built to hurt: huge indexes, lying sizes, empty layers.

Each refusal is one ``pydock: loading X: ...`` line, exit 125, and leaves the store as it was.
"""

from __future__ import annotations

import gzip
import io
import json
import sqlite3
import tarfile
from pathlib import Path

import pytest

import graphdriver
from pydock.errors import ImageFormatError
from pydock.image import load
from pydock.image.bundle import DirectoryBundle
from pydock.image.manifest import Platform

from .fakeregistry import fake_registry, image_script
from .imagebuild import (
    LAYER_TYPES,
    MTIME,
    OCI_INDEX,
    OCI_MANIFEST,
    compress,
    config_for,
    seeded_layers,
    sha256,
    write_docker_archive,
    write_multi_arch_layout,
    write_oci_layout,
)
from .pydockrun import assert_fails, cli, cli_process, ok, snapshot

pytestmark = pytest.mark.skipif(
    "vfs" not in graphdriver.registered(), reason="vfs driver not installed"
)

EMPTY = b""
EMPTY_DIGEST = sha256(EMPTY)


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    """A root holding one image already, so "unchanged" means more than "empty"."""
    root = tmp_path / "root"
    write_docker_archive(tmp_path / "base.tar", seeded_layers(30, 1), tags=["base:1"])
    ok(root, "load", "-q", "-i", str(tmp_path / "base.tar"))
    return root


def _blob(layout: Path, digest: str) -> Path:
    return layout / "blobs" / "sha256" / digest.partition(":")[2]


def _put(layout: Path, data: bytes) -> dict[str, object]:
    path = _blob(layout, sha256(data))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return {"digest": sha256(data), "size": len(data)}


def _index(layout: Path, entries: list[dict[str, object]]) -> None:
    (layout / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (layout / "index.json").write_text(json.dumps(index))


def _one_manifest(
    layout: Path, layer: bytes, *, kind: str = "none", **layer_fields: object
) -> dict[str, object]:
    """Store a one-layer image in ``layout``; returns its manifest's descriptor."""
    blob = compress(layer, kind)
    descriptor = {"mediaType": LAYER_TYPES[kind], **_put(layout, blob), **layer_fields}
    config = config_for([layer])
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **_put(layout, config)},
        "layers": [descriptor],
    }
    return {"mediaType": OCI_MANIFEST, **_put(layout, json.dumps(manifest).encode())}


def _named(descriptor: dict[str, object], name: str) -> dict[str, object]:
    return {**descriptor, "annotations": {"io.containerd.image.name": name}}


def _tag_count(root: Path) -> int:
    with sqlite3.connect(root / "pydock.db") as conn:
        count: int = conn.execute("SELECT count(*) FROM image_tags").fetchone()[0]
    return count


# -- huge indexes ----------------------------------------------------------------------------------


def _big_layout(tmp_path: Path, count: int) -> Path:
    """``count`` index entries, each a different name of the same image."""
    layout = tmp_path / "layout"
    descriptor = _one_manifest(layout, seeded_layers(31, 1)[0])
    _index(layout, [_named(descriptor, f"big/img:t{i}") for i in range(count)])
    return layout


@pytest.mark.timeout(30)
def test_index_with_50k_entries_is_read_in_linear_time(tmp_path: Path) -> None:
    """Each name kept once, the manifest resolved once: about a second (was over a minute)."""
    count = 50_000
    layout = _big_layout(tmp_path, count)
    images = load.read_archive(DirectoryBundle(layout), platform=Platform.default())
    assert len(images) == 1 and len(images[0].tags) == count
    assert images[0].tags[:2] == ("docker.io/big/img:t0", "docker.io/big/img:t1")


@pytest.mark.timeout(150)
def test_index_with_50k_entries_loads(tmp_path: Path) -> None:
    """The whole load, the 50,000 tags written to the store included, stays linear too."""
    count = 50_000
    root = tmp_path / "root"
    out = ok(root, "load", "-i", str(_big_layout(tmp_path, count)))
    assert out.count("Loaded image: big/img:") == count
    assert _tag_count(root) == count


def test_repeated_names_are_kept_once(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    descriptor = _one_manifest(layout, seeded_layers(32, 1)[0])
    _index(layout, [_named(descriptor, name) for name in ("a/b:1", "a/b:2", "a/b:1", "a/b:2")])
    root = tmp_path / "root"
    assert ok(root, "load", "-i", str(layout)) == "Loaded image: a/b:1\nLoaded image: a/b:2\n"


def test_entries_sharing_a_nested_index(tmp_path: Path) -> None:
    """Two names of one multi-arch index: the index is read once, both names land."""
    layout = tmp_path / "layout"
    images = write_multi_arch_layout(layout, ["amd64", "arm64"])
    index = json.loads((layout / "index.json").read_text())
    entry = index["manifests"][0]
    entries = [_named(entry, "multi/arch:1"), _named(entry, "multi/arch:2")]
    (layout / "index.json").write_text(json.dumps({**index, "manifests": entries}))
    root = tmp_path / "root"
    out = ok(root, "load", "--platform", "linux/arm64", "-i", str(layout))
    assert out == "Loaded image: multi/arch:1\nLoaded image: multi/arch:2\n"
    described = json.loads(ok(root, "inspect", "multi/arch:2"))[0]
    assert described["Id"] == images["arm64"].config


def test_index_over_the_entry_limit_is_refused(loaded: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    descriptor = _one_manifest(layout, seeded_layers(33, 1)[0])
    _index(layout, [descriptor] * (load.MAX_ENTRIES + 1))
    before = snapshot(loaded)
    assert_fails(
        cli_process(loaded, "load", "-i", str(layout)),
        f"loading {layout}: reading index.json: more than {load.MAX_ENTRIES} entries",
    )
    assert snapshot(loaded) == before


def test_index_over_the_image_limit_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layout = tmp_path / "layout"
    entries = [_one_manifest(layout, layer) for layer in seeded_layers(34, 3)]
    _index(layout, entries)
    monkeypatch.setattr(load, "MAX_IMAGES", 2)
    with pytest.raises(ImageFormatError, match="more than 2 images"):
        load.read_archive(DirectoryBundle(layout), platform=Platform.default())
    monkeypatch.setattr(load, "MAX_IMAGES", 3)
    assert len(load.read_archive(DirectoryBundle(layout), platform=Platform.default())) == 3


def _docker_archive(
    target: Path, manifest: list[dict[str, object]], members: dict[str, bytes]
) -> None:
    members = {**members, "manifest.json": json.dumps(manifest).encode()}
    with tarfile.open(target, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            tar.addfile(info, io.BytesIO(data))


def test_docker_archive_over_the_limits_is_refused(
    loaded: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    layer = seeded_layers(35, 1)[0]
    config = config_for([layer])
    members = {"config.json": config, "layer.tar": layer}
    entry: dict[str, object] = {
        "Config": "config.json",
        "Layers": ["layer.tar"],
        "RepoTags": ["a/b:1", "a/b:2"],
    }
    archive = tmp_path / "many.tar"
    _docker_archive(archive, [entry] * 3, members)
    before = snapshot(loaded)
    monkeypatch.setattr(load, "MAX_IMAGES", 2)
    assert_fails(cli(loaded, "load", "-i", str(archive)), "manifest.json: more than 2 images")
    monkeypatch.setattr(load, "MAX_IMAGES", 3)
    monkeypatch.setattr(load, "MAX_ENTRIES", 5)
    assert_fails(cli(loaded, "load", "-i", str(archive)), "manifest.json: more than 5 names")
    assert snapshot(loaded) == before


# -- sizes -----------------------------------------------------------------------------------------


def test_layer_size_is_checked_when_the_blob_is_stored_already(
    loaded: Path, tmp_path: Path
) -> None:
    """A manifest may not lie about a layer's size because the store has the blob already."""
    layers = seeded_layers(36, 1)
    good = tmp_path / "good"
    image = write_oci_layout(good, layers, compression=["gzip"], name="size/ok:1")
    ok(loaded, "load", "-q", "-i", str(good))
    lying = tmp_path / "lying"
    descriptor = _one_manifest(lying, layers[0], kind="gzip", size=5)
    assert str(descriptor["digest"]) != image.manifest
    _index(lying, [_named(descriptor, "size/lie:1")])
    before = snapshot(loaded)
    line = assert_fails(
        cli_process(loaded, "load", "-i", str(lying)), image.blobs[0], "manifest says 5"
    )
    assert f"loading {lying}: " in line
    assert snapshot(loaded) == before


def test_config_size_is_checked(loaded: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    descriptor = _one_manifest(layout, seeded_layers(37, 1)[0])
    manifest_path = _blob(layout, str(descriptor["digest"]))
    manifest = json.loads(manifest_path.read_bytes())
    manifest["config"]["size"] = 5
    _index(layout, [_named(_put(layout, json.dumps(manifest).encode()), "size/cfg:1")])
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(layout)), "config", "descriptor says 5")
    assert snapshot(loaded) == before


# -- empty layers ----------------------------------------------------------------------------------


def test_zero_byte_layer_file_in_a_docker_archive_is_refused(loaded: Path, tmp_path: Path) -> None:
    archive = tmp_path / "empty.tar"
    config = config_for([EMPTY])
    entry: dict[str, object] = {
        "Config": "config.json",
        "Layers": ["layer.tar"],
        "RepoTags": ["empty/layer:1"],
    }
    _docker_archive(archive, [entry], {"config.json": config, "layer.tar": EMPTY})
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(archive)), "layer.tar: 0 bytes, not a tar")
    assert snapshot(loaded) == before


@pytest.mark.parametrize("kind", ["none", "gzip"])
def test_empty_layer_blob_in_an_oci_layout_is_refused(
    loaded: Path, tmp_path: Path, kind: str
) -> None:
    """0 bytes, or a gzip of 0 bytes: neither is a tar (even an empty layer is 1024 bytes)."""
    layout = tmp_path / "layout"
    _index(layout, [_named(_one_manifest(layout, EMPTY, kind=kind), "empty/layer:1")])
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(layout)), "0 bytes, not a tar")
    assert snapshot(loaded) == before


def test_import_refuses_the_same_empty_input(loaded: Path, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.write_bytes(EMPTY)
    zipped = tmp_path / "empty.gz"
    zipped.write_bytes(gzip.compress(EMPTY))
    before = snapshot(loaded)
    assert_fails(cli(loaded, "import", str(empty), "e:1"), "empty")
    assert_fails(cli(loaded, "import", str(zipped), "e:1"), "empty")
    assert snapshot(loaded) == before


def test_pull_refuses_an_empty_layer(loaded: Path) -> None:
    script = image_script([EMPTY])
    assert EMPTY_DIGEST in json.loads(config_for([EMPTY]))["rootfs"]["diff_ids"]
    before = snapshot(loaded)
    with fake_registry(script) as address:
        assert_fails(
            cli_process(loaded, "pull", "--tls-verify=false", f"{address}/x/empty:1"),
            "0 bytes, not a tar",
        )
    assert snapshot(loaded) == before
