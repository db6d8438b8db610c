"""Distribution metadata: layer blobs, their registry sources, repo digests and blob leases.

``layer_blobs`` maps a blob (a layer as it travels: gzip, zstd or plain) to the diff id of its
uncompressed content; a row is written only once that mapping has been checked.
``blob_leases`` protects the blobs of an operation in progress from garbage collection.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from sqlite_utils import Database

from pydock.store.db import transaction
from pydock.store.owner import is_owner_alive
from pydock.store.records import Row


@dataclass(frozen=True)
class LayerBlobRecord:
    """A checked blob of a layer: digest, diff id, media type, sizes."""

    digest: str
    diff_id: str
    media_type: str
    size: int
    uncompressed_size: int | None

    @classmethod
    def from_row(cls, row: Row) -> LayerBlobRecord:
        """Build from a ``layer_blobs`` row."""
        raw = row.get("uncompressed_size")
        return cls(
            digest=str(row["digest"]),
            diff_id=str(row["diff_id"]),
            media_type=str(row["media_type"]),
            size=int(str(row["size"])),
            uncompressed_size=int(str(raw)) if raw is not None else None,
        )


class DistributionStore:
    """Reads and writes the distribution tables."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- layer blobs --------------------------------------------------------------------------

    def add_layer_blob(self, blob: LayerBlobRecord) -> None:
        """Record (or refresh) a checked blob of a layer."""
        self.db.table("layer_blobs").upsert(
            {
                "digest": blob.digest,
                "diff_id": blob.diff_id,
                "media_type": blob.media_type,
                "size": blob.size,
                "uncompressed_size": blob.uncompressed_size,
            },
            pk="digest",
        )

    def layer_blob(self, digest: str) -> LayerBlobRecord | None:
        """The checked blob ``digest``, if known."""
        for row in self.db.table("layer_blobs").rows_where("digest = ?", [digest]):
            return LayerBlobRecord.from_row(row)
        return None

    def blobs_of(self, diff_id: str) -> list[LayerBlobRecord]:
        """Every known blob whose content is ``diff_id``."""
        rows = self.db.table("layer_blobs").rows_where("diff_id = ?", [diff_id], order_by="digest")
        return [LayerBlobRecord.from_row(row) for row in rows]

    def all_layer_blobs(self) -> list[LayerBlobRecord]:
        """Every known layer blob."""
        rows = self.db.table("layer_blobs").rows_where(order_by="digest")
        return [LayerBlobRecord.from_row(row) for row in rows]

    def remove_layer_blob(self, digest: str) -> None:
        """Forget the blob ``digest`` and where it came from."""
        with transaction(self.db):
            self.db.execute("DELETE FROM layer_blobs WHERE digest = ?", [digest])
            self.db.execute("DELETE FROM blob_sources WHERE digest = ?", [digest])

    # -- sources ------------------------------------------------------------------------------

    def add_source(self, digest: str, registry: str, repository: str) -> None:
        """Remember that ``registry/repository`` holds blob ``digest``."""
        self.db.table("blob_sources").upsert(
            {"digest": digest, "registry": registry, "repository": repository},
            pk=("digest", "registry", "repository"),
        )

    def sources(self, digest: str, registry: str) -> list[str]:
        """Repositories of ``registry`` known to hold blob ``digest``."""
        rows = self.db.table("blob_sources").rows_where(
            "digest = ? AND registry = ?", [digest, registry], order_by="repository"
        )
        return [str(row["repository"]) for row in rows]

    # -- repo digests -------------------------------------------------------------------------

    def add_repo_digest(self, name: str, digest: str, image_id: str, *, created: str) -> None:
        """Record that ``name@digest`` is the image ``image_id``."""
        self.db.table("repo_digests").upsert(
            {"name": name, "digest": digest, "image_id": image_id, "created": created},
            pk=("name", "digest"),
        )

    def repo_digests(self, image_id: str) -> list[tuple[str, str]]:
        """``(repository, digest)`` pairs of the image ``image_id``."""
        rows = self.db.table("repo_digests").rows_where(
            "image_id = ?", [image_id], order_by="name, digest"
        )
        return [(str(row["name"]), str(row["digest"])) for row in rows]

    def resolve_repo_digest(self, name: str, digest: str) -> str | None:
        """The image known as ``name@digest``."""
        rows = self.db.table("repo_digests").rows_where(
            "name = ? AND digest = ?", [name, digest], select="image_id"
        )
        for row in rows:
            return str(row["image_id"])
        return None

    def all_repo_digests(self) -> list[str]:
        """Every manifest digest some image is known by."""
        rows = self.db.table("repo_digests").rows_where(select="digest")
        return sorted({str(row["digest"]) for row in rows})

    # -- leases -------------------------------------------------------------------------------

    def lease(self, digests: Iterable[str], owner: str) -> None:
        """Protect ``digests`` from garbage collection while ``owner`` lives."""
        with transaction(self.db):
            for digest in digests:
                self.db.execute(
                    "INSERT OR IGNORE INTO blob_leases (digest, owner) VALUES (?, ?)",
                    [digest, owner],
                )

    def release(self, owner: str) -> None:
        """Drop every lease of ``owner``."""
        self.db.execute("DELETE FROM blob_leases WHERE owner = ?", [owner])

    def leased(self) -> set[str]:
        """Digests leased by live owners; leases of dead owners are dropped on the way."""
        found: set[str] = set()
        dead: set[str] = set()
        for row in self.db.table("blob_leases").rows_where():
            owner = str(row["owner"])
            if is_owner_alive(owner):
                found.add(str(row["digest"]))
            else:
                dead.add(owner)
        for owner in dead:
            self.release(owner)
        return found
