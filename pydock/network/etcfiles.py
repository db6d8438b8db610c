"""The ``/etc/hosts``, ``/etc/hostname`` and ``/etc/resolv.conf`` each container gets.

As Docker, pydock writes them per container (in the container's directory) and the runtime
binds them over the image's files, so a container sees its own name and addresses, ``--add-host``
entries and ``--dns`` servers whatever its network mode. A network that names its peers
(a user-defined network) rewrites the hosts file of each member when a member joins or leaves;
the bind mount shows the new content because the file is rewritten in place.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from pydock.network.errors import NetworkConfigError

HOSTS = "hosts"
HOSTNAME = "hostname"
RESOLV_CONF = "resolv.conf"
# The files in the order they are bound: /etc/hostname, /etc/hosts, /etc/resolv.conf.
NAMES = (HOSTNAME, HOSTS, RESOLV_CONF)

_DEFAULT_HOSTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)
# Docker's fallback when the host has no usable name server (moby libnetwork/resolvconf).
DEFAULT_DNS = ("8.8.8.8", "8.8.4.4")
HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
# systemd-resolved's stub (127.0.0.53) is useless in a namespace of its own; this is the real list.
RESOLVED_RESOLV_CONF = Path("/run/systemd/resolve/resolv.conf")


@dataclass(frozen=True)
class HostEntry:
    """One line of the hosts file: an address and its names."""

    address: str
    names: tuple[str, ...]

    def line(self) -> str:
        return f"{self.address}\t{' '.join(self.names)}"


def parse_add_host(text: str) -> HostEntry:
    """``--add-host NAME:IP`` (or Docker's newer ``NAME=IP``); IPv6 addresses may be bracketed."""
    if "=" in text:
        name, _, address = text.partition("=")
    else:
        name, _, address = text.partition(":")
    address = address.removeprefix("[").removesuffix("]")
    if not name or not address:
        raise NetworkConfigError(f"parsing --add-host {text!r}: expected NAME:IP")
    try:
        ipaddress.ip_address(address)
    except ValueError as exc:
        raise NetworkConfigError(
            f"parsing --add-host {text!r}: invalid IP address in add-host: {address!r}"
        ) from exc
    return HostEntry(address, (name,))


def check_dns(text: str) -> str:
    """``--dns IP``: an IPv4 or IPv6 address."""
    try:
        return str(ipaddress.ip_address(text))
    except ValueError as exc:
        raise NetworkConfigError(f"parsing --dns {text!r}: not an IP address") from exc


def check_word(text: str, flag: str) -> str:
    """A ``--dns-search`` domain or ``--dns-option``: one word, no spaces."""
    if not text or len(text.split()) != 1:
        raise NetworkConfigError(f"parsing {flag} {text!r}: expected one word")
    return text


def hosts_text(
    hostname: str,
    addresses: Sequence[str],
    *,
    extra: Sequence[HostEntry] = (),
    peers: Sequence[HostEntry] = (),
    host_network: bool = False,
    host_hosts: Path = HOST_HOSTS,
) -> str:
    """The container's hosts file.

    ``host_network``: the host's own file, as Docker copies it, with ``extra`` appended.
    Otherwise the localhost lines, ``extra`` (``--add-host``), the container's own name on
    each of its ``addresses``, then the ``peers`` of its user-defined networks.
    """
    if host_network:
        try:
            base = host_hosts.read_text(errors="replace")
        except OSError:
            base = ""
        lines = base.splitlines() or [HostEntry(a, (n,)).line() for a, n in _DEFAULT_HOSTS[:2]]
    else:
        lines = [HostEntry(a, (n,)).line() for a, n in _DEFAULT_HOSTS]
    lines += [entry.line() for entry in extra]
    if not host_network:
        lines += [f"{address}\t{hostname}" for address in addresses]
        lines += [entry.line() for entry in peers]
    return "\n".join(lines) + "\n"


def _host_resolv_conf() -> str:
    for path in (RESOLVED_RESOLV_CONF, HOST_RESOLV_CONF):
        try:
            return path.read_text(errors="replace")
        except OSError:
            continue
    return ""


def resolv_conf_text(
    dns: Sequence[str],
    *,
    search: Sequence[str] = (),
    options: Sequence[str] = (),
    host_network: bool = False,
    host_text: str | None = None,
) -> str:
    """The container's resolv.conf: the host's, with ``--dns`` servers in place of its own
    (and ``--dns-search``, ``--dns-option`` in place of its search and options lines).

    Outside the host's network namespace a loopback name server (127.0.0.53, ::1) answers
    nobody, so, as Docker, those lines go, and Google's servers stand in if none is left.
    """
    text = _host_resolv_conf() if host_text is None else host_text
    kept: list[str] = []
    servers: list[str] = []
    for line in text.splitlines():
        words = line.split()
        if words[:1] == ["nameserver"] and len(words) > 1:
            servers.append(words[1])
        elif (search and words[:1] in (["search"], ["domain"])) or (
            options and words[:1] == ["options"]
        ):
            continue
        else:
            kept.append(line)
    if search:
        kept.append("search " + " ".join(search))
    if options:
        kept.append("options " + " ".join(options))
    if dns:
        servers = list(dns)
    elif not host_network:
        servers = [s for s in servers if not _is_loopback(s)] or list(DEFAULT_DNS)
    lines = [line for line in kept if line.strip()] + [f"nameserver {s}" for s in servers]
    return "\n".join(lines) + "\n"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def write_file(path: Path, text: str) -> None:
    """Replace ``path``'s content in place (a bind mount of it keeps showing the file)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        os.fchmod(fd, 0o644)
        os.ftruncate(fd, 0)
        data = memoryview(text.encode())
        while data:
            data = data[os.write(fd, data) :]
    finally:
        os.close(fd)


def write_all(
    directory: Path,
    *,
    hostname: str,
    addresses: Sequence[str] = (),
    extra: Sequence[HostEntry] = (),
    peers: Sequence[HostEntry] = (),
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
    host_network: bool = False,
) -> dict[str, Path]:
    """Write the three files into ``directory``; their paths by name."""
    texts = {
        HOSTNAME: hostname + "\n",
        HOSTS: hosts_text(hostname, addresses, extra=extra, peers=peers, host_network=host_network),
        RESOLV_CONF: resolv_conf_text(
            dns, search=dns_search, options=dns_options, host_network=host_network
        ),
    }
    paths = {}
    for name in NAMES:
        path = directory / name
        write_file(path, texts[name])
        paths[name] = path
    return paths
