"""The container state machine: every state, every event, and the one table that joins them.

    CREATED --start--> RUNNING --exit--> STOPPED --delete--> DELETED
    CREATED --fail or exit-------------> STOPPED

``CREATED``: the process exists, its namespaces and root filesystem are set up, and it waits
before exec. ``RUNNING``: the command was executed. ``STOPPED``: the process is gone and its exit
status is known. ``DELETED``: its resources (cgroup, monitor) are released.
"""

from __future__ import annotations

import enum

from .errors import InvalidTransitionError


class State(enum.StrEnum):
    """Where a container is in its life."""

    CREATED = "created"
    RUNNING = "running"
    STOPPED = "stopped"
    DELETED = "deleted"


class Event(enum.StrEnum):
    """What can happen to a container."""

    START = "start"
    FAIL = "fail"
    EXIT = "exit"
    KILL = "kill"
    DELETE = "delete"


TRANSITIONS: dict[tuple[State, Event], State] = {
    (State.CREATED, Event.START): State.RUNNING,
    (State.CREATED, Event.FAIL): State.STOPPED,
    (State.CREATED, Event.EXIT): State.STOPPED,
    (State.CREATED, Event.KILL): State.CREATED,
    (State.RUNNING, Event.EXIT): State.STOPPED,
    (State.RUNNING, Event.KILL): State.RUNNING,
    (State.STOPPED, Event.EXIT): State.STOPPED,
    (State.STOPPED, Event.DELETE): State.DELETED,
}


def transition(state: State, event: Event, *, container_id: str | None = None) -> State:
    """Return the state that ``event`` leads to from ``state``, or raise if it is not allowed."""
    if (state, event) not in TRANSITIONS:
        name = f"container {container_id}" if container_id else "a container"
        raise InvalidTransitionError(
            f"cannot {event} {name} in state {state}", container_id=container_id
        )
    return TRANSITIONS[(state, event)]


def allows(state: State, event: Event) -> bool:
    """True when ``event`` may happen in ``state``."""
    return (state, event) in TRANSITIONS
