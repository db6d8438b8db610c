"""Healthchecks through the real CLI, as root: the check runs inside the container on its
interval, ``ps`` and ``inspect`` show its state in Docker's words, the image's check is used
unless turned off, and bad values are refused in one line with 125, leaving nothing behind."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator

import pytest

from .containers_support import ROOT_CONTAINER_TESTS, Snapshot, Workspace, fails
from .imagebuild import with_config
from .test_cli_run_flags import assert_left_nothing, inspect, wait_quiet

pytestmark = ROOT_CONTAINER_TESTS

DEADLINE = 60.0


@pytest.fixture(autouse=True)
def checkers_gone(one: Workspace) -> Iterator[None]:
    """After each test, its containers' checkers end (each within a poll of its container's
    end, or of a check that was running then)."""
    yield
    wait_quiet(one.root, DEADLINE)


def _ps_status(ws: Workspace, name: str) -> str:
    out = ws.pydock.ok("ps", "-a", "--filter", f"name={name}", "--format", "{{.Status}}")
    return out.strip()


def _wait_for_health(ws: Workspace, name: str, status: str) -> dict[str, object]:
    """``State.Health`` once its status is ``status`` (bounded by ``DEADLINE``)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        health = inspect(ws, name)["State"].get("Health")
        assert isinstance(health, dict), health
        if health["Status"] == status:
            return health
        assert time.monotonic() < deadline, health
        time.sleep(0.2)


def _wait_for_log(
    ws: Workspace, name: str, done: Callable[[list[dict[str, object]]], bool]
) -> list[dict[str, object]]:
    """``State.Health.Log`` once ``done`` says so (bounded by ``DEADLINE``)."""
    deadline = time.monotonic() + DEADLINE
    while True:
        health = inspect(ws, name)["State"]["Health"]
        assert isinstance(health, dict)
        log = health["Log"]
        assert isinstance(log, list)
        if done(log):
            return log
        assert time.monotonic() < deadline, log
        time.sleep(0.2)


def test_healthy_then_unhealthy(one: Workspace) -> None:
    one.pydock.ok(
        "run", "-d", "--name", "hc",
        "--health-cmd", "cat /tmp/ok", "--health-interval", "1s", "--health-retries", "2",
        "busybox", "sh", "-c", "echo fine > /tmp/ok; sleep 120",
    )  # fmt: skip
    try:
        document = inspect(one, "hc")
        assert document["Config"]["Healthcheck"] == {
            "Test": ["CMD-SHELL", "cat /tmp/ok"],
            "Interval": 1_000_000_000,
            "Retries": 2,
        }
        health = _wait_for_health(one, "hc", "healthy")
        assert health["FailingStreak"] == 0
        log = health["Log"]
        assert isinstance(log, list)
        assert (log[-1]["ExitCode"], log[-1]["Output"]) == (0, "fine\n")
        status = _ps_status(one, "hc")
        assert status.startswith("Up ")
        assert status.endswith(" (healthy)")
        # The check runs inside the container: take away what it reads.
        one.pydock.ok("exec", "hc", "rm", "/tmp/ok")
        health = _wait_for_health(one, "hc", "unhealthy")
        streak = health["FailingStreak"]
        assert isinstance(streak, int)
        assert streak >= 2
        log = health["Log"]
        assert isinstance(log, list)
        assert log[-1]["ExitCode"] == 1
        assert "No such file or directory" in log[-1]["Output"]
        assert _ps_status(one, "hc").endswith(" (unhealthy)")
        # Only the last five results are kept: wait for five, then for one more.
        first = _wait_for_log(one, "hc", lambda log: len(log) >= 5)
        later = _wait_for_log(one, "hc", lambda log: log[-1]["Start"] != first[-1]["Start"])
        assert len(later) == 5
        assert later[-2] == first[-1]
    finally:
        one.pydock.run("rm", "-f", "hc")


def test_a_check_that_runs_too_long(one: Workspace) -> None:
    one.pydock.ok(
        "run", "-d", "--name", "slow", "--health-cmd", "sleep 30",
        "--health-interval", "1s", "--health-timeout", "1s", "--health-retries", "1",
        "busybox", "sleep", "120",
    )  # fmt: skip
    try:
        health = _wait_for_health(one, "slow", "unhealthy")
        log = health["Log"]
        assert isinstance(log, list)
        assert (log[-1]["ExitCode"], log[-1]["Output"]) == (
            -1,
            "Health check exceeded timeout (1s)",
        )
    finally:
        one.pydock.run("rm", "-f", "slow")


def test_the_images_healthcheck(one: Workspace) -> None:
    archive = subprocess.run(
        one.pydock.command("save", "busybox"), capture_output=True, check=True, timeout=120
    ).stdout
    check = {"Test": ["CMD", "true"], "Interval": 1_000_000_000, "Retries": 1}
    one.pydock.ok("load", "-q", stdin=with_config(archive, {"Healthcheck": check}, "checked:1"))
    try:
        one.pydock.ok("run", "-d", "--name", "img", "checked:1", "sleep", "120")
        one.pydock.ok("run", "-d", "--name", "off", "--no-healthcheck", "checked:1", "sleep", "120")
        # A flag changes one setting; the image's command stays.
        one.pydock.ok(
            "create", "--name", "more", "--health-retries", "4", "checked:1", "sleep", "120"
        )
        health = _wait_for_health(one, "img", "healthy")
        assert health["Log"][-1]["ExitCode"] == 0  # type: ignore[index]
        assert inspect(one, "img")["Config"]["Healthcheck"] == check
        off = inspect(one, "off")
        assert off["Config"]["Healthcheck"] == {"Test": ["NONE"]}
        assert "Health" not in off["State"]
        assert _ps_status(one, "off").endswith("(healthy)") is False
        assert inspect(one, "more")["Config"]["Healthcheck"] == {
            "Test": ["CMD", "true"],
            "Interval": 1_000_000_000,
            "Retries": 4,
        }
    finally:
        one.pydock.run("rm", "-f", "img", "off", "more")
        one.pydock.run("rmi", "checked:1")


BAD_VALUES = [
    (["--health-interval", "x"], 'invalid argument "x" for "--health-interval" flag'),
    (["--health-timeout", "5"], 'time: missing unit in duration "5"'),
    (["--health-interval=-1s"], "--health-interval cannot be negative"),
    (["--health-start-period", "10us"], "StartPeriod in Healthcheck cannot be less than 1ms"),
    (["--health-retries", "-1"], "--health-retries cannot be negative"),
    (["--no-healthcheck", "--health-cmd", "true"], "--no-healthcheck conflicts with --health-*"),
]


@pytest.mark.parametrize(("flags", "needle"), BAD_VALUES, ids=lambda v: str(v))
def test_bad_values_leave_nothing(one: Workspace, flags: list[str], needle: str) -> None:
    before = Snapshot.take(one.root)
    fails(one.pydock.run("run", "--rm", *flags, "busybox", "true"), needle)
    fails(one.pydock.run("create", *flags, "busybox", "true"), needle)
    assert_left_nothing(one.root, before)
