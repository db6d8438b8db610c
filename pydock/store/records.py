"""Rows of the store as frozen value objects."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

Row = Mapping[str, object]


def _text(row: Row, key: str) -> str:
    value = row[key]
    return value if isinstance(value, str) else str(value)


def _optional_text(row: Row, key: str) -> str | None:
    value = row.get(key)
    return None if value is None else str(value)


def _int(row: Row, key: str) -> int:
    value = row.get(key)
    return int(value) if isinstance(value, int | str) else 0


@dataclass(frozen=True)
class LayerRecord:
    """An image layer: identity, parent, content size and whether it is complete."""

    chain_id: str
    diff_id: str
    parent: str | None
    size: int
    complete: bool
    owner: str | None
    created: str

    @classmethod
    def from_row(cls, row: Row) -> LayerRecord:
        """Build from a ``layers`` row."""
        return cls(
            chain_id=_text(row, "chain_id"),
            diff_id=_text(row, "diff_id"),
            parent=_optional_text(row, "parent"),
            size=_int(row, "size"),
            complete=bool(row["complete"]),
            owner=_optional_text(row, "owner"),
            created=_text(row, "created"),
        )


@dataclass(frozen=True)
class CacheRecord:
    """Where one driver home keeps a layer (``cache_id`` is the driver's layer id)."""

    chain_id: str
    driver: str
    cache_id: str
    complete: bool
    owner: str | None
    created: str

    @classmethod
    def from_row(cls, row: Row) -> CacheRecord:
        """Build from a ``layer_cache`` row."""
        return cls(
            chain_id=_text(row, "chain_id"),
            driver=_text(row, "driver"),
            cache_id=_text(row, "cache_id"),
            complete=bool(row["complete"]),
            owner=_optional_text(row, "owner"),
            created=_text(row, "created"),
        )


@dataclass(frozen=True)
class ImageRecord:
    """An image: id (config digest), config JSON, top layer, size and tags."""

    id: str
    config: str
    manifest_digest: str | None
    top_layer: str | None
    created: str
    size: int
    tags: tuple[str, ...] = ()

    @classmethod
    def from_row(cls, row: Row, tags: tuple[str, ...] = ()) -> ImageRecord:
        """Build from an ``images`` row and its tags."""
        return cls(
            id=_text(row, "id"),
            config=_text(row, "config"),
            manifest_digest=_optional_text(row, "manifest_digest"),
            top_layer=_optional_text(row, "top_layer"),
            created=_text(row, "created"),
            size=_int(row, "size"),
            tags=tags,
        )

    def to_row(self) -> dict[str, object]:
        """The ``images`` row (tags live in ``image_tags``)."""
        return {
            "id": self.id,
            "config": self.config,
            "manifest_digest": self.manifest_digest,
            "top_layer": self.top_layer,
            "created": self.created,
            "size": self.size,
        }
