"""``push``: blobs the registry lacks (mounted from a sibling repository when one has them), then
the manifest.

An image that came with a manifest whose blobs are all stored here (pulled, or loaded from an
OCI layout) is pushed with that manifest, byte for byte, so its digest is unchanged. Any other
image gets a Docker v2 schema 2 manifest with gzip layers, as ``docker push`` makes; a layer
no gzip blob is known for is compressed while it uploads (deterministically: the same layer
always gives the same digest), and the new blob is remembered so the next push only checks.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from functools import partial

from graphdriver.compression import open_decompressed
from pydock.clock import now_rfc3339
from pydock.errors import ContentError
from pydock.image import manifest as mf
from pydock.image.config import ImageConfig
from pydock.image.content import ContentStore, iter_chunks
from pydock.image.reference import Reference
from pydock.registry.client import RegistryClient
from pydock.registry.errors import RegistryError
from pydock.registry.progress import Progress
from pydock.store import ImageRecord, LayerBlobRecord, Store

GZIP_LEVEL = 6  # zlib's default, as Go's gzip.DefaultCompression
_GZIP_TYPES = (mf.DOCKER_LAYER_GZIP, mf.OCI_LAYER_GZIP)

ChunkSource = Callable[[], Iterable[bytes]]


@dataclass(frozen=True)
class PushResult:
    """The manifest pushed: its digest and size in bytes."""

    digest: str
    size: int


class Pusher:
    """Pushes one image to one repository."""

    def __init__(
        self,
        store: Store,
        content: ContentStore,
        client: RegistryClient,
        target: Reference,
        progress: Progress,
    ) -> None:
        self.store = store
        self.content = content
        self.client = client
        self.target = target
        self.progress = progress
        self.rows: list[LayerBlobRecord] = []
        self.pushed: list[str] = []

    def push(self, image: ImageRecord) -> PushResult:
        """Push ``image`` under the target's tag (``latest`` if none)."""
        self.progress.line(f"The push refers to repository [{self.target.name}]")
        stored = self._stored_manifest(image)
        if stored is not None:
            data, document = stored
            for layer in document.layers:
                self._ensure(layer.digest, partial(self._stored_chunks, layer.digest))
        else:
            config = self.content.read_bytes(image.id)
            diff_ids = ImageConfig.parse(config).diff_ids
            layers = [self._layer(diff_id) for diff_id in diff_ids]
            descriptor = mf.Descriptor(mf.DOCKER_CONFIG, image.id, len(config))
            data = mf.encode_manifest(descriptor, layers, oci=False)
            document = mf.Manifest(mf.DOCKER_MANIFEST, descriptor, tuple(layers))
        config_digest = document.config.digest
        self._ensure(config_digest, partial(self._stored_chunks, config_digest))
        digest = self.client.put_manifest(
            self.target.path, self.target.tag or "latest", data, document.media_type
        )
        self._record(image, digest)
        return PushResult(digest, len(data))

    def _stored_manifest(self, image: ImageRecord) -> tuple[bytes, mf.Manifest] | None:
        digest = image.manifest_digest
        if not digest or not self.content.exists(digest):
            return None
        data = self.content.read_bytes(digest)
        document = mf.parse(data)
        if not isinstance(document, mf.Manifest) or document.config.digest != image.id:
            return None
        if all(self.content.exists(blob.digest) for blob in (document.config, *document.layers)):
            return data, document
        return None

    def _layer(self, diff_id: str) -> mf.Descriptor:
        """A gzip blob of layer ``diff_id`` that the registry has after this call."""
        for row in self.store.distribution.blobs_of(diff_id):
            if row.media_type not in _GZIP_TYPES:
                continue
            known = self.client.has_blob(self.target.path, row.digest, push=True)
            mountable = self.store.distribution.sources(row.digest, self.target.domain)
            if known or mountable or self.content.exists(row.digest):
                self._ensure(row.digest, partial(self._stored_chunks, row.digest))
                return mf.Descriptor(mf.DOCKER_LAYER_GZIP, row.digest, row.size)
        self.progress.status(diff_id, "Preparing")
        counter = _Counter()
        chunks = _gzip(counter.count(self._plain_chunks(diff_id)))
        digest, size = self.client.upload_blob(
            self.target.path, chunks, progress=lambda n: self.progress.advance(diff_id, n)
        )
        self.progress.status(diff_id, "Pushed")
        self.rows.append(
            LayerBlobRecord(digest, diff_id, mf.DOCKER_LAYER_GZIP, size, counter.total)
        )
        self.pushed.append(digest)
        return mf.Descriptor(mf.DOCKER_LAYER_GZIP, digest, size)

    def _stored_chunks(self, digest: str) -> Iterator[bytes]:
        with self.content.open(digest) as stream:
            yield from iter_chunks(stream)

    def _plain_chunks(self, diff_id: str) -> Iterator[bytes]:
        if self.content.exists(diff_id):
            with self.content.open(diff_id) as stream:
                yield from iter_chunks(stream)
            return
        for row in self.store.distribution.blobs_of(diff_id):
            if self.content.exists(row.digest):
                with self.content.open(row.digest) as raw:
                    yield from iter_chunks(open_decompressed(raw))
                return
        raise ContentError(f"pushing layer {diff_id}: no blob of it is in the content store")

    def _ensure(self, digest: str, chunks: ChunkSource) -> None:
        """Make the registry hold ``digest``: already there, mounted, or uploaded."""
        path = self.target.path
        self.pushed.append(digest)
        if self.client.has_blob(path, digest, push=True):
            self.progress.status(digest, "Layer already exists")
            return
        location = None
        for source in self.store.distribution.sources(digest, self.target.domain):
            if source == path:
                continue
            location = self.client.mount_blob(path, digest, source)
            if location is None:
                self.progress.status(digest, f"Mounted from {source}")
                return
            break
        self.progress.status(digest, "Pushing", total=self._size(digest))
        uploaded, _ = self.client.upload_blob(
            path, chunks(), location=location, progress=lambda n: self.progress.advance(digest, n)
        )
        if uploaded != digest:
            raise RegistryError(
                f"pushing blob {digest}: the stored blob has digest {uploaded}", digest=digest
            )
        self.progress.status(digest, "Pushed")

    def _size(self, digest: str) -> int:
        try:
            return self.content.size(digest)
        except ContentError:
            return 0

    def _record(self, image: ImageRecord, digest: str) -> None:
        now = now_rfc3339()
        with self.store.transaction():
            for row in self.rows:
                self.store.distribution.add_layer_blob(row)
            for blob in self.pushed:
                self.store.distribution.add_source(blob, self.target.domain, self.target.path)
            self.store.distribution.add_repo_digest(self.target.name, digest, image.id, created=now)


class _Counter:
    """Counts the bytes that pass through :meth:`count`."""

    def __init__(self) -> None:
        self.total = 0

    def count(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.total += len(chunk)
            yield chunk


def _gzip(chunks: Iterable[bytes]) -> Iterator[bytes]:
    # wbits 31: a gzip wrapper with mtime 0 and no file name, so the output is reproducible.
    packer = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    for chunk in chunks:
        if packed := packer.compress(chunk):
            yield packed
    yield packer.flush()
