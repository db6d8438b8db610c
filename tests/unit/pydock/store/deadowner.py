"""The owner string of a process that has exited, for crash-leftover tests."""

from __future__ import annotations

import functools
import multiprocessing

from pydock.store import current_owner


def _report_owner(queue: multiprocessing.Queue[str]) -> None:
    queue.put(current_owner())


@functools.cache
def dead_owner() -> str:
    """Start a process, take its owner string, and wait for it to exit."""
    ctx = multiprocessing.get_context("spawn")
    queue: multiprocessing.Queue[str] = ctx.Queue()
    child = ctx.Process(target=_report_owner, args=(queue,))
    child.start()
    owner = queue.get(timeout=60)
    child.join(timeout=60)
    return owner
