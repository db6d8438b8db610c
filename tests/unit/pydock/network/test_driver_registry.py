"""Network drivers are found by name: the built-in ones, and any another distribution declares
in the ``pydock.netdrivers`` entry-point group (a real dist-info directory on ``sys.path``)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from pydock.network import driver
from pydock.network.bridge import BridgeDriver
from pydock.network.errors import NetworkConfigError
from pydock.network.simple import HostDriver, NoneDriver


def test_builtin_drivers() -> None:
    assert isinstance(driver.get_driver("bridge"), BridgeDriver)
    assert isinstance(driver.get_driver("host"), HostDriver)
    assert isinstance(driver.get_driver("none"), NoneDriver)
    assert not HostDriver.own_namespace and NoneDriver.own_namespace
    assert BridgeDriver.user_networks and not HostDriver.user_networks
    with pytest.raises(NetworkConfigError, match="plugin not found"):
        driver.get_driver("nosuch")


@pytest.fixture
def plugin(tmp_path: Path) -> Iterator[str]:
    """A distribution ``pydock-demo-net`` with a driver ``demo``, installed on sys.path."""
    (tmp_path / "demo_netdriver.py").write_text(
        "from pydock.network.driver import NetworkDriver\n"
        "class DemoDriver(NetworkDriver):\n    name = 'demo'\n"
    )
    info = tmp_path / "pydock_demo_net-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: pydock-demo-net\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[pydock.netdrivers]\ndemo = demo_netdriver:DemoDriver\n"
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield "demo"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("demo_netdriver", None)


def test_a_driver_from_another_distribution(plugin: str) -> None:
    assert driver.registered()[plugin] == "demo_netdriver:DemoDriver"
    found = driver.get_driver(plugin)
    assert type(found).__name__ == "DemoDriver" and found.name == "demo"
    with pytest.raises(NetworkConfigError, match="no ports"):
        found.publish(None, None, [object()], 0)  # type: ignore[arg-type, list-item]
