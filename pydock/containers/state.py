"""Container states as the store records them, and the one table of allowed transitions.

    creating --created--> created --start--> running --exit--> exited --start--> running
    created, exited --remove--> removing          running --remove (forced: kill first)

``creating`` and ``removing`` belong to the process doing the work (the row's ``owner``); if
it dies, start-up recovery removes what it left. ``running`` means a monitor process exists;
the exit file it writes, or its death, turns the row into ``exited``.
"""

from __future__ import annotations

import enum

from pydock.containers.errors import ContainerConflictError


class ContainerState(enum.StrEnum):
    """Where a container is in its life (Docker's words where Docker has one)."""

    CREATING = "creating"
    CREATED = "created"
    RUNNING = "running"
    EXITED = "exited"
    REMOVING = "removing"


class Action(enum.StrEnum):
    """What can be done to, or happen to, a container."""

    FINISH_CREATE = "finish creating"
    START = "start"
    EXIT = "exit"
    KILL = "kill"
    STOP = "stop"
    REMOVE = "remove"
    FORCE_REMOVE = "force-remove"
    CHANGE = "read the changes of"
    COMMIT = "commit"
    EXPORT = "export"
    EXEC = "exec in"


_S = ContainerState
_A = Action
TRANSITIONS: dict[tuple[ContainerState, Action], ContainerState] = {
    (_S.CREATING, _A.FINISH_CREATE): _S.CREATED,
    (_S.CREATED, _A.START): _S.RUNNING,
    (_S.EXITED, _A.START): _S.RUNNING,
    (_S.RUNNING, _A.EXIT): _S.EXITED,
    (_S.RUNNING, _A.KILL): _S.RUNNING,
    (_S.RUNNING, _A.STOP): _S.RUNNING,
    (_S.CREATED, _A.STOP): _S.CREATED,
    (_S.EXITED, _A.STOP): _S.EXITED,
    (_S.RUNNING, _A.EXEC): _S.RUNNING,
    (_S.CREATED, _A.REMOVE): _S.REMOVING,
    (_S.EXITED, _A.REMOVE): _S.REMOVING,
    (_S.CREATED, _A.FORCE_REMOVE): _S.REMOVING,
    (_S.EXITED, _A.FORCE_REMOVE): _S.REMOVING,
    (_S.RUNNING, _A.FORCE_REMOVE): _S.REMOVING,
    (_S.CREATED, _A.CHANGE): _S.CREATED,
    (_S.RUNNING, _A.CHANGE): _S.RUNNING,
    (_S.EXITED, _A.CHANGE): _S.EXITED,
    (_S.CREATED, _A.COMMIT): _S.CREATED,
    (_S.RUNNING, _A.COMMIT): _S.RUNNING,
    (_S.EXITED, _A.COMMIT): _S.EXITED,
    (_S.CREATED, _A.EXPORT): _S.CREATED,
    (_S.RUNNING, _A.EXPORT): _S.RUNNING,
    (_S.EXITED, _A.EXPORT): _S.EXITED,
}

# Why an action is refused, where Docker has words for it.
_REFUSALS: dict[tuple[ContainerState, Action], str] = {
    (_S.RUNNING, _A.START): "it is already running",
    (_S.RUNNING, _A.REMOVE): "it is running: stop it first or use rm -f",
    (_S.CREATED, _A.KILL): "it is not running",
    (_S.EXITED, _A.KILL): "it is not running",
    (_S.CREATED, _A.EXEC): "it is not running",
    (_S.EXITED, _A.EXEC): "it is not running",
}


def transition(state: str, action: Action, *, name: str) -> ContainerState:
    """The state ``action`` leads to from ``state``; raise ContainerConflictError if refused."""
    current = ContainerState(state)
    after = TRANSITIONS.get((current, action))
    if after is None:
        why = _REFUSALS.get((current, action), f"it is {current}")
        raise ContainerConflictError(f"cannot {action} container {name}: {why}")
    return after


def allows(state: str, action: Action) -> bool:
    """Whether ``action`` is allowed in ``state``."""
    return (ContainerState(state), action) in TRANSITIONS
