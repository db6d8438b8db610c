"""Healthcheck settings as parsed and merged with the image's, and the state file."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydock.containers import health
from pydock.containers.errors import ContainerConfigError
from pydock.containers.health import Healthcheck, HealthFlags


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0", 0), ("1s", 10**9), ("1m30s", 90 * 10**9), ("500ms", 5 * 10**8), ("1.5h", 5400 * 10**9)],
)
def test_go_durations(text: str, expected: int) -> None:
    assert health.parse_duration(text, "--health-interval") == expected


@pytest.mark.parametrize(("text", "why"), [("5", "missing unit"), ("1x", "invalid duration")])
def test_bad_durations(text: str, why: str) -> None:
    with pytest.raises(ContainerConfigError, match=why):
        health.parse_duration(text, "--health-timeout")


def test_flags_over_the_image() -> None:
    image = Healthcheck(("CMD", "true"), interval=10**9, retries=2)
    assert health.resolve(HealthFlags(), image) == image
    assert health.resolve(HealthFlags(), None) is None
    assert health.resolve(HealthFlags(retries=5, timeout="2s"), image) == Healthcheck(
        ("CMD", "true"), interval=10**9, timeout=2 * 10**9, retries=5
    )
    assert health.resolve(HealthFlags(cmd="test -e /x"), image) == Healthcheck(
        ("CMD-SHELL", "test -e /x"), interval=10**9, retries=2
    )
    off = health.resolve(HealthFlags(disabled=True), image)
    assert off == Healthcheck(("NONE",))
    assert off is not None and not off.is_active
    with pytest.raises(ContainerConfigError, match="conflicts with --health-"):
        health.resolve(HealthFlags(disabled=True, retries=1), image)
    with pytest.raises(ContainerConfigError, match="Interval in Healthcheck cannot be less"):
        health.resolve(HealthFlags(interval="10us"), None)


def test_the_config_text_round_trip() -> None:
    check = Healthcheck(("CMD-SHELL", "true"), interval=10**9, start_period=3 * 10**9)
    assert Healthcheck.from_text(check.to_text()) == check
    assert check.view() == {
        "Test": ["CMD-SHELL", "true"],
        "Interval": 10**9,
        "StartPeriod": 3 * 10**9,
    }
    assert check.command() == ("/bin/sh", "-c", "true")
    assert Healthcheck(("CMD", "a", "b")).command() == ("a", "b")


def test_state_file(tmp_path: Path) -> None:
    assert health.read_state(tmp_path) is None
    health.write_state(tmp_path, health.starting())
    assert health.read_state(tmp_path) == {"Status": "starting", "FailingStreak": 0, "Log": []}
    # A container removed meanwhile: nothing is written, nothing raised.
    health.write_state(tmp_path / "gone", health.starting())
    assert not (tmp_path / "gone").exists()
