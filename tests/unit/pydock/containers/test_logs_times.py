"""``--since``/``--until`` values in Docker's forms, and Docker's timestamp format."""

from __future__ import annotations

import datetime

import pytest

from pydock.containers.logs import format_time, parse_time

NOW = 1_700_000_000_123_456_789
SECOND = 1_000_000_000


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10m", NOW - 600 * SECOND),
        ("1h30m", NOW - 5400 * SECOND),
        ("42s", NOW - 42 * SECOND),
        ("1.5h", NOW - 5400 * SECOND),
        ("250ms", NOW - SECOND // 4),
        ("0", NOW),
        ("1700000000", 1_700_000_000 * SECOND),
        ("1700000000.5", 1_700_000_000 * SECOND + SECOND // 2),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * SECOND),
        ("2023-11-14T22:13:20.000000042Z", 1_700_000_000 * SECOND + 42),
        ("2023-11-15T00:13:20+02:00", 1_700_000_000 * SECOND),
    ],
)
def test_docker_forms(text: str, expected: int) -> None:
    assert parse_time(text, now=NOW) == expected


def test_without_a_zone_is_local_time() -> None:
    local = datetime.datetime(2023, 11, 14, 22, 13, 20).astimezone()
    assert parse_time("2023-11-14T22:13:20", now=NOW) == int(local.timestamp()) * SECOND
    assert (
        parse_time("2023-11-14", now=NOW)
        == int(local.replace(hour=0, minute=0, second=0).timestamp()) * SECOND
    )


@pytest.mark.parametrize("text", ["", "yesterday", "10x", "1h-", "2023-13-01", "1.2.3", "m"])
def test_other_values_are_errors(text: str) -> None:
    with pytest.raises(ValueError, match="neither a timestamp"):
        parse_time(text, now=NOW)


def test_format_is_rfc3339_nano_in_utc() -> None:
    assert format_time(1_700_000_000 * SECOND + 42) == "2023-11-14T22:13:20.000000042Z"
