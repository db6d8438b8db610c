"""Timestamps as the store and the OCI config write them: RFC 3339, UTC, ``Z`` suffix."""

from __future__ import annotations

import datetime as dt
import re

_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}


def utc_now() -> dt.datetime:
    """The current time, timezone-aware, in UTC."""
    return dt.datetime.now(dt.UTC)


def to_rfc3339(moment: dt.datetime) -> str:
    """Format ``moment`` like ``2024-05-01T12:00:00.123456Z``."""
    return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def parse_rfc3339(text: str) -> dt.datetime:
    """Parse a timestamp written by :func:`to_rfc3339` (or any ISO 8601 form with a zone)."""
    moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment


def now_rfc3339() -> str:
    """The current time as an RFC 3339 string."""
    return to_rfc3339(utc_now())


def parse_go_duration(text: str) -> int | None:
    """A Go duration (``30s``, ``1m30s``, ``-1.5h``, ``0``) in nanoseconds, as Docker's flags
    take it; ``None`` if ``text`` is not one."""
    sign = -1 if text.startswith("-") else 1
    body = text.lstrip("+-")
    if not body or body == "0":
        return 0 if body == "0" else None
    total = 0.0
    position = 0
    for match in _DURATION_PART.finditer(body):
        if match.start() != position:
            return None
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if position != len(body):
        return None
    return sign * int(total)
