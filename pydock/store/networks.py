"""Network rows (``networks``), their members (``endpoints``, with IPAM) and held host ports.

An address is chosen and recorded in one write transaction (``BEGIN IMMEDIATE``), and the
unique index on (network, address) backs that up, so two ``run``s at the same moment never get
the same address; the rows outlive restarts, and a member's row goes when it leaves.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping
from dataclasses import dataclass

from sqlite_utils import Database

from pydock.store.db import transaction

Row = Mapping[str, object]


@dataclass(frozen=True)
class NetworkRecord:
    """One network as the store keeps it."""

    id: str
    name: str
    driver: str
    created: str
    subnet: str = ""
    gateway: str = ""
    interface: str = ""
    internal: bool = False
    options: str = "{}"

    @classmethod
    def from_row(cls, row: Row) -> NetworkRecord:
        return cls(
            id=str(row["id"]),
            name=str(row["name"]),
            driver=str(row["driver"]),
            created=str(row["created"]),
            subnet=str(row.get("subnet") or ""),
            gateway=str(row.get("gateway") or ""),
            interface=str(row.get("interface") or ""),
            internal=bool(row.get("internal")),
            options=str(row.get("options") or "{}"),
        )

    def to_row(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "driver": self.driver,
            "created": self.created,
            "subnet": self.subnet,
            "gateway": self.gateway,
            "interface": self.interface,
            "internal": int(self.internal),
            "options": self.options,
        }


@dataclass(frozen=True)
class EndpointRecord:
    """A container on a network: its address, names and interfaces."""

    network_id: str
    container_id: str
    address: str = ""
    aliases: tuple[str, ...] = ()
    host_interface: str = ""
    interface: str = ""

    @classmethod
    def from_row(cls, row: Row) -> EndpointRecord:
        return cls(
            network_id=str(row["network_id"]),
            container_id=str(row["container_id"]),
            address=str(row.get("address") or ""),
            aliases=tuple(json.loads(str(row.get("aliases") or "[]"))),
            host_interface=str(row.get("host_interface") or ""),
            interface=str(row.get("interface") or ""),
        )


@dataclass(frozen=True)
class PortBinding:
    """A host port a container holds: ``host_ip:host_port -> container_port/protocol``."""

    container_id: str
    protocol: str
    container_port: int
    host_ip: str
    host_port: int

    @classmethod
    def from_row(cls, row: Row) -> PortBinding:
        return cls(
            container_id=str(row["container_id"]),
            protocol=str(row["protocol"]),
            container_port=int(str(row["container_port"])),
            host_ip=str(row["host_ip"]),
            host_port=int(str(row["host_port"])),
        )


class AddressesExhaustedError(Exception):
    """No free address is left in the network's subnet."""


class NetworkStore:
    """Reads and writes network, endpoint and port rows."""

    def __init__(self, db: Database) -> None:
        self.db = db

    # -- networks ---------------------------------------------------------------------------

    def add(self, record: NetworkRecord) -> bool:
        """Insert ``record``; ``False`` if its name is taken."""
        with transaction(self.db):
            if self.by_name(record.name) is not None:
                return False
            self.db.table("networks").insert(record.to_row())
        return True

    def get(self, network_id: str) -> NetworkRecord | None:
        for row in self.db.table("networks").rows_where("id = ?", [network_id]):
            return NetworkRecord.from_row(row)
        return None

    def by_name(self, name: str) -> NetworkRecord | None:
        for row in self.db.table("networks").rows_where("name = ?", [name]):
            return NetworkRecord.from_row(row)
        return None

    def by_prefix(self, prefix: str) -> list[NetworkRecord]:
        rows = self.db.table("networks").rows_where(
            "substr(id, 1, ?) = ?", [len(prefix), prefix], order_by="id"
        )
        return [NetworkRecord.from_row(row) for row in rows]

    def list_networks(self) -> list[NetworkRecord]:
        rows = self.db.table("networks").rows_where(order_by="created, name")
        return [NetworkRecord.from_row(row) for row in rows]

    def subnets(self) -> list[str]:
        return [n.subnet for n in self.list_networks() if n.subnet]

    def remove(self, network_id: str) -> bool:
        """Delete the network's row unless it has members; whether it was deleted."""
        with transaction(self.db):
            if self.endpoints(network_id=network_id):
                return False
            self.db.execute("DELETE FROM networks WHERE id = ?", [network_id])
        return True

    # -- endpoints (IPAM) -------------------------------------------------------------------

    def join(
        self,
        network: NetworkRecord,
        container_id: str,
        *,
        aliases: tuple[str, ...] = (),
        host_interface: str = "",
        interface: str = "",
    ) -> EndpointRecord:
        """Record the container on ``network`` with the lowest free address of its subnet.

        The gateway, network and broadcast addresses are never handed out. A container that
        is a member already keeps its row.
        """
        with transaction(self.db):
            for row in self.db.table("endpoints").rows_where(
                "network_id = ? AND container_id = ?", [network.id, container_id]
            ):
                return EndpointRecord.from_row(row)
            address = ""
            if network.subnet:
                address = self._free_address(network)
            record = EndpointRecord(
                network.id, container_id, address, aliases, host_interface, interface
            )
            self.db.table("endpoints").insert(
                {
                    "network_id": network.id,
                    "container_id": container_id,
                    "address": address or None,
                    "aliases": json.dumps(list(aliases)),
                    "host_interface": host_interface,
                    "interface": interface,
                }
            )
            return record

    def _free_address(self, network: NetworkRecord) -> str:
        subnet = ipaddress.ip_network(network.subnet)
        taken = {
            str(row[0])
            for row in self.db.execute(
                "SELECT address FROM endpoints WHERE network_id = ? AND address IS NOT NULL",
                [network.id],
            ).fetchall()
        }
        taken.add(network.gateway)
        for host in subnet.hosts():
            if str(host) not in taken:
                return str(host)
        raise AddressesExhaustedError(network.subnet)

    def endpoints(
        self, *, network_id: str | None = None, container_id: str | None = None
    ) -> list[EndpointRecord]:
        where, args = [], []
        if network_id is not None:
            where.append("network_id = ?")
            args.append(network_id)
        if container_id is not None:
            where.append("container_id = ?")
            args.append(container_id)
        rows = self.db.table("endpoints").rows_where(
            " AND ".join(where) or None, args, order_by="rowid"
        )
        return [EndpointRecord.from_row(row) for row in rows]

    def leave(self, network_id: str, container_id: str) -> None:
        self.db.execute(
            "DELETE FROM endpoints WHERE network_id = ? AND container_id = ?",
            [network_id, container_id],
        )

    # -- host ports -------------------------------------------------------------------------

    def hold_ports(self, bindings: list[PortBinding]) -> PortBinding | None:
        """Record every binding, or none: the first one another container holds, else None."""
        with transaction(self.db):
            for binding in bindings:
                for row in self.db.table("port_bindings").rows_where(
                    "host_port = ? AND protocol = ? AND (host_ip = ? OR host_ip = '0.0.0.0'"
                    " OR ? = '0.0.0.0')",
                    [binding.host_port, binding.protocol, binding.host_ip, binding.host_ip],
                ):
                    if str(row["container_id"]) != binding.container_id:
                        return PortBinding.from_row(row)
            for binding in bindings:
                self.db.table("port_bindings").insert(
                    {
                        "container_id": binding.container_id,
                        "protocol": binding.protocol,
                        "container_port": binding.container_port,
                        "host_ip": binding.host_ip,
                        "host_port": binding.host_port,
                    },
                    replace=True,
                )
        return None

    def ports(self, container_id: str | None = None) -> list[PortBinding]:
        rows = self.db.table("port_bindings").rows_where(
            "container_id = ?" if container_id is not None else None,
            [container_id] if container_id is not None else [],
            order_by="container_port, protocol, host_ip",
        )
        return [PortBinding.from_row(row) for row in rows]

    def release_ports(self, container_id: str) -> None:
        self.db.execute("DELETE FROM port_bindings WHERE container_id = ?", [container_id])

    def has_rows(self) -> bool:
        """Whether any container holds an address or a port (work for recovery)."""
        for table in ("endpoints", "port_bindings"):
            if self.db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchone() is not None:
                return True
        return False
