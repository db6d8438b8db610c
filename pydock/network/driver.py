"""THE CONTRACT of network drivers, and their registry (entry-point group ``pydock.netdrivers``).

A driver makes a network exist on this host (``create_network``/``delete_network``), puts a
container's network namespace on it and takes it off (``join``/``leave``), and forwards host
ports to a member (``publish``/``unpublish``). The engine's networking code keeps the rows
(IPAM, ports) in the store; drivers keep no state of their own, so every call may be repeated
(after a crash, after a reboot that took the interfaces away).

Built-in: ``bridge`` (a Linux bridge, veth pairs, nftables NAT), ``host`` (the host's own
namespace) and ``none`` (a namespace with only ``lo``).
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from importlib import metadata
from typing import ClassVar

from pydock.network.errors import NetworkConfigError
from pydock.store.networks import EndpointRecord, NetworkRecord, PortBinding

ENTRY_POINT_GROUP = "pydock.netdrivers"
# The built-in drivers, found also when pydock runs from a source tree whose installed
# metadata predates the entry-point group.
BUILTIN = {
    "bridge": "pydock.network.bridge:BridgeDriver",
    "host": "pydock.network.simple:HostDriver",
    "none": "pydock.network.simple:NoneDriver",
}


class NetworkDriver:
    """A kind of network. Subclasses set ``name`` and override what they support."""

    name: ClassVar[str] = ""
    # The container gets a network namespace of its own (else it shares the host's).
    own_namespace: ClassVar[bool] = True
    # ``network create --driver NAME`` may make more networks of this kind.
    user_networks: ClassVar[bool] = False
    # Members get addresses from the network's subnet.
    has_addresses: ClassVar[bool] = False
    supports_ports: ClassVar[bool] = False

    def create_network(self, network: NetworkRecord) -> None:
        """Make ``network`` exist on this host (idempotent)."""

    def delete_network(self, network: NetworkRecord) -> None:
        """Remove what ``create_network`` made (idempotent)."""

    def join(self, network: NetworkRecord, endpoint: EndpointRecord, pid: int) -> None:
        """Connect the network namespace of process ``pid`` to ``network`` as ``endpoint``."""

    def leave(self, network: NetworkRecord, endpoint: EndpointRecord) -> None:
        """Undo ``join`` (idempotent; the namespace may be gone already)."""

    def publish(
        self,
        network: NetworkRecord,
        endpoint: EndpointRecord,
        ports: Sequence[PortBinding],
        pid: int,
    ) -> None:
        """Forward each host port of ``ports`` to the endpoint's address (of process ``pid``)."""
        if ports:
            raise NetworkConfigError(f"publishing ports: the {self.name} driver has no ports")

    def unpublish(self, network: NetworkRecord, container_id: str) -> None:
        """Stop forwarding the container's ports (idempotent)."""

    def quiesce(self) -> None:
        """No container is on a network of this kind any more: stop what serves them all."""

    def routed_subnets(self) -> list[str]:
        """Subnets this host already routes, which a new network must not overlap."""
        return []

    def forget_containers(self, gone: set[str]) -> None:
        """Remove whatever this driver still holds for the containers ``gone`` (recovery).

        Only containers of the caller's own store are named: another pydock root may use the
        same host network namespace, and its containers are not this one's to clean.
        """


def _load(target: str) -> type[NetworkDriver]:
    module, _, attribute = target.partition(":")
    loaded = getattr(importlib.import_module(module), attribute)
    if not (isinstance(loaded, type) and issubclass(loaded, NetworkDriver)):
        raise NetworkConfigError(f"loading network driver {target}: not a NetworkDriver")
    return loaded


def registered() -> dict[str, str]:
    """Every known driver: name -> ``module:Class``."""
    found = dict(BUILTIN)
    for entry in metadata.entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry.value)
    return found


def get_driver(name: str) -> NetworkDriver:
    """The driver ``name``, built."""
    target = registered().get(name)
    if target is None:
        raise NetworkConfigError(f"finding network driver {name!r}: plugin not found")
    return _load(target)()
