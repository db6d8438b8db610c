"""``--filter KEY=VALUE`` as Docker reads it: the same key ORs its values, keys AND together."""

from __future__ import annotations

import fnmatch
from collections.abc import Collection, Mapping, Sequence

from pydock.errors import UsageError


def parse_filters(
    items: Sequence[str], allowed: Collection[str], *, doing: str
) -> dict[str, list[str]]:
    """``KEY=VALUE`` items by key; a key not in ``allowed`` is refused as Docker refuses it."""
    found: dict[str, list[str]] = {}
    for item in items:
        key, equals, value = item.partition("=")
        key = key.strip().lower()
        if not equals:
            raise UsageError(f"{doing}: bad format of filter (expected name=value): {item!r}")
        if key not in allowed:
            raise UsageError(f"{doing}: invalid filter '{key}'")
        found.setdefault(key, []).append(value)
    return found


def labels_match(wanted: Sequence[str], labels: Mapping[str, str]) -> bool:
    """``label=KEY`` (present) or ``label=KEY=VALUE`` (equal), every one of them."""
    for item in wanted:
        key, equals, value = item.partition("=")
        if key not in labels or (equals and labels[key] != value):
            return False
    return True


def reference_matches(patterns: Sequence[str], repository: str, tag: str) -> bool:
    """``reference=PATTERN``: a shell pattern on ``REPOSITORY`` or ``REPOSITORY:TAG``."""
    names = [repository, f"{repository}:{tag}"]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns for name in names)


def boolean(values: Sequence[str], key: str, *, doing: str) -> bool:
    """A ``true``/``false`` filter such as ``dangling``; the last one counts."""
    value = values[-1].lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise UsageError(f"{doing}: invalid filter '{key}={values[-1]}'")
