"""Fixtures of the conformance suite: every test runs once per registered driver, each time on a
fresh driver in its own home, with a sentinel directory beside that home that no layer operation
may touch."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import graphdriver

from .helpers import Workspace, close_driver, open_driver
from .scenario import ChangeScenario

# Markers that a driver's cases carry, so `-m "not fuse"` leaves them out. A driver that is not
# listed here runs unmarked; whether it works on this host is decided by get_driver alone.
DRIVER_MARKS: dict[str, tuple[pytest.MarkDecorator, ...]] = {
    "overlay2": (pytest.mark.overlay,),
    "fuse": (pytest.mark.fuse,),
}


def _driver_names() -> list[str]:
    """Every registered driver, or exactly those named in ``PYDOCK_TEST_DRIVERS`` (a, b)."""
    registered = list(graphdriver.registered())
    chosen = os.environ.get("PYDOCK_TEST_DRIVERS")
    if not chosen:
        return registered
    names = [name.strip() for name in chosen.split(",") if name.strip()]
    unknown = sorted(set(names) - set(registered))
    if unknown:
        raise pytest.UsageError(f"PYDOCK_TEST_DRIVERS names unregistered drivers: {unknown}")
    return names


def _driver_params() -> list[Any]:
    return [
        pytest.param(name, id=name, marks=DRIVER_MARKS.get(name, ())) for name in _driver_names()
    ]


@pytest.fixture(params=_driver_params())
def driver_name(request: pytest.FixtureRequest) -> str:
    name: str = request.param
    return name


@pytest.fixture
def workspace(tmp_path: Path) -> Workspace:
    sentinel = tmp_path / "sentinel"
    (sentinel / "sub").mkdir(parents=True)
    (sentinel / "secret").write_bytes(b"host file: no layer may read or change it\n")
    (sentinel / "sub" / "other").write_bytes(b"another host file\n")
    return Workspace(home=tmp_path / "home", sentinel=sentinel)


@pytest.fixture
def driver(driver_name: str, workspace: Workspace) -> Iterator[graphdriver.Driver]:
    drv = open_driver(driver_name, workspace.home)
    try:
        yield drv
    finally:
        close_driver(drv, workspace.home)


@pytest.fixture
def scenario(driver: graphdriver.Driver) -> ChangeScenario:
    """The change scenario built in the test's driver."""
    return ChangeScenario(driver)
