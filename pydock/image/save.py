"""``save``: images as a docker-archive or an OCI archive, written from the content store.

docker-archive (what ``docker save`` and ``skopeo copy docker-archive:`` write): uncompressed
layer tars named ``<diff id hex>.tar``, the config as ``<image id hex>.json`` and
``manifest.json`` listing them with the tags. oci-archive: a tar of an OCI image layout. An
image loaded or pulled with a manifest whose blobs are all here is written with that very
manifest and those blobs (so digests survive a save and a load); otherwise an OCI manifest of
the stored layers is made. Members are sorted and stamped with time 0: the same images always
give the same bytes.
"""

from __future__ import annotations

import enum
import io
import json
import tarfile
from collections.abc import Sequence
from dataclasses import dataclass
from typing import BinaryIO

from graphdriver.compression import Compression, open_decompressed
from pydock.errors import ContentError
from pydock.image import manifest as mf
from pydock.image.config import ImageConfig
from pydock.image.content import CHUNK_SIZE, ContentStore, digest_bytes
from pydock.image.reference import parse_reference
from pydock.store import ImageRecord, Store

_COMPRESSION_OF = {
    mf.OCI_LAYER_GZIP: Compression.GZIP,
    mf.DOCKER_LAYER_GZIP: Compression.GZIP,
    mf.OCI_LAYER_ZSTD: Compression.ZSTD,
}


class ArchiveFormat(enum.StrEnum):
    """The archive formats ``save`` writes."""

    DOCKER = "docker-archive"
    OCI = "oci-archive"


@dataclass(frozen=True)
class SaveItem:
    """An image to save, and the tags (full references) to write for it."""

    image: ImageRecord
    tags: tuple[str, ...]


@dataclass(frozen=True)
class _Source:
    """Where a layer's blob is: digest, media type, stored size."""

    digest: str
    media_type: str
    size: int


class ArchiveWriter:
    """Writes images from the content store into one tar archive."""

    def __init__(self, store: Store, content: ContentStore, out: BinaryIO) -> None:
        self.store = store
        self.content = content
        # A stream ("w|", stdout works too) with 1 MiB writes; reads of 1 MiB as well.
        self.tar = tarfile.open(  # noqa: SIM115 - closed by close()
            fileobj=out, mode="w|", format=tarfile.PAX_FORMAT, bufsize=CHUNK_SIZE
        )
        self.tar.copybufsize = CHUNK_SIZE  # type: ignore[attr-defined]
        self._written: set[str] = set()

    def close(self) -> None:
        """Finish the archive."""
        self.tar.close()

    # -- members ------------------------------------------------------------------------------

    def _info(self, name: str, size: int, *, directory: bool = False) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.size = 0 if directory else size
        info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
        info.mode = 0o755 if directory else 0o644
        info.mtime = 0
        info.uname = info.gname = ""
        return info

    def add_bytes(self, name: str, data: bytes) -> None:
        """Add a small file."""
        if name not in self._written:
            self.tar.addfile(self._info(name, len(data)), io.BytesIO(data))
            self._written.add(name)

    def add_directory(self, name: str) -> None:
        """Add a directory entry."""
        if name not in self._written:
            self.tar.addfile(self._info(name, 0, directory=True))
            self._written.add(name)

    def add_blob(self, name: str, digest: str) -> None:
        """Add the stored blob ``digest`` as it is."""
        if name in self._written:
            return
        with self.content.open(digest) as stream:
            self.tar.addfile(self._info(name, self.content.size(digest)), stream)
        self._written.add(name)

    def add_plain_layer(self, name: str, diff_id: str) -> None:
        """Add the uncompressed tar of layer ``diff_id``, decompressing a stored blob if needed."""
        if name in self._written:
            return
        if self.content.exists(diff_id):
            self.add_blob(name, diff_id)
            return
        for blob in self.store.distribution.blobs_of(diff_id):
            if not self.content.exists(blob.digest):
                continue
            size = blob.uncompressed_size
            if size is None:
                with self.content.open(blob.digest) as raw:
                    size = _count(open_decompressed(raw))
            with self.content.open(blob.digest) as raw:
                self.tar.addfile(self._info(name, size), open_decompressed(raw))
            self._written.add(name)
            return
        raise _no_layer(diff_id)

    # -- formats ------------------------------------------------------------------------------

    def write_docker(self, items: Sequence[SaveItem]) -> None:
        """A docker-archive of ``items``."""
        entries = []
        for item in items:
            config = self._config(item.image)
            config_name = f"{item.image.id.partition(':')[2]}.json"
            self.add_bytes(config_name, config)
            layers = []
            for diff_id in ImageConfig.parse(config).diff_ids:
                name = f"{diff_id.partition(':')[2]}.tar"
                self.add_plain_layer(name, diff_id)
                layers.append(name)
            tags = [parse_reference(tag).familiar for tag in item.tags]
            entries.append({"Config": config_name, "RepoTags": tags or None, "Layers": layers})
        self.add_bytes("manifest.json", json.dumps(entries, separators=(",", ":")).encode())

    def write_oci(self, items: Sequence[SaveItem]) -> None:
        """An OCI image layout (as a tar) of ``items``."""
        self.add_bytes("oci-layout", b'{"imageLayoutVersion":"1.0.0"}')
        self.add_directory("blobs")
        self.add_directory("blobs/sha256")
        entries = []
        for item in items:
            data = self._oci_manifest(item.image)
            document = mf.parse(data)
            assert isinstance(document, mf.Manifest)
            self.add_bytes(_blob_name(document.config.digest), self._config(item.image))
            for layer in document.layers:
                self.add_blob(_blob_name(layer.digest), layer.digest)
            digest = digest_bytes(data)
            self.add_bytes(_blob_name(digest), data)
            for tag in item.tags or ("",):
                notes = {}
                if tag:
                    ref = parse_reference(tag)
                    notes = {
                        "io.containerd.image.name": str(ref),
                        "org.opencontainers.image.ref.name": ref.tag or "latest",
                    }
                entries.append(mf.Descriptor(document.media_type, digest, len(data), None, notes))
        self.add_bytes("index.json", mf.encode_index(entries))

    def _config(self, image: ImageRecord) -> bytes:
        if self.content.exists(image.id):
            return self.content.read_bytes(image.id)
        return image.config.encode()

    def _oci_manifest(self, image: ImageRecord) -> bytes:
        """The image's own manifest if all its blobs are here, else a new OCI manifest."""
        digest = image.manifest_digest
        if digest and self.content.exists(digest):
            data = self.content.read_bytes(digest)
            document = mf.parse(data)
            if isinstance(document, mf.Manifest) and all(
                self.content.exists(blob.digest) for blob in (document.config, *document.layers)
            ):
                return data
        config = self._config(image)
        layers = [self._layer_source(diff_id) for diff_id in ImageConfig.parse(config).diff_ids]
        descriptors = [mf.Descriptor(s.media_type, s.digest, s.size) for s in layers]
        config_descriptor = mf.Descriptor(mf.OCI_CONFIG, image.id, len(config))
        return mf.encode_manifest(config_descriptor, descriptors, oci=True)

    def _layer_source(self, diff_id: str) -> _Source:
        if self.content.exists(diff_id):
            return _Source(diff_id, mf.OCI_LAYER, self.content.size(diff_id))
        for blob in self.store.distribution.blobs_of(diff_id):
            if self.content.exists(blob.digest):
                kind = _COMPRESSION_OF.get(blob.media_type, Compression.NONE)
                media_type = mf.layer_media_type(kind, oci=True)
                return _Source(blob.digest, media_type, self.content.size(blob.digest))
        raise _no_layer(diff_id)


def write_archive(
    store: Store,
    content: ContentStore,
    items: Sequence[SaveItem],
    out: BinaryIO,
    kind: ArchiveFormat,
) -> None:
    """Write ``items`` to ``out`` as an archive of format ``kind``."""
    writer = ArchiveWriter(store, content, out)
    if kind is ArchiveFormat.DOCKER:
        writer.write_docker(items)
    else:
        writer.write_oci(items)
    writer.close()


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + digest.partition(":")[2]


def _count(stream: BinaryIO) -> int:
    total = 0
    while chunk := stream.read(CHUNK_SIZE):
        total += len(chunk)
    return total


def _no_layer(diff_id: str) -> ContentError:
    return ContentError(f"saving layer {diff_id}: no blob of it is in the content store")
