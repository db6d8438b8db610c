"""Seeded test images written by hand as OCI layouts and docker-archives.

The layouts follow the image-spec directly (``oci-layout``, ``index.json``, ``blobs/sha256``)
so tests do not depend on pydock's own writer to make their input.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import zstandard

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER_TYPES = {
    "none": "application/vnd.oci.image.layer.v1.tar",
    "gzip": "application/vnd.oci.image.layer.v1.tar+gzip",
    "zstd": "application/vnd.oci.image.layer.v1.tar+zstd",
}
MTIME = 1_700_000_000


def sha256(data: bytes) -> str:
    """``sha256:<hex>`` of ``data``."""
    return "sha256:" + hashlib.sha256(data).hexdigest()


def layer_tar(files: dict[str, bytes], *, whiteouts: Sequence[str] = ()) -> bytes:
    """A layer tar of ``files`` (parents made) and whiteouts, sorted, stamped with one mtime."""
    entries: dict[str, bytes | None] = {}
    for name, data in files.items():
        parts = name.split("/")
        for depth in range(1, len(parts)):
            entries.setdefault("/".join(parts[:depth]), None)
        entries[name] = data
    for name in whiteouts:
        parent, _, base = name.rpartition("/")
        entries[f"{parent}/.wh.{base}" if parent else f".wh.{base}"] = b""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name in sorted(entries):
            data = entries[name]
            info = tarfile.TarInfo(name)
            info.mtime = MTIME
            if data is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
            else:
                info.size, info.mode = len(data), 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def seeded_layers(seed: int, count: int = 3) -> list[bytes]:
    """``count`` layers of seeded random files; the last deletes a file of the first."""
    rng = random.Random(seed)
    layers = []
    for index in range(count):
        files = {
            f"layer{index}/file{n}": rng.randbytes(rng.randrange(10, 30_000)) for n in range(5)
        }
        whiteouts = ["layer0/file1"] if index == count - 1 and count > 1 else []
        layers.append(layer_tar(files, whiteouts=whiteouts))
    return layers


def compress(data: bytes, kind: str) -> bytes:
    """``data`` as is, gzip'ed (mtime 0) or zstd'ed."""
    if kind == "gzip":
        return gzip.compress(data, mtime=0)
    if kind == "zstd":
        return zstandard.ZstdCompressor().compress(data)
    return data


def config_for(layers: Sequence[bytes], *, arch: str = "amd64", seed: int = 0) -> bytes:
    """An image config for uncompressed ``layers``."""
    document = {
        "architecture": arch,
        "os": "linux",
        "created": "2024-02-03T04:05:06.123456789Z",
        "config": {"Env": [f"SEED={seed}"], "Cmd": ["/bin/sh"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(layer) for layer in layers]},
        "history": [
            {"created": "2024-02-03T04:05:06Z", "created_by": f"step {index}"}
            for index in range(len(layers))
        ],
    }
    return json.dumps(document, sort_keys=True).encode()


@dataclass(frozen=True)
class BuiltImage:
    """Digests of an image written by this module."""

    config: str
    manifest: str
    diff_ids: tuple[str, ...]
    blobs: tuple[str, ...]


def _put(blobs: Path, data: bytes) -> dict[str, object]:
    digest = sha256(data)
    (blobs / digest.partition(":")[2]).write_bytes(data)
    return {"digest": digest, "size": len(data)}


def write_manifest(
    blobs: Path, layers: Sequence[bytes], compression: Sequence[str], *, arch: str, seed: int
) -> tuple[BuiltImage, dict[str, object]]:
    """Store config, layers and manifest in ``blobs``; returns the image and its descriptor."""
    config = config_for(layers, arch=arch, seed=seed)
    descriptors = []
    for layer, kind in zip(layers, compression, strict=True):
        descriptors.append({"mediaType": LAYER_TYPES[kind], **_put(blobs, compress(layer, kind))})
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **_put(blobs, config)},
        "layers": descriptors,
    }
    data = json.dumps(manifest).encode()
    descriptor = {"mediaType": OCI_MANIFEST, **_put(blobs, data)}
    image = BuiltImage(
        sha256(config),
        sha256(data),
        tuple(sha256(layer) for layer in layers),
        tuple(str(d["digest"]) for d in descriptors),
    )
    return image, descriptor


def write_oci_layout(
    directory: Path,
    layers: Sequence[bytes],
    *,
    compression: Sequence[str] | None = None,
    name: str | None = None,
    seed: int = 0,
) -> BuiltImage:
    """An OCI layout with one image; ``name`` goes to the ref-name annotations."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    kinds = list(compression or ["gzip"] * len(layers))
    image, descriptor = write_manifest(blobs, layers, kinds, arch="amd64", seed=seed)
    if name:
        tag = name.rpartition(":")[2]
        descriptor["annotations"] = {
            "io.containerd.image.name": name,
            "org.opencontainers.image.ref.name": tag,
        }
    _finish_layout(directory, [descriptor])
    return image


def write_multi_arch_layout(
    directory: Path, arches: Sequence[str], *, tag: str = "latest"
) -> dict[str, BuiltImage]:
    """An OCI layout whose index (tagged ``tag``) points at an inner per-arch index."""
    blobs = directory / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    images = {}
    entries = []
    for seed, arch in enumerate(arches):
        layers = seeded_layers(100 + seed, 2)
        image, descriptor = write_manifest(blobs, layers, ["gzip", "gzip"], arch=arch, seed=seed)
        descriptor["platform"] = {"os": "linux", "architecture": arch}
        entries.append(descriptor)
        images[arch] = image
    inner = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}).encode()
    descriptor = {"mediaType": OCI_INDEX, **_put(blobs, inner)}
    descriptor["annotations"] = {"org.opencontainers.image.ref.name": tag}
    _finish_layout(directory, [descriptor])
    return images


def _finish_layout(directory: Path, manifests: list[dict[str, object]]) -> None:
    (directory / "oci-layout").write_text('{"imageLayoutVersion": "1.0.0"}')
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": manifests}
    (directory / "index.json").write_text(json.dumps(index))


def tar_directory(directory: Path, target: Path) -> Path:
    """``directory``'s content as a tar at ``target``."""
    with tarfile.open(target, "w") as tar:
        for path in sorted(directory.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return target


def write_docker_archive(
    target: Path,
    layers: Sequence[bytes],
    *,
    tags: Sequence[str] = (),
    compression: str = "none",
    seed: int = 0,
) -> BuiltImage:
    """A docker-archive (``manifest.json`` style, as ``docker save`` writes) of one image."""
    config = config_for(layers, seed=seed)
    config_name = sha256(config).partition(":")[2] + ".json"
    members = {config_name: config}
    names = []
    for layer in layers:
        name = f"{sha256(layer).partition(':')[2]}/layer.tar"
        members[name] = compress(layer, compression)
        names.append(name)
    manifest = [{"Config": config_name, "RepoTags": list(tags), "Layers": names}]
    members["manifest.json"] = json.dumps(manifest).encode()
    with tarfile.open(target, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), MTIME
            tar.addfile(info, io.BytesIO(data))
    blobs = tuple(sha256(compress(layer, compression)) for layer in layers)
    return BuiltImage(sha256(config), "", tuple(sha256(layer) for layer in layers), blobs)


def with_config(archive: bytes, settings: dict[str, object], tag: str) -> bytes:
    """A docker-archive of the same image with ``settings`` set in its config's ``config``
    (``Healthcheck``, ``ExposedPorts``, ...) and the tag ``tag`` (so a new image id)."""
    members: dict[str, bytes] = {}
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for member in tar.getmembers():
            if member.isfile():
                extracted = tar.extractfile(member)
                assert extracted is not None
                members[member.name] = extracted.read()
    [manifest] = json.loads(members.pop("manifest.json"))
    config = json.loads(members.pop(manifest["Config"]))
    config["config"].update(settings)
    data = json.dumps(config).encode()
    name = hashlib.sha256(data).hexdigest() + ".json"
    members[name] = data
    manifest.update(Config=name, RepoTags=[tag])
    members["manifest.json"] = json.dumps([manifest]).encode()
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for member_name, content in members.items():
            info = tarfile.TarInfo(member_name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return out.getvalue()
