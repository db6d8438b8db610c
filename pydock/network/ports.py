"""``-p``/``--publish`` and ``-P``: what the command line asks for, and Docker's ways to show it."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass

from pydock.network.errors import NetworkConfigError

_PROTOCOLS = ("tcp", "udp")
_PORT = re.compile(r"\d{1,5}")


@dataclass(frozen=True)
class PortRequest:
    """One ``-p``: container port and protocol, host address and port (0: any free one)."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = "0.0.0.0"
    host_port: int = 0

    def text(self) -> str:
        """The canonical ``IP:HOST:CONTAINER/PROTO`` form kept in the container's config."""
        host = str(self.host_port) if self.host_port else ""
        return f"{self.host_ip}:{host}:{self.container_port}/{self.protocol}"


def _port(text: str, what: str, spec: str) -> int:
    if not _PORT.fullmatch(text) or not 0 < int(text) < 65536:
        raise NetworkConfigError(f"parsing -p {spec!r}: invalid {what} port {text!r}")
    return int(text)


def parse_publish(spec: str) -> PortRequest:
    """``-p [IP:][HOST:]CONTAINER[/tcp|udp]`` (``IP::CONTAINER``: any free host port)."""
    body, _, protocol = spec.partition("/")
    protocol = protocol or "tcp"
    if protocol not in _PROTOCOLS:
        raise NetworkConfigError(f"parsing -p {spec!r}: protocol {protocol!r} is not tcp or udp")
    if body.startswith("["):
        raise NetworkConfigError(f"parsing -p {spec!r}: IPv6 host addresses are not supported")
    parts = body.split(":")
    if len(parts) > 3 or not parts[-1]:
        raise NetworkConfigError(f"parsing -p {spec!r}: expected [IP:][HOST:]CONTAINER[/PROTO]")
    container = _port(parts[-1], "container", spec)
    host_ip, host = "0.0.0.0", ""
    if len(parts) == 3:
        host_ip, host = parts[0] or "0.0.0.0", parts[1]
    elif len(parts) == 2:
        host = parts[0]
    try:
        if not isinstance(ipaddress.ip_address(host_ip), ipaddress.IPv4Address):
            raise ValueError(host_ip)
    except ValueError as exc:
        raise NetworkConfigError(
            f"parsing -p {spec!r}: {host_ip!r} is not an IPv4 address"
        ) from exc
    host_port = _port(host, "host", spec) if host else 0
    return PortRequest(container, protocol, host_ip, host_port)


def exposed_ports(config: dict[str, object]) -> list[str]:
    """The image's ``ExposedPorts`` keys (``80/tcp``), sorted."""
    exposed = config.get("ExposedPorts")
    return sorted(str(key) for key in exposed) if isinstance(exposed, dict) else []


def expose_requests(exposed: Iterable[str]) -> list[PortRequest]:
    """``-P``: every exposed port on a free host port of every address."""
    found = []
    for item in exposed:
        number, _, protocol = item.partition("/")
        if number.isdigit() and (protocol or "tcp") in _PROTOCOLS:
            found.append(PortRequest(int(number), protocol or "tcp"))
    return found


def ps_text(bindings: Iterable[tuple[str, int, str, int]], exposed: Iterable[str] = ()) -> str:
    """The PORTS column: ``0.0.0.0:8080->80/tcp, 443/tcp`` (host ip, host port, proto, port)."""
    shown = [f"{ip}:{hp}->{cp}/{proto}" for ip, hp, proto, cp in bindings]
    bound = {f"{cp}/{proto}" for _, _, proto, cp in bindings}
    shown += [item for item in exposed if item not in bound]
    return ", ".join(shown)
