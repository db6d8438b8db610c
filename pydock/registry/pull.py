"""``pull``: a manifest (chosen from an index by platform), its config, then the layers.

Layers download concurrently on a small thread pool while the main thread unpacks them in
order as they arrive (layer 2 can download while layer 1 unpacks). Threads rather than trio:
the work is sockets, sha256, zlib and file writes, which all release the GIL; the store
(SQLite) and the graph-driver API are synchronous and stay on the main thread, which a thread
pool keeps simple. Each blob is checked against its digest as it streams into the content
store; each layer's uncompressed content against the config's diff id as it unpacks.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from pydock.clock import now_rfc3339
from pydock.errors import ContentError, ImageFormatError
from pydock.image import manifest as mf
from pydock.image.config import ImageConfig
from pydock.image.content import ContentStore, Descriptor, digest_bytes
from pydock.image.ingest import ImageIngest, LayerBlob
from pydock.image.reference import Reference
from pydock.registry.client import RegistryClient
from pydock.registry.errors import RegistryError
from pydock.registry.progress import Progress
from pydock.store import Store

MAX_CONCURRENT_DOWNLOADS = 3
CONFIG_LIMIT = 32 << 20


@dataclass(frozen=True)
class PullResult:
    """What a pull did: the image, the digest it was pulled by, whether anything was new."""

    image_id: str
    digest: str
    downloaded: bool


@dataclass(frozen=True)
class ResolvedManifest:
    """The platform manifest to pull, and the digest the reference points at (maybe an index)."""

    manifest: mf.Manifest
    data: bytes
    digest: str


def resolve(client: RegistryClient, ref: Reference, platform: mf.Platform) -> ResolvedManifest:
    """Fetch the manifest ``ref`` names, choosing from an index by ``platform``."""
    reference = ref.digest or ref.tag or "latest"
    data, media_type, top = client.get_manifest(ref.path, reference)
    document = mf.parse(data, media_type, what=f"manifest {top}")
    if isinstance(document, mf.Index):
        entry = mf.select(document, platform, what=f"index {top}")
        data, media_type, digest = client.get_manifest(ref.path, entry.digest)
        document = mf.parse(data, media_type, what=f"manifest {digest}")
        if not isinstance(document, mf.Manifest):
            raise ImageFormatError(f"reading manifest {digest}: an index inside an index")
    return ResolvedManifest(document, data, top)


def fetch_config(client: RegistryClient, ref: Reference, descriptor: mf.Descriptor) -> bytes:
    """The config blob, checked against its digest."""
    if descriptor.size > CONFIG_LIMIT:
        raise ImageFormatError(f"reading config {descriptor.digest}: {descriptor.size} bytes")
    data = b"".join(client.blob_chunks(ref.path, descriptor.digest, descriptor.size))
    found = digest_bytes(data)
    if found != descriptor.digest:
        raise ContentError(
            f"downloading config {descriptor.digest}: content has digest {found}",
            digest=descriptor.digest,
        )
    return data


class LayerDownloads:
    """Downloads the missing layer blobs of one manifest on a thread pool."""

    def __init__(
        self,
        client: RegistryClient,
        ref: Reference,
        content: ContentStore,
        progress: Progress,
    ) -> None:
        self.client = client
        self.ref = ref
        self.content = content
        self.progress = progress
        self.cancelled = threading.Event()
        self.pool = ThreadPoolExecutor(MAX_CONCURRENT_DOWNLOADS, thread_name_prefix="pull")
        self.futures: dict[str, Future[Descriptor]] = {}

    def start(self, layer: mf.Descriptor) -> None:
        """Queue the download of ``layer`` (once per digest)."""
        if layer.digest in self.futures:
            return
        self.progress.status(layer.digest, "Waiting", total=layer.size)
        self.futures[layer.digest] = self.pool.submit(self._download, layer)

    def _download(self, layer: mf.Descriptor) -> Descriptor:
        if self.cancelled.is_set():
            raise RegistryError(f"downloading blob {layer.digest}: cancelled")
        self.progress.status(layer.digest, "Downloading", total=layer.size)
        chunks = self.client.blob_chunks(
            self.ref.path,
            layer.digest,
            layer.size,
            progress=lambda n: self.progress.advance(layer.digest, n),
            cancelled=self.cancelled,
        )
        blob = self.content.write(chunks, expected=layer.digest)
        self.progress.status(layer.digest, "Download complete")
        return blob

    def wait(self, digest: str) -> Descriptor:
        """The stored blob once its download has finished (raising what it raised)."""
        return self.futures[digest].result()

    def finish(self, wrote: Callable[[str], None]) -> None:
        """Stop what is left, wait for the workers, and report every blob they stored."""
        self.cancelled.set()
        self.pool.shutdown(wait=True, cancel_futures=True)
        for digest, future in self.futures.items():
            if future.done() and not future.cancelled() and future.exception() is None:
                wrote(digest)


def pull_layers(
    ingest: ImageIngest,
    client: RegistryClient,
    ref: Reference,
    resolved: ResolvedManifest,
    config: bytes,
    progress: Progress,
) -> bool:
    """Download (concurrently) and unpack (in order) the layers; whether anything downloaded."""
    diff_ids = ImageConfig.parse(config).diff_ids
    layers = resolved.manifest.layers
    if len(diff_ids) != len(layers):
        raise ImageFormatError(
            f"reading manifest {resolved.digest}: {len(layers)} layers, the config names"
            f" {len(diff_ids)}"
        )
    blobs = [
        LayerBlob(layer.digest, layer.media_type, layer.size, diff_id)
        for layer, diff_id in zip(layers, diff_ids, strict=True)
    ]
    missing = [blob for blob in blobs if not ingest.is_known_layer_blob(blob)]
    downloads = LayerDownloads(client, ref, ingest.content, progress)
    try:
        for layer in layers:
            if any(blob.digest == layer.digest for blob in missing):
                downloads.start(layer)
            else:
                progress.status(layer.digest, "Already exists")
        for blob in blobs:
            if blob.digest in downloads.futures:
                downloads.wait(blob.digest)
                progress.status(blob.digest, "Extracting")
            ingest.add_layer(blob)
            if blob.digest in downloads.futures:
                progress.status(blob.digest, "Pull complete")
    finally:
        downloads.finish(ingest.lease.wrote)
    return bool(missing)


def pull(
    ingest: ImageIngest,
    store: Store,
    client: RegistryClient,
    ref: Reference,
    platform: mf.Platform,
    progress: Progress,
) -> PullResult:
    """Pull ``ref`` into the store through ``ingest``; see the module docstring."""
    resolved = resolve(client, ref, platform)
    manifest = resolved.manifest
    tags = [str(ref)] if ref.tag and not ref.digest else []
    repo_digests = [(ref.name, resolved.digest)]
    image = store.images.get(manifest.config.digest)
    if image is not None and store.layers.get(image.top_layer or "") is not None:
        now = now_rfc3339()
        with store.transaction():
            for tag in tags:
                store.images.tag(tag, image.id, created=now)
            for name, digest in repo_digests:
                store.distribution.add_repo_digest(name, digest, image.id, created=now)
        return PullResult(image.id, resolved.digest, False)
    for layer in manifest.layers:
        ingest.lease.hold(layer.digest)
    config = fetch_config(client, ref, manifest.config)
    downloaded = pull_layers(ingest, client, ref, resolved, config, progress)
    sources = [(layer.digest, ref.domain, ref.path) for layer in manifest.layers]
    sources.append((manifest.config.digest, ref.domain, ref.path))
    image_id = ingest.commit(
        config, manifest=resolved.data, tags=tags, repo_digests=repo_digests, sources=sources
    )
    return PullResult(image_id, resolved.digest, downloaded or image is None)
