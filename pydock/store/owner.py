"""Which process owns an unfinished row, and whether that process still runs.

An incomplete layer row belongs to the process that is unpacking it. Start-up recovery must
remove the rows of processes that died, but not those of a second pydock that is importing at
the same moment. The owner is written as ``<pid>:<start time>`` (the start time from
``/proc/<pid>/stat``, in clock ticks since boot), so a reused pid does not look alive.
"""

from __future__ import annotations

import os
from pathlib import Path


def _start_time(pid: int) -> str | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses; fields after it do not.
    fields = stat.rpartition(")")[2].split()
    # fields[0] is field 3 (state); the start time is field 22.
    return fields[19] if len(fields) > 19 else None


def current_owner() -> str:
    """The owner string of this process (not cached: a forked child is another owner)."""
    return owner_of(os.getpid())


def owner_of(pid: int) -> str:
    """The owner string of process ``pid`` (e.g. a container's monitor)."""
    return f"{pid}:{_start_time(pid) or '0'}"


def is_owner_alive(owner: str | None) -> bool:
    """Whether the process named by ``owner`` (from :func:`current_owner`) still runs."""
    if not owner:
        return False
    pid_text, _, start = owner.partition(":")
    if not pid_text.isdigit():
        return False
    return _start_time(int(pid_text)) == start
