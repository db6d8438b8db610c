"""A client of the OCI distribution API (v2): pull and push images, log in to registries."""

from __future__ import annotations

from pydock.registry.client import RegistryClient
from pydock.registry.credentials import Credentials, load_credentials
from pydock.registry.errors import AuthenticationError, RegistryError

__all__ = [
    "AuthenticationError",
    "Credentials",
    "RegistryClient",
    "RegistryError",
    "load_credentials",
]
