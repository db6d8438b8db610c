"""Image rows (``images``) and tags (``image_tags``)."""

from __future__ import annotations

from sqlite_utils import Database

from pydock.store.db import transaction
from pydock.store.records import ImageRecord


class ImageStore:
    """Reads and writes images and their tags."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def _tags_by_image(self) -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for row in self.db.table("image_tags").rows_where(order_by="name"):
            found.setdefault(str(row["image_id"]), []).append(str(row["name"]))
        return found

    def get(self, image_id: str) -> ImageRecord | None:
        """The image ``image_id`` (``sha256:<hex>``) with its tags."""
        for row in self.db.table("images").rows_where("id = ?", [image_id]):
            return ImageRecord.from_row(row, tuple(self.tags(image_id)))
        return None

    def list_images(self) -> list[ImageRecord]:
        """Every image with its tags, newest first."""
        tags = self._tags_by_image()
        rows = self.db.table("images").rows_where(order_by="created DESC, id")
        return [ImageRecord.from_row(row, tuple(tags.get(str(row["id"]), ()))) for row in rows]

    def by_prefix(self, hex_prefix: str) -> list[str]:
        """Ids of the images whose hex id starts with ``hex_prefix``."""
        prefix = "sha256:" + hex_prefix
        rows = self.db.table("images").rows_where(
            "substr(id, 1, ?) = ?", [len(prefix), prefix], select="id"
        )
        return sorted(str(row["id"]) for row in rows)

    def using_layer(self, chain_id: str) -> list[str]:
        """Ids of the images whose top layer is ``chain_id``."""
        rows = self.db.table("images").rows_where("top_layer = ?", [chain_id], select="id")
        return sorted(str(row["id"]) for row in rows)

    def add(self, image: ImageRecord) -> bool:
        """Insert ``image`` (not its tags); ``False`` if an image with its id exists."""
        with transaction(self.db):
            if self.get(image.id) is not None:
                return False
            self.db.table("images").insert(image.to_row())
        return True

    def remove(self, image_id: str) -> None:
        """Delete an image and its tags."""
        with transaction(self.db):
            self.db.execute("DELETE FROM image_tags WHERE image_id = ?", [image_id])
            self.db.execute("DELETE FROM repo_digests WHERE image_id = ?", [image_id])
            self.db.execute("DELETE FROM images WHERE id = ?", [image_id])

    def set_manifest(self, image_id: str, digest: str) -> None:
        """Record ``digest`` as the manifest the image was last loaded or pulled with."""
        self.db.execute("UPDATE images SET manifest_digest = ? WHERE id = ?", [digest, image_id])

    def tags(self, image_id: str) -> list[str]:
        """Full references (``docker.io/library/busybox:latest``) tagging ``image_id``."""
        rows = self.db.table("image_tags").rows_where(
            "image_id = ?", [image_id], order_by="name", select="name"
        )
        return [str(row["name"]) for row in rows]

    def resolve_tag(self, name: str) -> str | None:
        """The image id tagged ``name``."""
        for row in self.db.table("image_tags").rows_where("name = ?", [name], select="image_id"):
            return str(row["image_id"])
        return None

    def tag_time(self, name: str) -> str | None:
        """When ``name`` was last tagged."""
        for row in self.db.table("image_tags").rows_where("name = ?", [name], select="created"):
            return str(row["created"])
        return None

    def tag(self, name: str, image_id: str, *, created: str) -> str | None:
        """Point ``name`` at ``image_id``; returns the image it pointed at before, if another."""
        with transaction(self.db):
            previous = self.resolve_tag(name)
            self.db.table("image_tags").upsert(
                {"name": name, "image_id": image_id, "created": created}, pk="name"
            )
        return previous if previous != image_id else None

    def untag(self, name: str) -> bool:
        """Remove the tag ``name``; ``False`` if there was none."""
        cursor = self.db.execute("DELETE FROM image_tags WHERE name = ?", [name])
        return cursor.rowcount > 0
