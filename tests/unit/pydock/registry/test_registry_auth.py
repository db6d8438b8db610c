"""Authentication challenges and the Docker client config."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from pydock.registry.auth import Challenge, basic_header, parse_challenges, repository_scope
from pydock.registry.credentials import (
    DOCKER_HUB_KEY,
    Credentials,
    load_credentials,
    remove_credentials,
    store_credentials,
)
from pydock.registry.errors import AuthenticationError


def test_bearer_and_basic_challenges() -> None:
    header = (
        'Bearer realm="https://auth.example.com/token",service="registry.example.com",'
        'scope="repository:library/busybox:pull,push"'
    )
    [bearer] = parse_challenges([header])
    assert bearer == Challenge(
        "bearer",
        {
            "realm": "https://auth.example.com/token",
            "service": "registry.example.com",
            "scope": "repository:library/busybox:pull,push",
        },
    )
    [basic] = parse_challenges(['Basic realm="with \\"quotes\\", and comma"'])
    assert basic.scheme == "basic" and basic.params["realm"] == 'with "quotes", and comma'
    assert parse_challenges([]) == []
    assert repository_scope("a/b", "pull", "push") == "repository:a/b:pull,push"
    assert basic_header(Credentials("u", "p")) == "Basic " + base64.b64encode(b"u:p").decode()


def test_credentials_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"other:1": {"auth": "eDp5"}}, "psFormat": "x"}))
    store_credentials("localhost:5000", Credentials("me", "pa:ss"), path)
    assert load_credentials("localhost:5000", path) == Credentials("me", "pa:ss")
    assert load_credentials("other:1", path) == Credentials("x", "y")
    document = json.loads(path.read_text())
    assert document["psFormat"] == "x" and path.stat().st_mode & 0o777 == 0o600
    store_credentials("docker.io", Credentials("hub", "pw"), path)
    assert DOCKER_HUB_KEY in json.loads(path.read_text())["auths"]
    assert load_credentials("docker.io", path) == Credentials("hub", "pw")
    assert remove_credentials("localhost:5000", path)
    assert load_credentials("localhost:5000", path) is None
    assert not remove_credentials("localhost:5000", path)
    assert "pa:ss" not in repr(Credentials("me", "pa:ss"))


def test_missing_and_broken_configs(tmp_path: Path) -> None:
    assert load_credentials("x", tmp_path / "none.json") is None
    broken = tmp_path / "broken.json"
    broken.write_text("{nope")
    with pytest.raises(AuthenticationError, match="reading"):
        load_credentials("x", broken)
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"auths": {"x": {"auth": "!!!"}}}))
    with pytest.raises(AuthenticationError, match="bad auth entry"):
        load_credentials("x", bad)
