"""The SQLite metadata store: layers, per-driver layer copies, images, tags, containers."""

from __future__ import annotations

import pydock.store.preload  # noqa: F401  # first: sqlite-utils without numpy
from pydock.store.containers import ContainerRecord
from pydock.store.db import BUSY_TIMEOUT_SECONDS, open_database, transaction
from pydock.store.distribution import DistributionStore, LayerBlobRecord
from pydock.store.owner import current_owner, is_owner_alive, owner_of
from pydock.store.records import CacheRecord, ImageRecord, LayerRecord
from pydock.store.store import DATABASE_NAME, Store
from pydock.store.volumes import VolumeRecord

__all__ = [
    "BUSY_TIMEOUT_SECONDS",
    "DATABASE_NAME",
    "CacheRecord",
    "ContainerRecord",
    "DistributionStore",
    "ImageRecord",
    "LayerBlobRecord",
    "LayerRecord",
    "Store",
    "VolumeRecord",
    "current_owner",
    "is_owner_alive",
    "open_database",
    "owner_of",
    "transaction",
]
