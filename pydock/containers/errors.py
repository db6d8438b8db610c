"""Errors of containers; the CLI prints them as one line and exits 125 (or 126/127)."""

from __future__ import annotations

from pydock.errors import PydockError


class ContainerUnknownError(PydockError):
    """No container has this name or id (prefix)."""


class ContainerConflictError(PydockError):
    """A name already in use, or a container in a state that forbids what was asked."""


class ContainerConfigError(PydockError):
    """A run or create option pydock cannot use: bad size, bad volume, unknown user, ..."""


class ContainerPathError(ContainerConfigError):
    """No such file or directory in the container (``cp``)."""


class ContainerStartError(PydockError):
    """The container could not be set up or its command not executed.

    ``exit_code`` is what ``run`` and ``start -a`` exit with: 125 when pydock or the set-up
    failed, 126 when the command cannot be executed, 127 when it does not exist.
    """

    def __init__(self, message: str, *, exit_code: int = 125) -> None:
        super().__init__(message)
        self.exit_code = exit_code
