"""Mount reference counting with one lock per layer.

A driver's ``get`` and ``put`` run under the layer's lock, so a mount and an unmount of the
same layer never interleave; different layers proceed in parallel. A driver whose mounts outlive
the process checks for an existing mount when the count goes to 1 and adopts it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager


class RefCounter:
    """Counts ``get``/``put`` pairs per layer id."""

    def __init__(self) -> None:
        self._counts: dict[str, int] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    @contextmanager
    def locked(self, layer_id: str) -> Iterator[None]:
        """Hold the per-layer lock for the body."""
        with self._guard:
            lock = self._locks.setdefault(layer_id, threading.Lock())
        with lock:
            yield

    def count(self, layer_id: str) -> int:
        return self._counts.get(layer_id, 0)

    def increment(self, layer_id: str) -> int:
        """Add one reference and return the new count (call with the layer lock held).

        A count of 1 means the caller must mount, unless the layer is mounted already (left by
        an earlier process), in which case the existing mount is adopted.
        """
        value = self._counts.get(layer_id, 0) + 1
        self._counts[layer_id] = value
        return value

    def decrement(self, layer_id: str) -> int | None:
        """Drop one reference and return the new count; ``None`` when there was none to drop."""
        current = self._counts.get(layer_id, 0)
        if current == 0:
            return None
        if current == 1:
            del self._counts[layer_id]
            return 0
        self._counts[layer_id] = current - 1
        return current - 1

    def forget(self, layer_id: str) -> None:
        """Drop every reference (after a forced unmount or a failed mount)."""
        self._counts.pop(layer_id, None)

    def active(self) -> list[str]:
        """Layer ids with at least one reference, sorted."""
        return sorted(k for k, v in self._counts.items() if v > 0)
