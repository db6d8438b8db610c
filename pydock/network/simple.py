"""The ``host`` and ``none`` network drivers: nothing to build, nothing to forward."""

from __future__ import annotations

from pydock.network.driver import NetworkDriver


class HostDriver(NetworkDriver):
    """The host's own network namespace."""

    name = "host"
    own_namespace = False


class NoneDriver(NetworkDriver):
    """A network namespace of the container's own with only ``lo`` (up)."""

    name = "none"
