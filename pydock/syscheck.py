"""``system check``: does the store agree with the disk, and can what does not be repaired?

Start-up recovery removes what crashed processes left behind as it meets it; this looks at
everything at once and says what is wrong, one finding per line:

- the SQLite database's own integrity check;
- layer copies the store names but the driver has not, and layer directories nobody names;
- blobs that images or layers need but the content store has not (not repairable: the image
  must be pulled or loaded again), and blobs that nothing names;
- containers whose writable layer is gone, and running containers whose root file system's
  process died;
- mounts under the root that no running container uses.

Mounts and directories that may be another command's work in progress are only judged when
no other pydock command runs on the root.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import graphdriver
from graphdriver import mountutil
from pydock.containers import lifecycle
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.image import blobs
from pydock.image.config import ImageConfig


@dataclass(frozen=True)
class Finding:
    """One inconsistency; ``repair`` fixes it (``None``: it cannot be repaired here)."""

    text: str
    repair: Callable[[], None] | None = None


def check(engine: Engine) -> tuple[list[Finding], bool]:
    """Findings, and whether work in progress could be judged (no other command ran)."""
    findings: list[Finding] = []
    store, content = engine.store, engine.content
    verdict = store.db.execute("PRAGMA integrity_check").fetchone()
    if verdict is None or verdict[0] != "ok":
        findings.append(Finding(f"store: integrity check says {verdict and verdict[0]}"))

    alone = engine.was_alone
    drivers = _drivers(engine)
    known_dirs: dict[str, set[str]] = {home: set() for home in drivers}
    for cache in store.layers.caches():
        driver = drivers.get(cache.driver)
        if driver is None:
            continue
        known_dirs[cache.driver].add(cache.cache_id)
        if cache.complete and not driver.exists(cache.cache_id):
            findings.append(
                Finding(
                    f"layer {cache.chain_id}: its copy {cache.cache_id} in {cache.driver} is "
                    "missing (repair forgets it; it is unpacked again when needed)",
                    _forget_cache(engine, cache.driver, cache.cache_id),
                )
            )
    container_layers = store.container_layers()
    for home, driver in drivers.items():
        if not alone:
            break
        for layer_id in driver.list_layers():
            if layer_id in known_dirs[home] or layer_id in container_layers:
                continue
            findings.append(
                Finding(
                    f"layer directory {home}/{layer_id}: nothing refers to it",
                    _remove_dir(driver, layer_id),
                )
            )

    needed: dict[str, str] = {}
    for image in store.images.list_images():
        needed[image.id] = f"image {image.id[7:19]}"
        for diff_id in ImageConfig.parse(image.config).diff_ids:
            needed.setdefault(diff_id, f"a layer of image {image.id[7:19]}")
    for digest, user in sorted(needed.items()):
        if not content.exists(digest):
            findings.append(Finding(f"blob {digest}: missing, needed by {user} (pull or load it)"))
    if alone:
        keep = blobs.referenced(store)
        for digest in content.list_digests():
            if digest not in keep:
                findings.append(
                    Finding(f"blob {digest}: nothing refers to it", _delete_blob(engine, digest))
                )

    manager = engine.containers
    running_roots: list[str] = []
    for record in store.containers.list_containers():
        driver = drivers.get(engine.drivers.home_of(record.storage))
        if driver is not None and not driver.exists(record.rw_layer):
            findings.append(Finding(f"container {record.name}: its writable layer is missing"))
            continue
        if record.state == ContainerState.RUNNING:
            problem = manager.storage(record.storage).mount_problem(record.rw_layer)
            if problem:
                findings.append(
                    Finding(
                        f"container {record.name}: {problem} (repair stops it)",
                        _refresh(engine, record.id),
                    )
                )
            elif driver is not None:
                with contextlib.suppress(graphdriver.GraphDriverError):
                    meta = driver.metadata(record.rw_layer)
                    where = meta.get("MergedDir") or meta.get("Path")
                    if where:
                        running_roots.append(os.path.realpath(where))
    if alone:
        for point in mountutil.mounts_under(engine.root):
            if any(point == root or point.startswith(root + "/") for root in running_roots):
                continue
            if any(root.startswith(point + "/") for root in running_roots):
                continue  # a mount the running containers' mounts sit on (a --root on tmpfs)
            if point == os.path.realpath(engine.root):
                continue
            findings.append(
                Finding(f"mount {point}: no running container uses it", _detach(Path(point)))
            )
    return findings, alone


def _drivers(engine: Engine) -> dict[str, graphdriver.Driver]:
    return engine.drivers.homes()


def _forget_cache(engine: Engine, home: str, cache_id: str) -> Callable[[], None]:
    def repair() -> None:
        engine.store.layers.remove_cache(home, cache_id)

    return repair


def _remove_dir(driver: graphdriver.Driver, layer_id: str) -> Callable[[], None]:
    def repair() -> None:
        if driver.exists(layer_id):
            driver.remove(layer_id)

    return repair


def _delete_blob(engine: Engine, digest: str) -> Callable[[], None]:
    def repair() -> None:
        blobs.collect(engine.store, engine.content, [digest])

    return repair


def _refresh(engine: Engine, container_id: str) -> Callable[[], None]:
    def repair() -> None:
        record = engine.store.containers.get(container_id)
        if record is not None:
            lifecycle.refresh(engine.containers, record)

    return repair


def _detach(point: Path) -> Callable[[], None]:
    def repair() -> None:
        mountutil.detach(point)

    return repair
