"""``load``: images from docker-archive tars and OCI image layouts (directory or tar).

A docker-archive (what ``docker save`` writes) has ``manifest.json``: a list of images, each
with its config file, its layer files (base first) and its tags. An OCI layout has
``oci-layout`` and ``index.json``, whose descriptors name manifests (or nested indexes, from
which the host's platform is chosen) in ``blobs/<algorithm>/<hex>``. Layers may be plain,
gzip or zstd tars in both. Everything an image needs is read and checked before its first
layer is unpacked.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace

from graphdriver.compression import Compression, detect
from pydock.errors import ContentError, ImageFormatError, InvalidReferenceError
from pydock.image import manifest as mf
from pydock.image.bundle import Bundle, read_small
from pydock.image.config import ImageConfig
from pydock.image.content import digest_bytes, iter_chunks
from pydock.image.ingest import ImageIngest, LayerBlob
from pydock.image.reference import parse_reference

DOCKER_MANIFEST = "manifest.json"
OCI_INDEX = "index.json"
OCI_LAYOUT = "oci-layout"
# Annotations that name an image in an OCI index (containerd's first, then OCI's own).
NAME_ANNOTATIONS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")

# Bounds on what one archive may list, so a hostile index cannot make ``load`` run for hours or
# hold gigabytes: names (index entries, RepoTags) in all, and distinct images.
MAX_ENTRIES = 100_000
MAX_IMAGES = 10_000

IngestFactory = Callable[[], ImageIngest]


@dataclass(frozen=True)
class LayerFile:
    """A layer of an archive: its path, and the digest and size a manifest promises, if any."""

    path: str
    digest: str | None = None
    size: int | None = None
    media_type: str = ""


@dataclass(frozen=True)
class ArchivedImage:
    """One image of an archive, checked and ready to be taken in."""

    config: bytes
    layers: tuple[LayerFile, ...]
    tags: tuple[str, ...]
    manifest: bytes | None = None


def read_archive(bundle: Bundle, *, platform: mf.Platform) -> list[ArchivedImage]:
    """The images of an archive, in the order it lists them."""
    if bundle.exists(OCI_INDEX):
        return _oci_images(bundle, platform)
    if bundle.exists(DOCKER_MANIFEST):
        return _docker_images(bundle)
    raise ImageFormatError(
        f"reading archive: not an image archive (no {DOCKER_MANIFEST} or {OCI_INDEX})"
    )


def ingest_image(ingest: ImageIngest, bundle: Bundle, image: ArchivedImage) -> str:
    """Store the blobs of ``image``, unpack its layers and commit it; returns its id."""
    diff_ids = ImageConfig.parse(image.config).diff_ids
    for layer, diff_id in zip(image.layers, diff_ids, strict=True):
        ingest.add_layer(_store_layer(ingest, bundle, layer, diff_id))
    return ingest.commit(image.config, manifest=image.manifest, tags=image.tags)


def _store_layer(ingest: ImageIngest, bundle: Bundle, layer: LayerFile, diff_id: str) -> LayerBlob:
    if layer.digest is not None and ingest.has_blob(layer.digest):
        # Stored already, so its digest is right; what the manifest says of its size must be
        # too, or save and push would hand the wrong size on.
        size = ingest.content.size(layer.digest)
        _check_layer_size(layer, size)
        return LayerBlob(layer.digest, layer.media_type, size, diff_id)
    with bundle.open(layer.path) as stream:
        head = stream.read(8)
        if not head:
            _check_layer_size(layer, 0)
        stream.seek(0)
        plain = detect(head) is Compression.NONE
        expected = layer.digest or (diff_id if plain else None)
        try:
            blob = ingest.store_blob(iter_chunks(stream), expected=expected)
        except ContentError as exc:
            raise ContentError(f"reading layer {layer.path}: {exc}", digest=exc.digest) from exc
    _check_layer_size(layer, blob.size)
    media_type = layer.media_type or mf.layer_media_type(detect(head), oci=False)
    return LayerBlob(blob.digest, media_type, blob.size, diff_id)


def _check_layer_size(layer: LayerFile, size: int) -> None:
    if size == 0:
        # A layer tar holds at least the end-of-archive blocks. Docker reads 0 bytes as an
        # empty layer (moby#18170); pydock refuses it, as its import refuses an empty input.
        raise ImageFormatError(f"reading layer {layer.digest or layer.path}: 0 bytes, not a tar")
    if layer.size is not None and size != layer.size:
        raise ImageFormatError(
            f"reading layer {layer.digest or layer.path}: {size} bytes, the manifest says"
            f" {layer.size}"
        )


# -- docker-archive -------------------------------------------------------------------------------


def _docker_images(bundle: Bundle) -> list[ArchivedImage]:
    try:
        entries = json.loads(read_small(bundle, DOCKER_MANIFEST))
    except ValueError as exc:
        raise ImageFormatError(f"reading {DOCKER_MANIFEST}: not JSON ({exc})") from exc
    if not isinstance(entries, list) or not entries:
        raise ImageFormatError(f"reading {DOCKER_MANIFEST}: expected a non-empty list of images")
    _check_count(len(entries), MAX_IMAGES, "images", DOCKER_MANIFEST)
    names = 0
    images = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str):
            raise ImageFormatError(f"reading {DOCKER_MANIFEST}: an entry has no Config")
        layers = entry.get("Layers") or []
        if not isinstance(layers, list) or not all(isinstance(item, str) for item in layers):
            raise ImageFormatError(f"reading {DOCKER_MANIFEST}: Layers is not a list of paths")
        repo_tags = entry.get("RepoTags") or []
        if not isinstance(repo_tags, list):
            raise ImageFormatError(f"reading {DOCKER_MANIFEST}: RepoTags is not a list")
        names += len(repo_tags)
        _check_count(names, MAX_ENTRIES, "names", DOCKER_MANIFEST)
        config = read_small(bundle, entry["Config"])
        files = tuple(LayerFile(path) for path in layers)
        _check_layers(bundle, config, files, entry["Config"])
        tags = tuple(dict.fromkeys(_tag(text) for text in repo_tags))
        images.append(ArchivedImage(config, files, tags))
    return images


def _check_count(count: int, limit: int, what: str, where: str) -> None:
    if count > limit:
        raise ImageFormatError(f"reading {where}: more than {limit} {what} (pydock's limit)")


def _tag(text: object) -> str:
    if not isinstance(text, str):
        raise ImageFormatError(f"reading {DOCKER_MANIFEST}: a RepoTags entry is not a string")
    try:
        return str(parse_reference(text))
    except InvalidReferenceError as exc:
        raise ImageFormatError(f"reading {DOCKER_MANIFEST}: {exc}") from exc


def _check_layers(bundle: Bundle, config: bytes, layers: tuple[LayerFile, ...], where: str) -> None:
    try:
        diff_ids = ImageConfig.parse(config).diff_ids
    except ValueError as exc:
        raise ImageFormatError(f"reading config {where}: not JSON ({exc})") from exc
    if len(diff_ids) != len(layers):
        raise ImageFormatError(
            f"reading config {where}: it names {len(diff_ids)} layers, the manifest {len(layers)}"
        )
    for layer in layers:
        if not bundle.exists(layer.path):
            what = layer.digest or layer.path
            raise ImageFormatError(f"reading archive: layer {what} is missing from the archive")


# -- OCI layout -----------------------------------------------------------------------------------


def _blob_path(digest: str) -> str:
    algorithm, _, hexpart = digest.partition(":")
    return f"blobs/{algorithm}/{hexpart}"


def _read_blob(bundle: Bundle, descriptor: mf.Descriptor, what: str) -> bytes:
    path = _blob_path(descriptor.digest)
    if not bundle.exists(path):
        raise ImageFormatError(f"reading {what}: blob {descriptor.digest} is missing")
    data = read_small(bundle, path)
    found = digest_bytes(data)
    if found != descriptor.digest:
        raise ContentError(
            f"reading {what} {descriptor.digest}: content has digest {found}",
            digest=descriptor.digest,
        )
    if len(data) != descriptor.size:
        raise ImageFormatError(
            f"reading {what} {descriptor.digest}: {len(data)} bytes, its descriptor says"
            f" {descriptor.size}"
        )
    return data


def _oci_images(bundle: Bundle, platform: mf.Platform) -> list[ArchivedImage]:
    if bundle.exists(OCI_LAYOUT):
        try:
            layout = json.loads(read_small(bundle, OCI_LAYOUT))
        except ValueError as exc:
            raise ImageFormatError(f"reading {OCI_LAYOUT}: not JSON ({exc})") from exc
        if not isinstance(layout, dict) or "imageLayoutVersion" not in layout:
            raise ImageFormatError(f"reading {OCI_LAYOUT}: no imageLayoutVersion")
    index = mf.parse(read_small(bundle, OCI_INDEX), what=OCI_INDEX)
    if not isinstance(index, mf.Index):
        raise ImageFormatError(f"reading {OCI_INDEX}: not an image index")
    _check_count(len(index.manifests), MAX_ENTRIES, "entries", OCI_INDEX)
    # Each blob is read once and each name kept once (in a dict: ordered, constant-time
    # lookups), however often the index repeats them: linear in the number of entries.
    chosen: _Chosen = {}
    found: dict[str, ArchivedImage] = {}
    names: dict[str, dict[str, None]] = {}
    for entry in index.manifests:
        digest, manifest_bytes = _resolve(bundle, entry, platform, chosen)
        if manifest_bytes is not None and digest not in found:
            _check_count(len(found) + 1, MAX_IMAGES, "images", OCI_INDEX)
            found[digest] = _oci_image(bundle, digest, manifest_bytes)
            names[digest] = {}
        name = _entry_name(entry)
        if name:
            names[digest][name] = None
    if not found:
        raise ImageFormatError(f"reading {OCI_INDEX}: the index lists no image")
    return [replace(image, tags=tuple(names[digest])) for digest, image in found.items()]


# The manifest chosen for each (digest, media type) of a manifest or index already read.
_Chosen = dict[tuple[str, str], str]


def _resolve(
    bundle: Bundle, entry: mf.Descriptor, platform: mf.Platform, chosen: _Chosen
) -> tuple[str, bytes | None]:
    """The manifest ``entry`` leads to, and its bytes unless ``chosen`` knew it already."""
    seen = []
    for _ in range(8):  # nested indexes, bounded
        key = (entry.digest, entry.media_type)
        known = chosen.get(key)
        if known is not None:
            digest, data = known, None
            break
        seen.append(key)
        data = _read_blob(bundle, entry, "manifest")
        document = mf.parse(data, entry.media_type, what=f"manifest {entry.digest}")
        if isinstance(document, mf.Manifest):
            digest = entry.digest
            break
        entry = mf.select(document, platform, what=f"index {entry.digest}")
    else:
        raise ImageFormatError(f"reading {OCI_INDEX}: indexes nested too deeply")
    for key in seen:
        chosen[key] = digest
    return digest, data


def _oci_image(bundle: Bundle, digest: str, data: bytes) -> ArchivedImage:
    document = mf.parse(data, what=f"manifest {digest}")
    assert isinstance(document, mf.Manifest)
    config = _read_blob(bundle, document.config, "config")
    files = tuple(
        LayerFile(_blob_path(layer.digest), layer.digest, layer.size, layer.media_type)
        for layer in document.layers
    )
    _check_layers(bundle, config, files, document.config.digest)
    return ArchivedImage(config, files, (), data)


def _entry_name(entry: mf.Descriptor) -> str | None:
    for key in NAME_ANNOTATIONS:
        text = entry.annotations.get(key, "")
        # A bare tag ("latest") names no repository: such an image loads untagged.
        if text and ("/" in text or ":" in text):
            try:
                ref = parse_reference(text)
            except InvalidReferenceError:
                continue
            if ref.tag:
                return str(ref)
    return None
