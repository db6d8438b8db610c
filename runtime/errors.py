"""Errors raised by the runtime: one hierarchy under :class:`ContainerError`."""

from __future__ import annotations

from pathlib import Path


class ContainerError(Exception):
    """Base of every runtime error; carries the container id and path where known."""

    def __init__(
        self,
        message: str,
        *,
        container_id: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.container_id = container_id
        self.path = str(path) if path is not None else None

    def __str__(self) -> str:
        return self.message


class InvalidSpecError(ContainerError):
    """The container spec asks for something that cannot be done (unknown capability, ...)."""


class UnknownUserError(ContainerError):
    """A user or group name that the image's /etc/passwd or /etc/group does not define."""


class InvalidTransitionError(ContainerError):
    """An operation that the container's current state does not allow."""


class CgroupError(ContainerError):
    """Resource limits that cannot be applied on this host; the message says what is missing."""


class SetupError(ContainerError):
    """Setting up the container (namespaces, mounts, identity) failed before its command ran."""

    def __init__(
        self,
        message: str,
        *,
        errno: int | None = None,
        container_id: str | None = None,
        path: str | Path | None = None,
    ) -> None:
        super().__init__(message, container_id=container_id, path=path)
        self.errno = errno


class ExecError(SetupError):
    """The container's command could not be executed; ``exit_code`` is what Docker reports."""

    exit_code = 126


class CommandNotFoundError(ExecError):
    """The command does not exist in the container (exit code 127)."""

    exit_code = 127


class CommandNotExecutableError(ExecError):
    """The command exists but cannot be executed: permission denied, a directory, bad format."""

    exit_code = 126


class NamespaceUnavailableError(SetupError):
    """The kernel refuses a new user namespace here (disabled, or the limit is reached)."""


class SeccompError(SetupError):
    """libseccomp is missing, or building or loading the container's seccomp filter failed."""
