"""The SQLite metadata store: layers, per-driver layer copies, images, tags, containers."""

from __future__ import annotations

from pydock.store.db import BUSY_TIMEOUT_SECONDS, open_database, transaction
from pydock.store.owner import current_owner, is_owner_alive
from pydock.store.records import CacheRecord, ImageRecord, LayerRecord
from pydock.store.store import DATABASE_NAME, Store

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "DATABASE_NAME",
    "CacheRecord",
    "ImageRecord",
    "LayerRecord",
    "Store",
    "current_owner",
    "is_owner_alive",
    "open_database",
    "transaction",
]
