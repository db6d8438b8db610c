"""A container's network around its runtime start: its networks, ports and /etc files.

The files live in the container's directory and are bound over ``/etc/hostname``,
``/etc/hosts`` and ``/etc/resolv.conf`` in every network mode, as Docker does.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import runtime
from pydock.containers.config import ContainerConfig
from pydock.errors import PydockError
from pydock.network import etcfiles
from pydock.network.driver import get_driver
from pydock.network.errors import NetworkConflictError
from pydock.store import ContainerRecord
from pydock.store.networks import EndpointRecord

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager
    from pydock.network.service import Networks


def hostname_of(record: ContainerRecord, config: ContainerConfig) -> str:
    """``--hostname``, else the first 12 characters of the id (as the runtime sets it); the
    host's own name with ``--uts host``."""
    if config.uts_mode == "host":
        return os.uname().nodename
    return config.hostname or record.id[:12]


def extra_hosts(config: ContainerConfig) -> list[etcfiles.HostEntry]:
    """The ``--add-host`` entries (kept as NAME:IP, the address may hold colons)."""
    entries = []
    for item in config.add_hosts:
        name, _, address = item.partition(":")
        entries.append(etcfiles.HostEntry(address, (name,)))
    return entries


def write_etc_files(
    record: ContainerRecord,
    config: ContainerConfig,
    directory: Path,
    *,
    addresses: Sequence[str] = (),
    peers: Sequence[etcfiles.HostEntry] = (),
) -> dict[str, Path]:
    """(Re)write the container's three files; their paths by name."""
    return etcfiles.write_all(
        directory,
        hostname=hostname_of(record, config),
        addresses=addresses,
        extra=extra_hosts(config),
        peers=peers,
        dns=config.dns,
        dns_search=config.dns_search,
        dns_options=config.dns_options,
        host_network=config.network == "host",
    )


def etc_mounts(
    record: ContainerRecord,
    config: ContainerConfig,
    directory: Path,
    *,
    addresses: Sequence[str] = (),
    peers: Sequence[etcfiles.HostEntry] = (),
) -> tuple[runtime.BindMount, ...]:
    """Write the files and return their bind mounts for the runtime's spec."""
    paths = write_etc_files(record, config, directory, addresses=addresses, peers=peers)
    return tuple(runtime.BindMount(paths[name], f"/etc/{name}") for name in etcfiles.NAMES)


def uses_network(config: ContainerConfig) -> bool:
    """Whether the container joins pydock networks (else: ``none`` or ``host``)."""
    return config.network not in ("none", "host")


def service(manager: ContainerManager) -> Networks:
    """The networks of the manager's root."""
    from pydock.network.service import Networks

    return Networks(manager.store, manager.root)


def check_networks(manager: ContainerManager, config: ContainerConfig) -> None:
    """``create``/``run``: the networks named must exist (Docker: "network X not found")."""
    if uses_network(config):
        service(manager).memberships(
            config.network, config.network_aliases, config.more_networks,
            doing="creating a container",
        )  # fmt: skip


class Plumbing:
    """A container's networks around one start: addresses and ports chosen before the runtime
    creates it, its namespace plumbed after, everything undone if the start fails.

    Holds the root's network lock from :meth:`attach` until :meth:`done` or :meth:`abandon`.
    """

    def __init__(self, manager: ContainerManager, record: ContainerRecord,
                 config: ContainerConfig) -> None:  # fmt: skip
        self.manager = manager
        self.record = record
        self.config = config
        self.endpoints: list[EndpointRecord] = []
        self._networks: Networks | None = None
        self._stack = contextlib.ExitStack()

    def attach(self) -> None:
        if not uses_network(self.config):
            return
        networks = self._networks = service(self.manager)
        self._stack.enter_context(networks.locked())
        doing = f"starting container {self.record.name}"
        members = networks.memberships(
            self.config.network, self.config.network_aliases, self.config.more_networks,
            doing=doing,
        )  # fmt: skip
        self.endpoints = networks.attach(
            self.record.id, self.record.name, members, self.config.publish,
            self.config.exposed, publish_all=self.config.publish_all,
        )  # fmt: skip

    def mounts(self, directory: Path) -> tuple[runtime.BindMount, ...]:
        peers = self._networks.peers_of(self.record.id) if self._networks else []
        addresses = [e.address for e in self.endpoints if e.address]
        return etc_mounts(self.record, self.config, directory, addresses=addresses, peers=peers)

    def connect(self, pid: int) -> None:
        if self._networks is not None:
            self._networks.connect(self.record.id, self.record.name, self.endpoints, pid)

    def abandon(self) -> None:
        try:
            if self._networks is not None:
                with contextlib.suppress(PydockError):
                    self._networks.release(self.record.id)
        finally:
            self._stack.close()

    def done(self) -> None:
        try:
            if self._networks is not None and self.endpoints:
                peers = {
                    e.container_id
                    for mine in self.endpoints
                    for e in self._networks.store.networks.endpoints(network_id=mine.network_id)
                }
                rewrite_hosts(self.manager, self._networks, peers - {self.record.id})
        finally:
            self._stack.close()


def rewrite_hosts(manager: ContainerManager, networks: Networks, container_ids: set[str]) -> None:
    """Write the hosts file of each of ``container_ids`` again (members came or went).

    Under the network lock, so that two members joining at once cannot leave a file written
    from the older of their two views.
    """
    with networks.locked():
        _rewrite_hosts(manager, networks, container_ids)


def _rewrite_hosts(manager: ContainerManager, networks: Networks, container_ids: set[str]) -> None:
    for container_id in sorted(container_ids):
        record = manager.store.containers.get(container_id)
        if record is None:
            continue
        directory = manager.files(container_id).directory
        if not (directory / etcfiles.HOSTS).exists():
            continue
        config = manager.config_of(record)
        addresses = [
            e.address for e in networks.store.networks.endpoints(container_id=container_id)
            if e.address
        ]  # fmt: skip
        with contextlib.suppress(OSError):
            etcfiles.write_file(
                directory / etcfiles.HOSTS,
                etcfiles.hosts_text(
                    hostname_of(record, config), addresses, extra=extra_hosts(config),
                    peers=networks.peers_of(container_id),
                ),
            )  # fmt: skip


def release(manager: ContainerManager, container_id: str) -> None:
    """The container stopped or is going: free its addresses, ports and rules (idempotent)."""
    if not manager.store.networks.endpoints(container_id=container_id) and not (
        manager.store.networks.ports(container_id)
    ):
        return
    networks = service(manager)
    with contextlib.suppress(PydockError):
        peers = networks.release(container_id)
        rewrite_hosts(manager, networks, set(peers))


def connect(
    manager: ContainerManager, record: ContainerRecord, network_name: str, aliases: Sequence[str]
) -> None:
    """``network connect``: the container is on the network from now on (and at each start)."""
    from pydock.containers.lifecycle import refresh
    from pydock.containers.state import ContainerState

    doing = f"connecting container {record.name} to network {network_name}"
    networks = service(manager)
    network = networks.lookup(network_name, doing=doing)
    config = manager.config_of(record)
    current = {config.network, *(m.partition(":")[0] for m in config.more_networks)}
    if config.network == "host" or (
        config.network == "none" and record.state == ContainerState.RUNNING
    ):
        raise NetworkConflictError(
            f"{doing}: container cannot be disconnected from host network or connected to"
            " host network" if config.network == "host" else
            f"{doing}: container is on network none",
        )  # fmt: skip
    if network.name in current or network.id in current:
        raise NetworkConflictError(
            f"{doing}: endpoint with name {record.name} already exists in network {network.name}"
        )
    if config.network == "none":
        # Not running, on no network (made so, or disconnected from its last one, as docker
        # compose does before connecting with aliases): this network becomes its own.
        updated = replace(config, network=network.name, network_aliases=tuple(aliases))
    else:
        entry = network.name + (":" + ",".join(aliases) if aliases else "")
        updated = replace(config, more_networks=(*config.more_networks, entry))
    manager.store.containers.update(record.id, config=updated.to_json())
    live = refresh(manager, record, auto_remove=False)
    if live is None or live.state != ContainerState.RUNNING or live.pid is None:
        return
    with networks.locked():
        index = len(manager.store.networks.endpoints(container_id=record.id))
        from pydock.network.service import Membership

        members = [Membership(network, tuple(aliases))]
        try:
            joined = networks.attach(
                record.id, record.name, members, (), (), publish_all=False, first_index=index
            )
            networks.connect(record.id, record.name, joined, live.pid)
        except BaseException:
            for endpoint in manager.store.networks.endpoints(container_id=record.id):
                if endpoint.network_id == network.id:
                    manager.store.networks.leave(network.id, record.id)
            manager.store.containers.update(record.id, config=config.to_json())
            raise
    peers = {e.container_id for e in manager.store.networks.endpoints(network_id=network.id)}
    rewrite_hosts(manager, networks, peers)


def disconnect(manager: ContainerManager, record: ContainerRecord, network_name: str) -> None:
    """``network disconnect``: take the container off the network (now and at next starts)."""
    doing = f"disconnecting container {record.name} from network {network_name}"
    networks = service(manager)
    network = networks.lookup(network_name, doing=doing)
    config = manager.config_of(record)
    kept = tuple(
        m for m in config.more_networks if m.partition(":")[0] not in (network.name, network.id)
    )
    if config.network in (network.name, network.id):
        if not kept:
            updated = replace(config, network="none", network_aliases=())
        else:
            name, _, alias_text = kept[0].partition(":")
            aliases = tuple(a for a in alias_text.split(",") if a)
            updated = replace(config, network=name, network_aliases=aliases, more_networks=kept[1:])
    elif len(kept) != len(config.more_networks):
        updated = replace(config, more_networks=kept)
    else:
        raise NetworkConflictError(
            f"{doing}: container {record.id[:12]} is not connected to network {network.name}"
        )
    manager.store.containers.update(record.id, config=updated.to_json())
    peers = {e.container_id for e in manager.store.networks.endpoints(network_id=network.id)}
    with networks.locked():
        for endpoint in manager.store.networks.endpoints(container_id=record.id):
            if endpoint.network_id == network.id:
                kind = get_driver(network.driver)
                kind.unpublish(network, record.id)
                kind.leave(network, endpoint)
                manager.store.networks.leave(network.id, record.id)
    rewrite_hosts(manager, networks, peers)
