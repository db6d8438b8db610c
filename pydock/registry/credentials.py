"""Registry credentials in Docker's client config: ``$DOCKER_CONFIG/config.json``.

``auths`` maps a registry to ``{"auth": base64("user:password")}`` (or separate ``username``
and ``password``). Docker Hub's key is its old index URL. Credential helpers (``credsStore``,
``credHelpers``) are not run: pydock reads and writes the file only.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pydock.registry.errors import AuthenticationError

DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_NAMES = ("docker.io", "index.docker.io", "registry-1.docker.io")


@dataclass(frozen=True)
class Credentials:
    """A user name and password (or token) for one registry."""

    username: str
    password: str

    def __repr__(self) -> str:
        return f"Credentials(username={self.username!r}, password=<hidden>)"


def config_path() -> Path:
    """``$DOCKER_CONFIG/config.json``, else ``~/.docker/config.json``."""
    directory = os.environ.get("DOCKER_CONFIG")
    base = Path(directory) if directory else Path.home() / ".docker"
    return base / "config.json"


def registry_key(domain: str) -> str:
    """The ``auths`` key Docker uses for ``domain``."""
    return DOCKER_HUB_KEY if domain in _HUB_NAMES else domain


def _candidates(domain: str) -> list[str]:
    key = registry_key(domain)
    return [key, f"https://{domain}", f"http://{domain}", f"https://{domain}/v2/", domain]


def _read(path: Path) -> dict[str, object]:
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise AuthenticationError(f"reading {path}: {exc}") from exc
    return document if isinstance(document, dict) else {}


def load_credentials(domain: str, path: Path | None = None) -> Credentials | None:
    """The credentials stored for ``domain``, if any."""
    path = path or config_path()
    auths = _read(path).get("auths")
    if not isinstance(auths, dict):
        return None
    for key in _candidates(domain):
        entry = auths.get(key)
        if not isinstance(entry, dict):
            continue
        if isinstance(entry.get("username"), str) and isinstance(entry.get("password"), str):
            return Credentials(entry["username"], entry["password"])
        encoded = entry.get("auth")
        if not isinstance(encoded, str) or not encoded:
            continue
        try:
            user, colon, secret = base64.b64decode(encoded, validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError) as exc:
            raise AuthenticationError(f"reading {path}: bad auth entry for {key}") from exc
        if colon:
            return Credentials(user, secret)
    return None


def store_credentials(domain: str, credentials: Credentials, path: Path | None = None) -> Path:
    """Save ``credentials`` for ``domain`` (mode 0600, other entries kept); returns the file."""
    path = path or config_path()
    document = _read(path)
    auths = document.get("auths")
    if not isinstance(auths, dict):
        auths = {}
    token = f"{credentials.username}:{credentials.password}".encode()
    auths[registry_key(domain)] = {"auth": base64.b64encode(token).decode()}
    document["auths"] = auths
    _write(path, document)
    return path


def remove_credentials(domain: str, path: Path | None = None) -> bool:
    """Forget the credentials of ``domain``; ``False`` if there were none."""
    path = path or config_path()
    document = _read(path)
    auths = document.get("auths")
    if not isinstance(auths, dict):
        return False
    removed = [key for key in _candidates(domain) if auths.pop(key, None) is not None]
    if removed:
        _write(path, document)
    return bool(removed)


def _write(path: Path, document: dict[str, object]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temp = tempfile.mkstemp(dir=path.parent, prefix=".config-")
    try:
        with os.fdopen(fd, "w") as out:
            json.dump(document, out, indent="\t")
            out.write("\n")
        os.chmod(temp, 0o600)
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
