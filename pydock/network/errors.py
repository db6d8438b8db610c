"""Errors of networks; the CLI prints them as one line and exits 125."""

from __future__ import annotations

from pydock.errors import PydockError


class NetworkError(PydockError):
    """A network could not be created, joined, left or removed."""


class NetworkConfigError(NetworkError):
    """A network option pydock cannot use: bad address, bad port, unknown network, ..."""


class NetworkUnknownError(NetworkError):
    """No network has this name or id (prefix)."""


class NetworkConflictError(NetworkError):
    """A name in use, a network with members, a host port already taken, ..."""
