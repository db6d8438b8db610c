"""Networks of one pydock root: the rows, the drivers, and containers joining and leaving.

The built-in networks ``bridge`` (interface ``pydock0``, 172.17.0.0/16, as Docker's
``docker0``), ``host`` and ``none`` are recorded on first use. Every change to interfaces and
rules happens under ``<root>/network.lock`` (an exclusive ``flock``), so concurrent ``run``s
do not race to make the same bridge; addresses are chosen in a store transaction.

Names: on user-defined networks members reach each other by container name and
``--network-alias`` through the hosts files pydock maintains (rewritten in place for every
member whenever one joins or leaves). That needs no resident resolver process, which pydock,
daemonless, would have to keep alive beside the containers and clean up after a ``kill -9``;
the price is that a name resolves only to members present when the file was written, which
is exactly the members that exist. The default ``bridge`` network has no names, as in Docker.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import secrets
import socket
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from pydock.clock import now_rfc3339
from pydock.errors import PydockError
from pydock.network import driver as drivers
from pydock.network import rootlessnet
from pydock.network.errors import (
    NetworkConfigError,
    NetworkConflictError,
    NetworkError,
    NetworkUnknownError,
)
from pydock.network.etcfiles import HostEntry
from pydock.network.ports import PortRequest, expose_requests, parse_publish
from pydock.paths import is_rootless
from pydock.store import Store, is_owner_alive
from pydock.store.networks import (
    AddressesExhaustedError,
    EndpointRecord,
    NetworkRecord,
    PortBinding,
)

DEFAULT_BRIDGE = "bridge"
DEFAULT_INTERFACE = "pydock0"
DEFAULT_SUBNET = "172.17.0.0/16"
PREDEFINED = ("bridge", "host", "none")
LOCK_NAME = "network.lock"


def _pool() -> Iterator[ipaddress.IPv4Network]:
    """Subnets for new networks, in Docker's order: 172.18-31.0.0/16, then 192.168.x.0/20."""
    for second in range(18, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    for third in range(0, 256, 16):
        yield ipaddress.IPv4Network(f"192.168.{third}.0/20")


@dataclass(frozen=True)
class Membership:
    """A network a container is to be on, with its aliases."""

    network: NetworkRecord
    aliases: tuple[str, ...]


class Networks:
    """The networks of one root."""

    def __init__(self, store: Store, root: Path) -> None:
        self.store = store
        self.root = Path(root)
        self._lock_fd: int | None = None
        self._depth = 0

    # -- locking ----------------------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the root's network lock for the body (re-entrant within this object).

        A start holds it from choosing addresses until the container is recorded running, so
        a concurrent start never mistakes a container that is starting for a dead one.
        """
        if self._depth == 0:
            fd = os.open(self.root / LOCK_NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
            except BaseException:
                os.close(fd)
                raise
            self._lock_fd = fd
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0 and self._lock_fd is not None:
                os.close(self._lock_fd)
                self._lock_fd = None

    # -- rows -------------------------------------------------------------------------------

    def ensure_predefined(self) -> None:
        """Record ``bridge``, ``host`` and ``none`` if they are not yet."""
        for name in PREDEFINED:
            if self.store.networks.by_name(name) is not None:
                continue
            record = NetworkRecord(
                id=secrets.token_hex(32), name=name, driver=name, created=now_rfc3339()
            )
            if name == DEFAULT_BRIDGE:
                subnet = ipaddress.IPv4Network(DEFAULT_SUBNET)
                record = NetworkRecord(
                    id=record.id, name=name, driver="bridge", created=record.created,
                    subnet=str(subnet), gateway=str(subnet.network_address + 1),
                    interface=DEFAULT_INTERFACE,
                )  # fmt: skip
            self.store.networks.add(record)

    def lookup(self, name: str, *, doing: str) -> NetworkRecord:
        """The network with this name, id or unique id prefix."""
        self.ensure_predefined()
        found = self.store.networks.by_name(name)
        if found is None and len(name) >= 1:
            matches = self.store.networks.by_prefix(name)
            if len(matches) > 1:
                raise NetworkUnknownError(f"{doing} {name}: ambiguous id prefix")
            found = matches[0] if matches else None
        if found is None:
            raise NetworkUnknownError(f"{doing}: network {name} not found")
        return found

    def list_networks(self) -> list[NetworkRecord]:
        self.ensure_predefined()
        return self.store.networks.list_networks()

    def create(
        self, name: str, *, driver: str = "bridge", subnet: str | None = None,
        gateway: str | None = None, internal: bool = False,
    ) -> NetworkRecord:  # fmt: skip
        """``network create``: record a network and make it exist."""
        doing = f"creating network {name}"
        self.ensure_predefined()
        kind = drivers.get_driver(driver)
        if not kind.user_networks:
            raise NetworkConfigError(f'{doing}: only one instance of "{driver}" network is allowed')
        with self.locked():
            if self.store.networks.by_name(name) is not None:
                raise NetworkConflictError(f"{doing}: network with name {name} already exists")
            chosen = self._subnet(subnet, doing, kind.routed_subnets())
            gateway_address = gateway or str(chosen.network_address + 1)
            if ipaddress.ip_address(gateway_address) not in chosen:
                raise NetworkConfigError(f"{doing}: gateway {gateway} is outside {chosen}")
            network_id = secrets.token_hex(32)
            record = NetworkRecord(
                id=network_id, name=name, driver=driver, created=now_rfc3339(),
                subnet=str(chosen), gateway=gateway_address,
                interface="pydock" + network_id[:9], internal=internal,
            )  # fmt: skip
            if not self.store.networks.add(record):
                raise NetworkConflictError(f"{doing}: network with name {name} already exists")
            try:
                kind.create_network(record)
            except BaseException:
                with contextlib.suppress(NetworkError):
                    kind.delete_network(record)
                self.store.networks.remove(record.id)
                raise
        return record

    def _subnet(
        self, subnet: str | None, doing: str, routed: Sequence[str] = ()
    ) -> ipaddress.IPv4Network:
        taken = [ipaddress.ip_network(s) for s in self.store.networks.subnets()]
        if subnet is not None:
            try:
                wanted = ipaddress.IPv4Network(subnet)
            except ValueError as exc:
                raise NetworkConfigError(f"{doing}: invalid subnet {subnet!r}: {exc}") from exc
            if wanted.num_addresses < 4:
                raise NetworkConfigError(f"{doing}: subnet {subnet} is too small")
            if any(wanted.overlaps(other) for other in taken):
                raise NetworkConflictError(
                    f"{doing}: invalid pool request: Pool overlaps with other one on this"
                    " address space"
                )
            return wanted
        taken += [ipaddress.ip_network(s, strict=False) for s in routed]
        for candidate in _pool():
            if not any(candidate.overlaps(other) for other in taken if other.version == 4):
                return candidate
        raise NetworkError(f"{doing}: all predefined address pools have been fully subnetted")

    def remove(self, record: NetworkRecord) -> None:
        """``network rm``: delete a network without members."""
        doing = f"removing network {record.name}"
        if record.name in PREDEFINED:
            raise NetworkConflictError(
                f"{doing}: {record.name} is a pre-defined network and cannot be removed"
            )
        with self.locked():
            if self.store.networks.endpoints(network_id=record.id) or self.users(record):
                raise NetworkConflictError(
                    f"{doing}: error while removing network: network {record.name} id"
                    f" {record.id} has active endpoints"
                )
            drivers.get_driver(record.driver).delete_network(record)
            self.store.networks.remove(record.id)

    def users(self, record: NetworkRecord) -> list[str]:
        """Names of the containers configured to use the network (running or not)."""
        from pydock.containers.config import ContainerConfig

        found = []
        for container in self.store.containers.list_containers():
            config = ContainerConfig.from_json(container.config)
            wanted = {config.network, *(m.partition(":")[0] for m in config.more_networks)}
            if record.name in wanted or record.id in wanted:
                found.append(container.name)
        return found

    def prune(self) -> list[str]:
        """``network prune``: remove every user-defined network no container uses; names."""
        self.forget_stale()
        removed = []
        for record in self.list_networks():
            if record.name in PREDEFINED or self.users(record):
                continue
            try:
                self.remove(record)
            except PydockError:
                continue  # joined by a container meanwhile
            removed.append(record.name)
        return removed

    def members(self, record: NetworkRecord) -> dict[str, tuple[str, EndpointRecord]]:
        """The network's endpoints by container id, with the container's name (inspect)."""
        names = {r.id: r.name for r in self.store.containers.list_containers()}
        return {
            e.container_id: (names.get(e.container_id, ""), e)
            for e in self.store.networks.endpoints(network_id=record.id)
        }

    # -- containers -------------------------------------------------------------------------

    def memberships(
        self, network: str, aliases: Sequence[str], more: Sequence[str], *, doing: str
    ) -> list[Membership]:
        """The networks a container with this configuration joins, checked to exist."""
        if network in ("none", "host"):
            return []
        found = [Membership(self.lookup(network, doing=doing), tuple(aliases))]
        for item in more:
            name, _, alias_text = item.partition(":")
            extra = tuple(a for a in alias_text.split(",") if a)
            found.append(Membership(self.lookup(name, doing=doing), extra))
        return found

    def attach(
        self,
        container_id: str,
        name: str,
        memberships: Sequence[Membership],
        publish: Sequence[str],
        exposed: Sequence[str],
        *,
        publish_all: bool,
        first_index: int = 0,
    ) -> list[EndpointRecord]:
        """Choose addresses and host ports before the container starts (its rows).

        A host port that is taken fails here, before anything runs.
        """
        doing = f"starting container {name}"
        if memberships and is_rootless():
            try:
                rootlessnet.check()
            except NetworkError as exc:
                raise NetworkConfigError(f"{doing}: {exc}") from exc
        self.forget_stale()
        requests = [parse_publish(text) for text in publish]
        if publish_all:
            requests += expose_requests(exposed)
        if requests and not memberships:
            requests = []  # as Docker: -p with --network host or none publishes nothing
        endpoints: list[EndpointRecord] = []
        try:
            for index, member in enumerate(memberships):
                kind = drivers.get_driver(member.network.driver)
                host_if = "veth" + secrets.token_hex(5)[:9]
                try:
                    endpoints.append(
                        self.store.networks.join(
                            member.network, container_id,
                            aliases=member.aliases if member.network.name != DEFAULT_BRIDGE
                            else (), host_interface=host_if if kind.has_addresses else "",
                            interface=f"eth{first_index + index}",
                        )
                    )  # fmt: skip
                except AddressesExhaustedError as exc:
                    raise NetworkError(
                        f"{doing}: no available IPv4 addresses on network {member.network.name}"
                    ) from exc
            if requests:
                self._hold_ports(container_id, requests, doing)
        except BaseException:
            if first_index == 0:
                self.release(container_id)
            raise
        return endpoints

    def _hold_ports(self, container_id: str, requests: list[PortRequest], doing: str) -> None:
        bindings = []
        for request in requests:
            port = request.host_port or _free_port(request, doing)
            if request.host_port:
                _check_free(request, doing)
            bindings.append(
                PortBinding(
                    container_id, request.protocol, request.container_port, request.host_ip, port
                )
            )
        held = self.store.networks.hold_ports(bindings)
        if held is not None:
            raise NetworkConflictError(
                f"{doing}: Bind for {held.host_ip}:{held.host_port} failed: port is already"
                " allocated"
            )

    def connect(self, container_id: str, name: str, endpoints: Sequence[EndpointRecord],
                pid: int) -> None:  # fmt: skip
        """After the runtime made the container's namespace: plumb it and forward its ports."""
        doing = f"starting container {name}"
        with self.locked():
            for endpoint in endpoints:
                network = self._network_of(endpoint, doing)
                drivers.get_driver(network.driver).join(network, endpoint, pid)
            ports = self.store.networks.ports(container_id)
            if ports and endpoints:
                first = endpoints[0]
                network = self._network_of(first, doing)
                drivers.get_driver(network.driver).publish(network, first, ports, pid)

    def _network_of(self, endpoint: EndpointRecord, doing: str) -> NetworkRecord:
        network = self.store.networks.get(endpoint.network_id)
        if network is None:
            raise NetworkUnknownError(f"{doing}: network {endpoint.network_id[:12]} is gone")
        return network

    def release(self, container_id: str) -> list[str]:
        """Take the container off every network and free its ports (idempotent).

        Returns the ids of the containers that shared a user-defined network with it (their
        hosts files need rewriting).
        """
        endpoints = self.store.networks.endpoints(container_id=container_id)
        ports = self.store.networks.ports(container_id)
        if not endpoints and not ports:
            return []
        peers: set[str] = set()
        kinds: set[str] = set()
        with self.locked():
            for endpoint in endpoints:
                network = self.store.networks.get(endpoint.network_id)
                if network is not None:
                    kind = drivers.get_driver(network.driver)
                    kinds.add(network.driver)
                    if ports:  # else there is nothing to unpublish (recovery finds strays)
                        with contextlib.suppress(NetworkError):
                            kind.unpublish(network, container_id)
                    kind.leave(network, endpoint)
                    if network.name != DEFAULT_BRIDGE:
                        peers.update(
                            e.container_id
                            for e in self.store.networks.endpoints(network_id=network.id)
                        )
                self.store.networks.leave(endpoint.network_id, container_id)
            self.store.networks.release_ports(container_id)
            self._quiesce(kinds)
        peers.discard(container_id)
        return sorted(peers)

    def _quiesce(self, kinds: set[str]) -> None:
        """Tell each of ``kinds`` that no container is on its networks any more, if so."""
        busy = {
            network.driver
            for endpoint in self.store.networks.endpoints()
            if (network := self.store.networks.get(endpoint.network_id)) is not None
        }
        for kind in sorted(kinds - busy):
            with contextlib.suppress(NetworkError):
                drivers.get_driver(kind).quiesce()

    def peers_of(self, container_id: str) -> list[HostEntry]:
        """Names of the members of the container's user-defined networks, for its hosts file."""
        entries = []
        names = {r.id: r.name for r in self.store.containers.list_containers()}
        for mine in self.store.networks.endpoints(container_id=container_id):
            network = self.store.networks.get(mine.network_id)
            if network is None or network.name == DEFAULT_BRIDGE:
                continue
            for other in self.store.networks.endpoints(network_id=network.id):
                if other.container_id == container_id or not other.address:
                    continue
                name = names.get(other.container_id)
                if name is None:
                    continue
                words = (name, other.container_id[:12], *other.aliases)
                entries.append(HostEntry(other.address, tuple(dict.fromkeys(words))))
        return entries

    def forget_stale(self) -> list[str]:
        """Release the rows and rules of containers that no longer run (after a kill -9).

        Returns the ids of the released containers.
        """
        from pydock.containers.state import ContainerState

        with self.locked():
            records = self.store.containers.list_containers()
            running = {
                r.id for r in records
                if r.state == ContainerState.RUNNING and is_owner_alive(r.monitor)
            }  # fmt: skip
            holders = {e.container_id for e in self.store.networks.endpoints()}
            holders |= {p.container_id for p in self.store.networks.ports()}
            released = []
            for container_id in sorted(holders - running):
                self.release(container_id)
                released.append(container_id)
            # Rules left by a release that was itself cut short (kill -9 in the middle).
            gone = {r.id for r in records} - running
            kinds = {n.driver for n in self.store.networks.list_networks()}
            for kind in sorted(kinds - {"host", "none"}):
                with contextlib.suppress(NetworkError):
                    drivers.get_driver(kind).forget_containers(gone)
            if released:
                self._quiesce(kinds - {"host", "none"})
            return released


def _check_free(request: PortRequest, doing: str) -> None:
    kind = socket.SOCK_STREAM if request.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((request.host_ip, request.host_port))
        except OSError as exc:
            raise NetworkConflictError(
                f"{doing}: Bind for {request.host_ip}:{request.host_port} failed:"
                f" {(exc.strerror or str(exc)).lower()}"
            ) from exc


def _free_port(request: PortRequest, doing: str) -> int:
    kind = socket.SOCK_STREAM if request.protocol == "tcp" else socket.SOCK_DGRAM
    with socket.socket(socket.AF_INET, kind) as sock:
        try:
            sock.bind((request.host_ip, 0))
        except OSError as exc:
            raise NetworkConflictError(
                f"{doing}: finding a free port on {request.host_ip}:"
                f" {(exc.strerror or str(exc)).lower()}"
            ) from exc
        return int(sock.getsockname()[1])


def network_view(
    network: NetworkRecord, members: dict[str, tuple[str, EndpointRecord]]
) -> dict[str, object]:
    """``network inspect`` of one network, shaped as Docker's."""
    config = [{"Subnet": network.subnet, "Gateway": network.gateway}] if network.subnet else []
    prefix = ipaddress.ip_network(network.subnet).prefixlen if network.subnet else 0
    return {
        "Name": network.name,
        "Id": network.id,
        "Created": network.created,
        "Scope": "local",
        "Driver": network.driver,
        "EnableIPv6": False,
        "IPAM": {"Driver": "default", "Options": {}, "Config": config},
        "Internal": network.internal,
        "Attachable": False,
        "Containers": {
            cid: {
                "Name": name,
                "EndpointID": "",
                "MacAddress": "",
                "IPv4Address": f"{endpoint.address}/{prefix}" if endpoint.address else "",
                "IPv6Address": "",
            }
            for cid, (name, endpoint) in members.items()
        },
        "Options": json.loads(network.options)
        | ({"com.docker.network.bridge.name": network.interface} if network.interface else {}),
        "Labels": {},
    }
