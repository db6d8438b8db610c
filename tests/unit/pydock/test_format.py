"""Human-readable sizes and ages, as the Docker CLI prints them."""

from __future__ import annotations

import datetime as dt

import pytest

from pydock.format import human_age, human_duration, human_size, short_id, table


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0B"),
        (999, "999B"),
        (1000, "1kB"),
        (1_200_000, "1.2MB"),
        (4_261_234, "4.26MB"),
        (999_999, "1MB"),
        (123_456_789_012, "123GB"),
    ],
)
def test_human_size(size: int, text: str) -> None:
    assert human_size(size) == text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0.5, "Less than a second"),
        (1, "1 second"),
        (59, "59 seconds"),
        (60, "About a minute"),
        (150, "2 minutes"),
        (3600, "About an hour"),
        (5 * 3600, "5 hours"),
        (3 * 86400, "3 days"),
        (20 * 86400, "2 weeks"),
        (90 * 86400, "3 months"),
        (800 * 86400, "2 years"),
    ],
)
def test_human_duration(seconds: float, text: str) -> None:
    assert human_duration(dt.timedelta(seconds=seconds)) == text


def test_human_age_and_short_id() -> None:
    now = dt.datetime(2024, 5, 1, 12, tzinfo=dt.UTC)
    assert human_age(now - dt.timedelta(minutes=2), now) == "2 minutes ago"
    assert short_id("sha256:" + "0123456789ab" + "f" * 52) == "0123456789ab"


def test_table_aligns_columns() -> None:
    text = table(["A", "BB"], [["long value", "x"], ["y", "z"]])
    assert text.splitlines() == ["A            BB", "long value   x", "y            z"]
