"""Registry authentication: the ``WWW-Authenticate`` challenge, Basic and Bearer tokens.

A registry answers 401 with a challenge. ``Basic realm=...`` asks for the user's password on
every request; ``Bearer realm=...,service=...,scope=...`` sends the client to a token server
(with the user's password if there is one, anonymously otherwise) for a token that covers the
repository scopes the client asks for.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field

from pydock.registry.credentials import Credentials

_PARAM = re.compile(r'\s*([A-Za-z][\w-]*)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s,]*))\s*,?')


@dataclass(frozen=True)
class Challenge:
    """One authentication challenge: a scheme (``basic``, ``bearer``) and its parameters."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)


def parse_challenges(headers: list[str]) -> list[Challenge]:
    """The challenges of ``WWW-Authenticate`` header values."""
    found = []
    for header in headers:
        text = header.strip()
        while text:
            scheme, _, rest = text.partition(" ")
            params: dict[str, str] = {}
            while rest:
                match = _PARAM.match(rest)
                if match is None:
                    break
                value = match.group(2)
                value = re.sub(r"\\(.)", r"\1", value) if value is not None else match.group(3)
                params[match.group(1).lower()] = value
                rest = rest[match.end() :]
            found.append(Challenge(scheme.strip().lower(), params))
            text = rest.strip().lstrip(",").strip()
    return found


def basic_header(credentials: Credentials) -> str:
    """The ``Authorization`` value for Basic authentication."""
    token = f"{credentials.username}:{credentials.password}".encode()
    return "Basic " + base64.b64encode(token).decode()


def repository_scope(repository: str, *actions: str) -> str:
    """A token scope such as ``repository:library/busybox:pull,push``."""
    return f"repository:{repository}:{','.join(actions)}"
