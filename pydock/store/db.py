"""Opening the SQLite database: WAL, busy timeout, foreign keys, migrations, transactions."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlite_utils import Database
from sqlite_utils.db import Table

from pydock.errors import StoreError
from pydock.store.migrations import MIGRATIONS

# A second pydock writing at the same moment waits this long for the write lock.
BUSY_TIMEOUT_SECONDS = 30.0


class StoreDatabase(Database):
    """sqlite-utils' database with one :class:`Table` object kept per name.

    The stock ``table()`` asks sqlite_master whether the name is a view on every call, and a
    container's start makes dozens of calls; the store defines no views, and a Table object
    holds nothing but its name (every query it makes reads the schema afresh).
    """

    def __init__(self, conn: sqlite3.Connection, **kwargs: Any) -> None:
        super().__init__(conn, **kwargs)
        self._tables: dict[str, Table] = {}

    def table(self, table_name: str, **kwargs: Any) -> Table:
        if kwargs:
            return super().table(table_name, **kwargs)
        found = self._tables.get(table_name)
        if found is None:
            found = self._tables[table_name] = super().table(table_name)
        return found


def open_database(path: Path | None) -> Database:
    """Open (creating and migrating if needed) the store at ``path``; ``None`` is in memory."""
    where = str(path) if path is not None else ":memory:"
    try:
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(where, timeout=BUSY_TIMEOUT_SECONDS)
    except (OSError, sqlite3.Error) as exc:
        raise StoreError(f"opening store {where}: {_reason(exc)}", path=path) from exc
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        if path is not None:
            conn = _enable_wal(conn, where)
        conn.execute("PRAGMA foreign_keys = ON")
        db = StoreDatabase(conn, execute_plugins=False)
        migrate(db)
    except sqlite3.Error as exc:
        conn.close()
        raise StoreError(f"opening store {where}: {_reason(exc)}", path=path) from exc
    return db


def _enable_wal(conn: sqlite3.Connection, where: str) -> sqlite3.Connection:
    """Switch to WAL, waiting as long as any write would for a process that holds the lock.

    SQLite answers a journal-mode change on a new file that another process is creating with
    "database is locked" at once, without calling the busy handler, so the wait is done here.
    On a full disk the shared-memory file (``-shm``) cannot be made or grown ("disk i/o
    error"): then the store is opened in exclusive locking mode, where SQLite keeps that index
    in its own memory, so reading and freeing commands still work (others wait their turn).
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_SECONDS
    while True:
        try:
            conn.execute("PRAGMA journal_mode = WAL")
            return conn
        except sqlite3.OperationalError as exc:
            if "disk i/o error" in str(exc).lower():
                conn.close()
                conn = sqlite3.connect(where, timeout=BUSY_TIMEOUT_SECONDS)
                conn.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
                conn.execute("PRAGMA locking_mode = EXCLUSIVE")
                conn.execute("PRAGMA journal_mode = WAL")
                return conn
            if "locked" not in str(exc) or time.monotonic() >= deadline:
                raise
            time.sleep(0.05)


def migrate(db: Database) -> list[str]:
    """Apply the migrations this database lacks; returns their names."""
    if not MIGRATIONS.pending(db):
        return []
    # Two processes opening a new store at once: the write lock makes the second wait and
    # then find nothing left to do.
    with transaction(db):
        pending = [migration.name for migration in MIGRATIONS.pending(db)]
        MIGRATIONS.apply(db)
    return pending


def applied_migrations(db: Database) -> list[str]:
    """Names of the migrations recorded in the database, in the order they ran."""
    return [migration.name for migration in MIGRATIONS.applied(db)]


@contextmanager
def transaction(db: Database) -> Iterator[Database]:
    """Run the body as one write transaction (a savepoint when one is already open).

    ``BEGIN IMMEDIATE`` takes the write lock up front: a deferred transaction that reads and
    then writes can fail at once with "database is locked" instead of waiting for it.
    """
    conn = db.conn
    if conn.in_transaction:
        with db.atomic():
            yield db
        return
    try:
        conn.execute("BEGIN IMMEDIATE")
    except sqlite3.Error as exc:
        raise StoreError(f"starting a store transaction: {_reason(exc)}") from exc
    try:
        yield db
    except BaseException:
        if conn.in_transaction:
            conn.rollback()
        raise
    try:
        conn.commit()
    except sqlite3.Error as exc:
        if conn.in_transaction:
            conn.rollback()
        raise StoreError(f"committing a store transaction: {_reason(exc)}") from exc


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror.lower()
    return str(exc).lower() or type(exc).__name__
