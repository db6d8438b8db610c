"""What ``pydock info`` reports: versions, the drivers of this host, the selected driver."""

from __future__ import annotations

import platform
import sqlite3
import sys
from collections.abc import Mapping
from pathlib import Path

import graphdriver
from pydock.image.layercache import driver_step
from pydock.paths import is_rootless
from pydock.store import Store


def package_version(name: str) -> str:
    """The installed version of distribution ``name`` (``unknown`` if not installed)."""
    from importlib import metadata  # costly to import; only ``info`` and errors need it

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "unknown"


def collect(
    store: Store,
    driver: graphdriver.Driver,
    *,
    root: Path,
    run_root: Path,
    storage_options: Mapping[str, str],
) -> dict[str, object]:
    """Facts about this pydock, its root and its storage drivers."""
    drivers = []
    for name in graphdriver.registered():
        reason = graphdriver.probe(name, root / graphdriver.home_name(name))
        drivers.append({"Name": name, "Supported": reason is None, "Reason": reason or ""})
    with driver_step(f"reading status of driver {driver.name}"):
        status = driver.status()
    layers = store.layers.list_layers()
    return {
        "Version": package_version("pydock"),
        "Python": platform.python_version(),
        "SQLite": sqlite3.sqlite_version,
        "SqliteUtils": package_version("sqlite-utils"),
        "Driver": driver.name,
        "DriverStatus": [[key, value] for key, value in status],
        "Drivers": drivers,
        "StorageOptions": dict(storage_options),
        "RootDir": str(root),
        "RunRoot": str(run_root),
        "Store": str(store.path),
        "Rootless": is_rootless(),
        "Images": len(store.images.list_images()),
        "Layers": sum(1 for layer in layers if layer.complete),
        "KernelVersion": platform.release(),
        "Architecture": platform.machine(),
        "Executable": sys.executable,
    }
