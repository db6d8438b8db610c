"""Errors of the registry client; the CLI prints them as one line and exits 125."""

from __future__ import annotations

from pydock.errors import PydockError


class RegistryError(PydockError):
    """A registry could not be reached or answered with an error."""

    def __init__(self, message: str, *, status: int | None = None, digest: str | None = None):
        super().__init__(message, digest=digest)
        self.status = status


class AuthenticationError(RegistryError):
    """The registry refused the credentials (or asked for some and there were none)."""
