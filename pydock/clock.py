"""Timestamps as the store and the OCI config write them: RFC 3339, UTC, ``Z`` suffix."""

from __future__ import annotations

import datetime as dt


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
