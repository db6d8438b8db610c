"""Container rows (``containers``): identity, image, writable layer, state and current run.

A row is written (state ``creating``, with its owner) before the container's writable layer
exists, and its state changes only through :meth:`ContainerStore.update`, which can require the
state it expects, so that two processes noticing the same exit clean up once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from sqlite_utils import Database

from pydock.store.db import transaction
from pydock.store.owner import is_owner_alive

Row = Mapping[str, object]


def _text(row: Row, key: str) -> str | None:
    value = row.get(key)
    return None if value is None else str(value)


def _number(row: Row, key: str) -> int | None:
    value = row.get(key)
    return int(value) if isinstance(value, int | str) and str(value).lstrip("-").isdigit() else None


@dataclass(frozen=True)
class ContainerRecord:
    """One container as the store keeps it."""

    id: str
    name: str
    image: str
    rw_layer: str
    storage: str
    state: str
    created: str
    config: str = "{}"
    pid: int | None = None
    exit_code: int | None = None
    owner: str | None = None
    monitor: str | None = None
    started: str | None = None
    finished: str | None = None
    error: str | None = None
    oom_killed: bool = False
    paused: bool = False
    restart_count: int = 0
    cgroup: str | None = None
    stopped: bool = False

    @classmethod
    def from_row(cls, row: Row) -> ContainerRecord:
        """Build from a ``containers`` row."""
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            image=str(row["image"]),
            rw_layer=str(row["rw_layer"]),
            storage=str(row["storage"]),
            state=str(row["state"]),
            created=str(row["created"]),
            config=str(row.get("config") or "{}"),
            pid=_number(row, "pid"),
            exit_code=_number(row, "exit_code"),
            owner=_text(row, "owner"),
            monitor=_text(row, "monitor"),
            started=_text(row, "started"),
            finished=_text(row, "finished"),
            error=_text(row, "error"),
            oom_killed=bool(row.get("oom_killed")),
            paused=bool(row.get("paused")),
            restart_count=_number(row, "restart_count") or 0,
            cgroup=_text(row, "cgroup"),
            stopped=bool(row.get("stopped")),
        )

    def to_row(self) -> dict[str, object]:
        """The ``containers`` row."""
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "rw_layer": self.rw_layer,
            "storage": self.storage,
            "state": self.state,
            "created": self.created,
            "config": self.config,
            "pid": self.pid,
            "exit_code": self.exit_code,
            "owner": self.owner,
            "monitor": self.monitor,
            "started": self.started,
            "finished": self.finished,
            "error": self.error,
            "oom_killed": int(self.oom_killed),
            "paused": int(self.paused),
            "restart_count": self.restart_count,
            "cgroup": self.cgroup,
            "stopped": int(self.stopped),
        }


_COLUMNS = set(ContainerRecord.__dataclass_fields__) - {"id"}


class ContainerStore:
    """Reads and writes container rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def add(self, record: ContainerRecord) -> bool:
        """Insert ``record``; ``False`` if its name (or id) is taken."""
        with transaction(self.db):
            taken = self.db.execute(
                "SELECT 1 FROM containers WHERE name = ? OR id = ?", [record.name, record.id]
            ).fetchone()
            if taken:
                return False
            self.db.table("containers").insert(record.to_row())
        return True

    def get(self, container_id: str) -> ContainerRecord | None:
        """The container with the full id ``container_id``."""
        for row in self.db.table("containers").rows_where("id = ?", [container_id]):
            return ContainerRecord.from_row(row)
        return None

    def by_name(self, name: str) -> ContainerRecord | None:
        """The container named ``name``."""
        for row in self.db.table("containers").rows_where("name = ?", [name]):
            return ContainerRecord.from_row(row)
        return None

    def by_prefix(self, prefix: str) -> list[ContainerRecord]:
        """Containers whose id starts with ``prefix``."""
        rows = self.db.table("containers").rows_where(
            "substr(id, 1, ?) = ?", [len(prefix), prefix], order_by="id"
        )
        return [ContainerRecord.from_row(row) for row in rows]

    def list_containers(self) -> list[ContainerRecord]:
        """Every container, newest first."""
        rows = self.db.table("containers").rows_where(order_by="created DESC, id")
        return [ContainerRecord.from_row(row) for row in rows]

    def update(
        self, container_id: str, *, expect: tuple[str, ...] | None = None, **fields: object
    ) -> bool:
        """Set ``fields`` of a container; with ``expect``, only while its state is one of them.

        Returns whether the row was changed.
        """
        unknown = set(fields) - _COLUMNS
        if unknown or not fields:
            raise ValueError(f"updating container {container_id}: bad fields {sorted(unknown)}")
        names = sorted(fields)
        sets = ", ".join(f"{name} = ?" for name in names)
        args = [fields[name] for name in names] + [container_id]
        where = "id = ?"
        if expect is not None:
            where += f" AND state IN ({', '.join('?' for _ in expect)})"
            args += list(expect)
        with transaction(self.db):
            cursor = self.db.execute(f"UPDATE containers SET {sets} WHERE {where}", args)
            return bool(cursor.rowcount)

    def lost_with_restart_policy(self) -> list[ContainerRecord]:
        """Running rows whose monitor is gone (killed, or the machine restarted) and whose
        restart policy is ``always`` or ``unless-stopped``: cheap enough for every start-up."""
        rows = self.db.execute(
            "SELECT id FROM containers WHERE state = 'running' AND ("
            'config LIKE \'%"restart": "always"%\' OR '
            'config LIKE \'%"restart": "unless-stopped"%\')'
        ).fetchall()
        found = [self.get(str(row[0])) for row in rows]
        return [r for r in found if r is not None and not is_owner_alive(r.monitor)]

    def has_owned_rows(self) -> bool:
        """Whether any container row names an owner process (work that recovery may finish)."""
        return (
            self.db.execute("SELECT 1 FROM containers WHERE owner IS NOT NULL LIMIT 1").fetchone()
            is not None
        )

    def remove(self, container_id: str) -> None:
        """Delete the container's row."""
        self.db.execute("DELETE FROM containers WHERE id = ?", [container_id])
