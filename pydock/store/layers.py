"""Layer rows (``layers``) and their per-driver-home copies (``layer_cache``).

A layer is written incomplete, with its owner, before anything is unpacked, and marked
complete in the one transaction that records its size. Removal runs the other way: rows are
marked incomplete first, the driver removes its directories, then the rows go.
"""

from __future__ import annotations

from sqlite_utils import Database

from pydock.store.db import transaction
from pydock.store.records import CacheRecord, LayerRecord


class LayerStore:
    """Reads and writes layer and layer-cache rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def get(self, chain_id: str) -> LayerRecord | None:
        """The layer ``chain_id``, complete or not."""
        for row in self.db.table("layers").rows_where("chain_id = ?", [chain_id]):
            return LayerRecord.from_row(row)
        return None

    def list_layers(self, *, complete: bool | None = None) -> list[LayerRecord]:
        """Every layer (or only the complete or incomplete ones), by chain id."""
        where, args = (None, []) if complete is None else ("complete = ?", [int(complete)])
        rows = self.db.table("layers").rows_where(where, args, order_by="chain_id")
        return [LayerRecord.from_row(row) for row in rows]

    def children(self, chain_id: str) -> list[str]:
        """Chain ids of the layers whose parent is ``chain_id``."""
        rows = self.db.table("layers").rows_where("parent = ?", [chain_id], select="chain_id")
        return sorted(str(row["chain_id"]) for row in rows)

    def add(
        self, chain_id: str, diff_id: str, parent: str | None, *, owner: str, created: str
    ) -> None:
        """Insert an incomplete layer owned by ``owner``."""
        self.db.table("layers").insert(
            {
                "chain_id": chain_id,
                "diff_id": diff_id,
                "parent": parent,
                "size": 0,
                "complete": 0,
                "owner": owner,
                "created": created,
            }
        )

    def cache(self, chain_id: str, driver: str) -> CacheRecord | None:
        """The copy of ``chain_id`` in driver home ``driver``."""
        rows = self.db.table("layer_cache").rows_where(
            "chain_id = ? AND driver = ?", [chain_id, driver]
        )
        for row in rows:
            return CacheRecord.from_row(row)
        return None

    def caches(
        self, chain_id: str | None = None, *, driver: str | None = None
    ) -> list[CacheRecord]:
        """Cache rows, optionally of one layer and/or one driver home."""
        clauses, args = [], []
        if chain_id is not None:
            clauses.append("chain_id = ?")
            args.append(chain_id)
        if driver is not None:
            clauses.append("driver = ?")
            args.append(driver)
        rows = self.db.table("layer_cache").rows_where(
            " AND ".join(clauses) or None, args, order_by="chain_id, driver"
        )
        return [CacheRecord.from_row(row) for row in rows]

    def add_cache(
        self, chain_id: str, driver: str, cache_id: str, *, owner: str, created: str
    ) -> None:
        """Insert an incomplete copy of ``chain_id`` in driver home ``driver``."""
        self.db.table("layer_cache").insert(
            {
                "chain_id": chain_id,
                "driver": driver,
                "cache_id": cache_id,
                "complete": 0,
                "owner": owner,
                "created": created,
            }
        )

    def complete(self, chain_id: str, driver: str, size: int) -> None:
        """Mark the copy in ``driver`` complete and, with its size, the layer itself."""
        with transaction(self.db):
            self.db.execute(
                "UPDATE layer_cache SET complete = 1, owner = NULL"
                " WHERE chain_id = ? AND driver = ?",
                [chain_id, driver],
            )
            self.db.execute(
                "UPDATE layers SET size = ?, complete = 1, owner = NULL"
                " WHERE chain_id = ? AND complete = 0",
                [size, chain_id],
            )

    def mark_removing(self, chain_id: str, *, owner: str) -> None:
        """Mark a layer and its copies incomplete before their directories are removed."""
        with transaction(self.db):
            self.db.execute(
                "UPDATE layer_cache SET complete = 0, owner = ? WHERE chain_id = ?",
                [owner, chain_id],
            )
            self.db.execute(
                "UPDATE layers SET complete = 0, owner = ? WHERE chain_id = ?",
                [owner, chain_id],
            )

    def remove_cache(self, driver: str, cache_id: str) -> None:
        """Delete the cache row of driver id ``cache_id`` in driver home ``driver``."""
        self.db.execute(
            "DELETE FROM layer_cache WHERE driver = ? AND cache_id = ?", [driver, cache_id]
        )

    def uses_diff(self, diff_id: str) -> bool:
        """Whether any layer has the content ``diff_id``."""
        return any(self.db.table("layers").rows_where("diff_id = ?", [diff_id], limit=1))

    def remove(self, chain_id: str) -> bool:
        """Delete a layer row with no cache rows and no children; ``False`` if it has some."""
        with transaction(self.db):
            if self.caches(chain_id) or self.children(chain_id):
                return False
            self.db.execute("DELETE FROM layers WHERE chain_id = ?", [chain_id])
        return True
