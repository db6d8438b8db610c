"""Volume rows (``volumes``): a named volume's name, creation time, labels and state."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field

from sqlite_utils import Database

from pydock.store.db import transaction


@dataclass(frozen=True)
class VolumeRecord:
    """One volume as the store keeps it."""

    name: str
    created: str
    labels: Mapping[str, str] = field(default_factory=dict)
    anonymous: bool = False
    populated: bool = False

    @classmethod
    def from_row(cls, row: Mapping[str, object]) -> VolumeRecord:
        """Build from a ``volumes`` row."""
        labels = json.loads(str(row.get("labels") or "{}"))
        return cls(
            name=str(row["name"]),
            created=str(row["created"]),
            labels={str(k): str(v) for k, v in labels.items()},
            anonymous=bool(row.get("anonymous")),
            populated=bool(row.get("populated")),
        )


class VolumeStore:
    """Reads and writes volume rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: VolumeRecord) -> bool:
        """Insert ``record``; ``False`` if the name is taken."""
        with transaction(self.db):
            if self.get(record.name) is not None:
                return False
            self.db.table("volumes").insert(
                {
                    "name": record.name,
                    "created": record.created,
                    "labels": json.dumps(dict(record.labels), sort_keys=True),
                    "anonymous": int(record.anonymous),
                    "populated": int(record.populated),
                }
            )
        return True

    def get(self, name: str) -> VolumeRecord | None:
        """The volume ``name``."""
        for row in self.db.table("volumes").rows_where("name = ?", [name]):
            return VolumeRecord.from_row(row)
        return None

    def list_volumes(self) -> list[VolumeRecord]:
        """Every volume, by name."""
        return [
            VolumeRecord.from_row(row)
            for row in self.db.table("volumes").rows_where(order_by="name")
        ]

    def mark_populated(self, name: str) -> bool:
        """Record that the volume got its first content; ``False`` if it already had."""
        with transaction(self.db):
            cursor = self.db.execute(
                "UPDATE volumes SET populated = 1 WHERE name = ? AND populated = 0", [name]
            )
            return cursor.rowcount == 1

    def remove(self, name: str) -> None:
        """Delete the row of ``name``."""
        with transaction(self.db):
            self.db.execute("DELETE FROM volumes WHERE name = ?", [name])
