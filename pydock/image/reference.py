"""Image references as Docker reads them: ``[DOMAIN/]PATH[:TAG][@DIGEST]``.

``busybox`` is normalised to ``docker.io/library/busybox:latest``; a first component with a
dot or a colon, or ``localhost``, is a registry domain and is kept (``localhost:5000/x``).
Names are lower case; tags are ``[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydock.errors import InvalidReferenceError

DEFAULT_DOMAIN = "docker.io"
OFFICIAL_PREFIX = "library/"
DEFAULT_TAG = "latest"
NAME_LIMIT = 255

_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_PATH = re.compile(rf"{_COMPONENT}(?:/{_COMPONENT})*")
_DOMAIN_PART = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN = re.compile(rf"(?:{_DOMAIN_PART}(?:\.{_DOMAIN_PART})*|\[[0-9a-fA-F:.]+\])(?::[0-9]+)?")
_TAG = re.compile(r"[\w][\w.-]{0,127}", re.ASCII)
_DIGEST = re.compile(r"[a-z0-9]+(?:[+._-][a-z0-9]+)*:[0-9a-fA-F]{32,}")
_HEX64 = re.compile(r"[a-f0-9]{64}")


@dataclass(frozen=True)
class Reference:
    """A normalised reference: domain, path, and a tag and/or a digest."""

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def name(self) -> str:
        """The full repository name, e.g. ``docker.io/library/busybox``."""
        return f"{self.domain}/{self.path}"

    @property
    def familiar_name(self) -> str:
        """The repository as Docker prints it, e.g. ``busybox`` or ``localhost:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.name
        path = self.path
        if path.startswith(OFFICIAL_PREFIX) and "/" not in path[len(OFFICIAL_PREFIX) :]:
            return path[len(OFFICIAL_PREFIX) :]
        return path

    @property
    def familiar(self) -> str:
        """The whole reference in Docker's short form, e.g. ``busybox:latest``."""
        return self.familiar_name + self._suffix()

    def _suffix(self) -> str:
        text = f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")

    def __str__(self) -> str:
        return self.name + self._suffix()


def parse_reference(text: str, *, default_tag: bool = True) -> Reference:
    """Parse and normalise ``text``; with ``default_tag``, a bare name gets ``:latest``."""
    if not text:
        raise InvalidReferenceError("parsing reference '': invalid reference format")
    if _HEX64.fullmatch(text):
        raise InvalidReferenceError(
            f"parsing reference {text!r}: invalid repository name, "
            "cannot specify 64-byte hexadecimal strings"
        )
    remainder, _, digest = text.partition("@")
    if digest and not _DIGEST.fullmatch(digest):
        raise _invalid(text, "invalid digest")
    name, tag = _split_tag(remainder)
    if tag is not None and not _TAG.fullmatch(tag):
        raise _invalid(text, "invalid tag")
    domain, path = _split_domain(name)
    if not _DOMAIN.fullmatch(domain):
        raise _invalid(text, "invalid registry domain")
    if not _PATH.fullmatch(path):
        if _PATH.fullmatch(path.lower()):
            raise _invalid(text, "repository name must be lowercase")
        raise _invalid(text, "invalid reference format")
    if len(f"{domain}/{path}") > NAME_LIMIT:
        raise _invalid(text, f"repository name must not be more than {NAME_LIMIT} characters")
    if tag is None and not digest and default_tag:
        tag = DEFAULT_TAG
    return Reference(domain, path, tag, digest or None)


def _split_tag(remainder: str) -> tuple[str, str | None]:
    # A colon after the last slash starts the tag; one before it belongs to a domain port.
    slash = remainder.rfind("/")
    colon = remainder.rfind(":")
    if colon > slash:
        return remainder[:colon], remainder[colon + 1 :]
    return remainder, None


def _split_domain(name: str) -> tuple[str, str]:
    first, slash, rest = name.partition("/")
    is_domain = any(mark in first for mark in ".:") or first == "localhost"
    if slash and (is_domain or first != first.lower()):
        domain, path = first, rest
    else:
        domain, path = DEFAULT_DOMAIN, name
    if domain == "index.docker.io":
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in path:
        path = OFFICIAL_PREFIX + path
    return domain, path


def _invalid(text: str, why: str) -> InvalidReferenceError:
    return InvalidReferenceError(f"parsing reference {text!r}: {why}")
