"""Taking one image in: blobs into the content store, layers into the driver, rows at the end.

``load`` and ``pull`` both go through :class:`ImageIngest`. Layers are registered base first as
their blobs arrive; each blob's uncompressed content is hashed while it is unpacked and must
match the diff id the config names. Nothing is visible until :meth:`ImageIngest.commit` writes
the image, its tags and the layer rows in one transaction; on any failure the fresh layers are
abandoned and the blobs written by the operation are deleted (see :mod:`pydock.image.blobs`).
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import BinaryIO, cast

from graphdriver.compression import open_decompressed
from pydock.clock import now_rfc3339, parse_rfc3339, to_rfc3339
from pydock.errors import DigestMismatchError, ImageFormatError
from pydock.image.blobs import Lease
from pydock.image.config import ImageConfig
from pydock.image.content import CHUNK_SIZE, ContentStore, Descriptor, digest_bytes
from pydock.image.layercache import (
    REGISTER_ATTEMPTS,
    LayerManager,
    LayerVanishedError,
    PendingLayer,
)
from pydock.store import ImageRecord, LayerBlobRecord, Store


@dataclass(frozen=True)
class LayerBlob:
    """A layer as it travels: the blob (maybe compressed) and the diff id it must unpack to."""

    digest: str
    media_type: str
    size: int
    diff_id: str


class _HashingReader(io.RawIOBase):
    """Reads ``inner`` and hashes what passes."""

    def __init__(self, inner: BinaryIO) -> None:
        self._inner = inner
        self.hasher = hashlib.sha256()
        self.count = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        data = self._inner.read(len(buffer))
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        self.hasher.update(data)
        self.count += len(data)
        return len(data)

    def drain(self) -> None:
        """Read (and hash) whatever the consumer left, e.g. the end-of-archive padding."""
        while self.read(CHUNK_SIZE):
            pass


class ImageIngest:
    """One image on its way in; see the module docstring."""

    def __init__(
        self, store: Store, content: ContentStore, layers: LayerManager, lease: Lease
    ) -> None:
        self.store = store
        self.content = content
        self.layers = layers
        self.lease = lease
        self._pending: list[PendingLayer] = []
        self._blobs: list[LayerBlob] = []
        self._rows: list[LayerBlobRecord] = []
        self._committed = False

    # -- blobs --------------------------------------------------------------------------------

    def has_blob(self, digest: str) -> bool:
        """Whether blob ``digest`` is stored (and now leased for this operation)."""
        self.lease.hold(digest)
        return self.content.exists(digest)

    def store_blob(self, chunks: Iterable[bytes], *, expected: str | None = None) -> Descriptor:
        """Store a blob (checked against ``expected``), or reuse the stored one."""
        if expected is not None and self.has_blob(expected):
            return Descriptor(expected, self.content.size(expected))
        blob = self.content.write(chunks, expected=expected)
        self.lease.hold(blob.digest)
        self.lease.wrote(blob.digest)
        return blob

    def store_bytes(self, data: bytes, *, expected: str | None = None) -> Descriptor:
        """Store ``data`` as a blob; see :meth:`store_blob`."""
        return self.store_blob([data], expected=expected)

    def is_known_layer_blob(self, blob: LayerBlob) -> bool:
        """Whether ``blob`` is stored and already known to unpack to its diff id."""
        if not self.has_blob(blob.digest):
            return False
        if blob.digest == blob.diff_id:
            return True
        known = self.store.distribution.layer_blob(blob.digest)
        return known is not None and known.diff_id == blob.diff_id

    # -- layers -------------------------------------------------------------------------------

    def add_layer(self, blob: LayerBlob) -> None:
        """Register the next layer (base first) from its stored blob, checking its diff id."""
        checked = self.is_known_layer_blob(blob)
        parent = self._pending[-1].chain_id if self._pending else None
        readers: list[_HashingReader] = []

        @contextmanager
        def opener() -> Iterator[BinaryIO]:
            with self._open(blob, None if checked else readers) as stream:
                yield stream

        self._pending.append(self.layers.register(blob.diff_id, parent, opener=opener))
        self._blobs.append(blob)
        if not checked and not readers:  # the layer was there already: check the blob anyway
            with self._open(blob, readers) as stream:
                while stream.read(CHUNK_SIZE):
                    pass
        size = readers[0].count if readers else None
        if size is None and blob.digest == blob.diff_id:
            size = blob.size
        if size is None:
            known = self.store.distribution.layer_blob(blob.digest)
            size = known.uncompressed_size if known else None
        self._rows.append(
            LayerBlobRecord(blob.digest, blob.diff_id, blob.media_type, blob.size, size)
        )

    @contextmanager
    def _open(self, blob: LayerBlob, readers: list[_HashingReader] | None) -> Iterator[BinaryIO]:
        with self.content.open(blob.digest) as raw:
            if readers is None:
                yield raw
                return
            reader = _HashingReader(open_decompressed(raw))
            readers.append(reader)
            yield cast(BinaryIO, io.BufferedReader(reader, buffer_size=CHUNK_SIZE))
            reader.drain()
            found = f"sha256:{reader.hasher.hexdigest()}"
            if found != blob.diff_id:
                raise DigestMismatchError(
                    f"checking layer {blob.digest}: uncompressed content has digest {found},"
                    f" the image config says {blob.diff_id}",
                    digest=blob.digest,
                )

    # -- the image ----------------------------------------------------------------------------

    def commit(
        self,
        config: bytes,
        *,
        manifest: bytes | None = None,
        tags: Sequence[str] = (),
        repo_digests: Sequence[tuple[str, str]] = (),
        sources: Sequence[tuple[str, str, str]] = (),
    ) -> str:
        """Write the image (config digest = id), its tags and repo digests; return the id."""
        image_id = digest_bytes(config)
        try:
            parsed = ImageConfig.parse(config)
            text = config.decode()
        except ValueError as exc:
            raise ImageFormatError(f"reading config {image_id}: not JSON ({exc})") from exc
        have = [pending.diff_id for pending in self._pending]
        if list(parsed.diff_ids) != have:
            raise ImageFormatError(
                f"reading config {image_id}: it names {len(parsed.diff_ids)} layers"
                f" ({', '.join(parsed.diff_ids) or 'none'}) but the image has {len(have)}"
            )
        self.store_bytes(config, expected=image_id)
        manifest_digest = self.store_bytes(manifest).digest if manifest is not None else None
        now = now_rfc3339()
        for attempt in range(REGISTER_ATTEMPTS):
            try:
                self._write_rows(
                    image_id, parsed, text, manifest_digest, now, tags, repo_digests, sources
                )
                break
            except LayerVanishedError:
                if attempt == REGISTER_ATTEMPTS - 1:
                    raise
                self._register_reused_again()
        self._committed = True
        return image_id

    def _register_reused_again(self) -> None:
        """Register again, base first, the reused layers a concurrent prune or rmi removed
        before :meth:`commit`'s transaction (their blobs are stored, leased and checked)."""
        for index, (pending, blob) in enumerate(zip(self._pending, self._blobs, strict=True)):
            if pending.fresh:
                continue  # ours, incomplete: nobody else removes it, nor what it sits on
            parent = self._pending[index - 1].chain_id if index else None

            @contextmanager
            def opener(blob: LayerBlob = blob) -> Iterator[BinaryIO]:
                with self._open(blob, None) as stream:
                    yield stream

            self._pending[index] = self.layers.register(blob.diff_id, parent, opener=opener)

    def _write_rows(
        self,
        image_id: str,
        parsed: ImageConfig,
        text: str,
        manifest_digest: str | None,
        now: str,
        tags: Sequence[str],
        repo_digests: Sequence[tuple[str, str]],
        sources: Sequence[tuple[str, str, str]],
    ) -> None:
        with self.store.transaction():
            for pending in self._pending:
                self.layers.finish(pending)
            for row in self._rows:
                self.store.distribution.add_layer_blob(row)
            for digest, registry, repository in sources:
                self.store.distribution.add_source(digest, registry, repository)
            if self.store.images.get(image_id) is None:
                top = self._pending[-1].chain_id if self._pending else None
                size = sum(pending.size for pending in self._pending)
                created = _created(parsed.created, now)
                record = ImageRecord(image_id, text, manifest_digest, top, created, size)
                self.store.images.add(record)
            elif manifest_digest is not None:
                self.store.images.set_manifest(image_id, manifest_digest)
            for tag in tags:
                self.store.images.tag(tag, image_id, created=now)
            for name, digest in repo_digests:
                self.store.distribution.add_repo_digest(name, digest, image_id, created=now)

    def abort(self) -> None:
        """Undo the layers registered by this ingest (the lease deletes its blobs)."""
        if self._committed:
            return
        for pending in reversed(self._pending):
            self.layers.abandon(pending)
        self._pending.clear()


@contextmanager
def ingesting(
    store: Store, content: ContentStore, layers: LayerManager, lease: Lease
) -> Iterator[ImageIngest]:
    """An :class:`ImageIngest` for the body, aborted if the body fails."""
    ingest = ImageIngest(store, content, layers, lease)
    try:
        yield ingest
    except BaseException:
        ingest.abort()
        raise


def _created(text: str, fallback: str) -> str:
    try:
        return to_rfc3339(parse_rfc3339(text)) if text else fallback
    except ValueError:
        return fallback
