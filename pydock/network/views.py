"""How a container's networks and ports are shown: ``ps`` PORTS, ``inspect``, ``port``.

Light on purpose (store rows and JSON only): ``ps`` and ``inspect`` import it.
"""

from __future__ import annotations

import ipaddress

from pydock.containers.config import ContainerConfig
from pydock.network.ports import ps_text
from pydock.store import ContainerRecord, Store
from pydock.store.networks import PortBinding


def _published(config: ContainerConfig) -> list[str]:
    return [text.rsplit(":", 1)[1] for text in config.publish]


def ports_text(store: Store, record: ContainerRecord) -> str:
    """The PORTS column of ``ps``: ``127.0.0.1:8080->80/tcp``, or the exposed ``80/tcp``."""
    config = ContainerConfig.from_json(record.config)
    bindings = [
        (b.host_ip, b.host_port, b.protocol, b.container_port)
        for b in store.networks.ports(record.id)
    ]
    exposed = dict.fromkeys([*config.exposed, *_published(config)])
    return ps_text(bindings, exposed)


def port_lines(bindings: list[PortBinding], wanted: str | None = None) -> list[str]:
    """``port CONTAINER [PORT[/PROTO]]``: ``80/tcp -> 127.0.0.1:8080`` (or just the address)."""
    lines = []
    for b in bindings:
        key = f"{b.container_port}/{b.protocol}"
        if wanted is None:
            lines.append(f"{key} -> {b.host_ip}:{b.host_port}")
        elif wanted in (key, str(b.container_port)) and ("/" in wanted or b.protocol == "tcp"):
            lines.append(f"{b.host_ip}:{b.host_port}")
    return lines


def network_view(
    store: Store, record: ContainerRecord
) -> tuple[dict[str, object], dict[str, object]]:
    """``NetworkSettings`` and ``HostConfig.PortBindings`` of ``inspect``, as Docker has them."""
    config = ContainerConfig.from_json(record.config)
    ports: dict[str, list[dict[str, str]] | None] = {}
    for item in dict.fromkeys([*config.exposed, *_published(config)]):
        ports[item] = None
    for b in store.networks.ports(record.id):
        entry = {"HostIp": b.host_ip, "HostPort": str(b.host_port)}
        ports.setdefault(f"{b.container_port}/{b.protocol}", None)
        ports[f"{b.container_port}/{b.protocol}"] = [
            *(ports[f"{b.container_port}/{b.protocol}"] or []),
            entry,
        ]
    bindings: dict[str, object] = {}
    for text in config.publish:
        host_ip, host_port, port = text.split(":")
        bindings.setdefault(port, [])
        listed = bindings[port]
        assert isinstance(listed, list)
        listed.append({"HostIp": "" if host_ip == "0.0.0.0" else host_ip, "HostPort": host_port})
    networks: dict[str, object] = {}
    first_address, first_gateway, first_prefix = "", "", 0
    for endpoint in store.networks.endpoints(container_id=record.id):
        network = store.networks.get(endpoint.network_id)
        if network is None:
            continue
        prefix = ipaddress.ip_network(network.subnet).prefixlen if network.subnet else 0
        networks[network.name] = {
            "Aliases": list(endpoint.aliases) or None,
            "NetworkID": network.id,
            "Gateway": network.gateway,
            "IPAddress": endpoint.address,
            "IPPrefixLen": prefix,
        }
        if not first_address:
            first_address, first_gateway, first_prefix = endpoint.address, network.gateway, prefix
    if not networks:
        names = [config.network, *(m.partition(":")[0] for m in config.more_networks)]
        networks = {
            name: {"Aliases": None, "Gateway": "", "IPAddress": "", "IPPrefixLen": 0}
            for name in names
        }
    settings: dict[str, object] = {
        "Ports": ports,
        "IPAddress": first_address,
        "IPPrefixLen": first_prefix,
        "Gateway": first_gateway,
        "Networks": networks,
    }
    return settings, bindings
