"""Image manifests and indexes as OCI and Docker (v2 schema 2) write them.

A manifest names a config and the layers by descriptor (media type, digest, size); an index
(Docker: a manifest list) names one manifest per platform. The media types below are the ones
pydock reads; schema 1 manifests are refused.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from graphdriver.compression import Compression
from pydock.errors import ContentError, ImageFormatError
from pydock.image.config import host_architecture
from pydock.image.content import check_digest

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_SCHEMA1 = (
    "application/vnd.docker.distribution.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
)
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = OCI_LAYER + "+gzip"
OCI_LAYER_ZSTD = OCI_LAYER + "+zstd"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_LIST)
ACCEPTED = (*MANIFEST_TYPES, *INDEX_TYPES)

# Media type of a layer blob, by manifest flavour and compression.
_LAYER_TYPES = {
    (True, Compression.NONE): OCI_LAYER,
    (True, Compression.GZIP): OCI_LAYER_GZIP,
    (True, Compression.ZSTD): OCI_LAYER_ZSTD,
    (False, Compression.NONE): DOCKER_LAYER,
    (False, Compression.GZIP): DOCKER_LAYER_GZIP,
    (False, Compression.ZSTD): OCI_LAYER_ZSTD,
}


@dataclass(frozen=True)
class Platform:
    """An ``os/architecture[/variant]`` triple."""

    os: str
    architecture: str
    variant: str = ""

    @classmethod
    def parse(cls, text: str) -> Platform:
        """Read ``linux/arm64/v8`` (a bare ``arm64`` means ``linux/arm64``)."""
        parts = text.strip().lower().split("/")
        if len(parts) == 1 and parts[0]:
            parts = ["linux", parts[0]]
        if len(parts) not in (2, 3) or not all(parts):
            raise ImageFormatError(f"parsing platform {text!r}: expected OS/ARCH[/VARIANT]")
        return cls(parts[0], parts[1], parts[2] if len(parts) == 3 else "")

    @classmethod
    def default(cls) -> Platform:
        """This host's platform: ``linux/amd64`` on an x86-64 machine."""
        return cls("linux", host_architecture())

    def matches(self, other: Platform) -> bool:
        """Whether ``other`` (a manifest's platform) satisfies this wanted platform."""
        if (self.os, self.architecture) != (other.os, other.architecture):
            return False
        if not self.variant:
            return True
        have = other.variant or ("v8" if other.architecture == "arm64" else "")
        return have == self.variant

    def __str__(self) -> str:
        return "/".join(part for part in (self.os, self.architecture, self.variant) if part)


@dataclass(frozen=True)
class Descriptor:
    """A reference to a blob: media type, digest, size, and for index entries a platform."""

    media_type: str
    digest: str
    size: int
    platform: Platform | None = None
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The descriptor as a JSON object."""
        found: dict[str, object] = {
            "mediaType": self.media_type,
            "digest": self.digest,
            "size": self.size,
        }
        if self.platform is not None:
            platform = {"architecture": self.platform.architecture, "os": self.platform.os}
            if self.platform.variant:
                platform["variant"] = self.platform.variant
            found["platform"] = platform
        if self.annotations:
            found["annotations"] = dict(self.annotations)
        return found


@dataclass(frozen=True)
class Manifest:
    """An image manifest: its media type, config and layers (base first)."""

    media_type: str
    config: Descriptor
    layers: tuple[Descriptor, ...]

    @property
    def is_oci(self) -> bool:
        """Whether this is an OCI manifest (else Docker v2 schema 2)."""
        return self.media_type == OCI_MANIFEST


@dataclass(frozen=True)
class Index:
    """An image index or manifest list."""

    media_type: str
    manifests: tuple[Descriptor, ...]


def parse(
    data: bytes, media_type: str | None = None, *, what: str = "manifest"
) -> Manifest | Index:
    """Read a manifest or index; ``media_type`` (a Content-Type) serves if the body has none."""
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise ImageFormatError(f"reading {what}: not JSON ({exc})") from exc
    if not isinstance(document, dict):
        raise ImageFormatError(f"reading {what}: not a JSON object")
    kind = document.get("mediaType") or (media_type or "").partition(";")[0].strip()
    if not kind:
        kind = OCI_INDEX if "manifests" in document else OCI_MANIFEST
    if kind in DOCKER_SCHEMA1 or document.get("schemaVersion") == 1:
        raise ImageFormatError(f"reading {what}: docker schema 1 manifests are not supported")
    if kind in INDEX_TYPES:
        entries = document.get("manifests")
        if not isinstance(entries, list):
            raise ImageFormatError(f"reading {what}: index has no manifests list")
        return Index(kind, tuple(_descriptor(entry, what) for entry in entries))
    if kind not in MANIFEST_TYPES:
        raise ImageFormatError(f"reading {what}: unsupported media type {kind}")
    layers = document.get("layers")
    if not isinstance(layers, list):
        raise ImageFormatError(f"reading {what}: manifest has no layers list")
    return Manifest(
        kind,
        _descriptor(document.get("config"), what),
        tuple(_descriptor(layer, what) for layer in layers),
    )


def _descriptor(value: object, what: str) -> Descriptor:
    if not isinstance(value, dict):
        raise ImageFormatError(f"reading {what}: a descriptor is not a JSON object")
    digest = value.get("digest")
    size = value.get("size")
    if not isinstance(digest, str) or not isinstance(size, int) or size < 0:
        raise ImageFormatError(f"reading {what}: a descriptor lacks a digest or a size")
    try:
        check_digest(digest)
    except ContentError as exc:
        raise ImageFormatError(f"reading {what}: {exc}") from exc
    platform = None
    raw = value.get("platform")
    if isinstance(raw, dict):
        platform = Platform(
            str(raw.get("os", "")), str(raw.get("architecture", "")), str(raw.get("variant", ""))
        )
    notes = value.get("annotations")
    annotations = {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}
    return Descriptor(str(value.get("mediaType", "")), digest, size, platform, annotations)


def select(index: Index, wanted: Platform, *, what: str = "index") -> Descriptor:
    """The manifest of ``index`` for platform ``wanted``; an error lists those there are."""
    for entry in index.manifests:
        if entry.platform is not None and entry.platform == wanted:
            return entry
    for entry in index.manifests:
        if entry.platform is not None and wanted.matches(entry.platform):
            return entry
    there = ", ".join(sorted({str(e.platform) for e in index.manifests if e.platform})) or "none"
    raise ImageFormatError(f"choosing from {what}: no manifest for {wanted} (has: {there})")


def layer_media_type(compression: Compression, *, oci: bool) -> str:
    """The media type of a layer blob with ``compression`` in an OCI or Docker manifest."""
    return _LAYER_TYPES[(oci, compression)]


def encode_manifest(config: Descriptor, layers: Sequence[Descriptor], *, oci: bool) -> bytes:
    """A manifest document (OCI or Docker v2 schema 2) as canonical JSON bytes."""
    document: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST if oci else DOCKER_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    return json.dumps(document, separators=(",", ":")).encode()


def encode_index(manifests: Sequence[Descriptor]) -> bytes:
    """An OCI image index document as canonical JSON bytes."""
    document = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry.to_json() for entry in manifests],
    }
    return json.dumps(document, separators=(",", ":")).encode()
