"""The one metadata store: ``<root>/pydock.db`` (or in memory), with its tables' helpers."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlite_utils import Database

from pydock.closing import Closing
from pydock.store.containers import ContainerStore
from pydock.store.db import applied_migrations, open_database, transaction
from pydock.store.distribution import DistributionStore
from pydock.store.images import ImageStore
from pydock.store.layers import LayerStore
from pydock.store.networks import NetworkStore
from pydock.store.owner import is_owner_alive
from pydock.store.records import CacheRecord, LayerRecord
from pydock.store.volumes import VolumeStore

DATABASE_NAME = "pydock.db"


class Store(Closing):
    """Layers, images and containers in one SQLite database."""

    def __init__(self, db: Database, path: Path | None = None) -> None:
        self.db = db
        self.path = path
        self.layers = LayerStore(db)
        self.images = ImageStore(db)
        self.containers = ContainerStore(db)
        self.distribution = DistributionStore(db)
        self.volumes = VolumeStore(db)
        self.networks = NetworkStore(db)

    @classmethod
    def open(cls, root: Path) -> Store:
        """Open the store of a pydock root, creating it if needed."""
        path = Path(root) / DATABASE_NAME
        return cls(open_database(path), path)

    @classmethod
    def in_memory(cls) -> Store:
        """A fresh store that lives in memory (for tests)."""
        return cls(open_database(None))

    def close(self) -> None:
        """Close the database connection."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[Store]:
        """Run the body as one write transaction (nested calls become savepoints)."""
        with transaction(self.db):
            yield self

    def migrations(self) -> list[str]:
        """Names of the schema migrations applied to this store."""
        return applied_migrations(self.db)

    def stale_caches(self) -> list[CacheRecord]:
        """Incomplete cache rows whose owner process is gone: leftovers of a crash."""
        return [
            cache
            for cache in self.layers.caches()
            if not cache.complete and not is_owner_alive(cache.owner)
        ]

    def stale_layers(self) -> list[LayerRecord]:
        """Incomplete layers whose owner process is gone."""
        return [
            layer
            for layer in self.layers.list_layers(complete=False)
            if not is_owner_alive(layer.owner)
        ]

    def containers_using(self, image_id: str) -> list[str]:
        """Ids of the containers made from ``image_id``."""
        rows = self.db.table("containers").rows_where("image = ?", [image_id], select="id")
        return sorted(str(row["id"]) for row in rows)

    def container_layers(self) -> set[str]:
        """Driver ids of every container's writable layer."""
        rows = self.db.table("containers").rows_where(select="rw_layer")
        return {str(row["rw_layer"]) for row in rows}

    def is_layer_used(self, chain_id: str) -> bool:
        """Whether an image has ``chain_id`` as top layer or another layer builds on it."""
        return bool(self.images.using_layer(chain_id) or self.layers.children(chain_id))
