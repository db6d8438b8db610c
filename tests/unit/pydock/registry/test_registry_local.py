"""Which registries are insecure by default: this machine's, as in Docker."""

from __future__ import annotations

import pytest

from pydock.registry.client import is_local


@pytest.mark.parametrize(
    ("host", "local"),
    [
        ("localhost", True),
        ("localhost:5000", True),
        ("registry.localhost:443", True),
        ("127.0.0.1:5000", True),
        ("127.1.2.3", True),
        ("[::1]:5000", True),
        ("10.0.0.1:5000", False),
        ("128.0.0.1", False),
        ("registry-1.docker.io", False),
        ("mylocalhost:5000", False),
    ],
)
def test_local_registries(host: str, local: bool) -> None:
    assert is_local(host) is local
