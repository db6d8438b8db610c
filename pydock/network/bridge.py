"""The ``bridge`` network driver: a Linux bridge, a veth pair per member, nftables NAT.

    host namespace                               container namespace
    pydock0 (bridge, gateway 172.17.0.1/16) ---- vethXXXX === eth0 172.17.0.2/16, default via .1
    table ip pydock: forward (isolation), nat prerouting/output (DNAT of published ports),
                     postrouting (masquerade of the subnet; of 127.0.0.0/8 towards the bridge)

Published ports are DNAT rules: ``prerouting`` for traffic from outside, ``output`` for
connections made on this host (127.0.0.1 included: the bridge gets ``route_localnet`` and
such connections are masqueraded, so the reply finds its way back). No proxy process runs,
and nothing outlives the rules and interfaces, which recovery removes by their comments.
Netlink goes through pyroute2 (loaded only here).

Rootless, "host namespace" above is the network namespace of pydock's pause process, pasta
carries the traffic out, and published ports are forwarded by a process of pydock's own
instead of DNAT rules (see ``rootlessnet``).
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import runtime.linux
from pydock.network import nft, rootlessnet
from pydock.network.driver import NetworkDriver
from pydock.network.errors import NetworkError
from pydock.store.networks import EndpointRecord, NetworkRecord, PortBinding

# pyroute2 has no type information; its objects stay inside this module.
IPRoute = Any
_EEXIST = 17
_ENODEV = 19
_NETLINK_ROUTE = 0


def _sysctl(path: str, value: str) -> None:
    with contextlib.suppress(OSError):
        Path("/proc/sys/net", path).write_text(value)


def _socket_in(path: str) -> int:
    """A NETLINK_ROUTE socket of the network namespace at ``path``: made by a thread of its
    own that enters the namespace (setns moves only the calling thread) and then ends.

    pyroute2's own way (``netns=``) forks the process; in the API service, a multi-threaded
    trio program, a signal that reaches such a child runs trio's handler there, which can
    wait forever on a lock another thread held at the fork, with the network lock held.
    """
    made: list[int] = []
    failed: list[BaseException] = []

    def enter_and_open() -> None:
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
            try:
                runtime.linux.setns(fd, runtime.linux.CLONE_NEWNET)
            finally:
                os.close(fd)
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, _NETLINK_ROUTE)
            made.append(sock.detach())
        except BaseException as exc:  # handed to the caller's thread
            failed.append(exc)

    thread = threading.Thread(target=enter_and_open, name="pydock-netns")
    thread.start()
    thread.join()
    if failed:
        raise failed[0]
    return made[0]


@contextlib.contextmanager
def _netlink(pid: int | None = None) -> Iterator[IPRoute]:
    from pyroute2 import IPRoute as Netlink  # type: ignore[import-untyped]

    pid = rootlessnet.holder() if pid is None else pid
    ip = Netlink() if pid is None else Netlink(fileno=_socket_in(rootlessnet.namespace_path(pid)))
    try:
        yield ip
    finally:
        ip.close()


def _index(ip: IPRoute, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return int(found[0]) if found else None


def _code(exc: BaseException) -> int | None:
    return getattr(exc, "code", None)


def _has_tap() -> bool:
    """Whether pasta's interface has its address in the pause process's namespace."""
    with _netlink() as ip:
        index = _index(ip, rootlessnet.TAP)
        return index is not None and bool(ip.get_addr(index=index, family=socket.AF_INET))


class BridgeDriver(NetworkDriver):
    """Networks on Linux bridges in the caller's network namespace."""

    name = "bridge"
    user_networks = True
    has_addresses = True
    supports_ports = True

    def create_network(self, network: NetworkRecord) -> None:
        doing = f"creating network {network.name}"
        subnet = ipaddress.ip_network(network.subnet)
        try:
            with _netlink() as ip:
                index = _index(ip, network.interface)
                if index is None:
                    try:
                        ip.link("add", ifname=network.interface, kind="bridge")
                    except Exception as exc:
                        if _code(exc) != _EEXIST:
                            raise
                    index = _index(ip, network.interface)
                    if index is None:
                        raise NetworkError(f"{doing}: bridge {network.interface} did not appear")
                present = {
                    str(a.get_attr("IFA_ADDRESS")) for a in ip.get_addr(index=index, family=2)
                }
                if network.gateway not in present:
                    try:
                        ip.addr(
                            "add",
                            index=index,
                            address=network.gateway,
                            prefixlen=subnet.prefixlen,
                        )
                    except Exception as exc:
                        if _code(exc) != _EEXIST:
                            raise
                ip.link("set", index=index, state="up")
        except NetworkError:
            raise
        except Exception as exc:
            raise NetworkError(f"{doing}: netlink: {exc}") from exc
        _sysctl("ipv4/ip_forward", "1")
        _sysctl(f"ipv4/conf/{network.interface}/route_localnet", "1")
        tag = nft.net_tag(network.id)
        current = nft.table()
        commands = nft.ensure_table(current)
        if not any(rule.get("comment") == tag for rule in current.rules):
            commands += self._network_rules(network, tag)
        if commands:
            nft.run(commands, doing=doing)

    @staticmethod
    def _network_rules(network: NetworkRecord, tag: str) -> list[nft.Json]:
        bridge = network.interface
        within = [nft.match_meta("iifname", bridge), nft.match_meta("oifname", bridge)]
        commands = [nft.rule("forward", [*within, {"accept": None}], tag, insert=True)]
        # Connections made on this host to 127.0.0.1 and sent to a member: masqueraded to the
        # bridge's address, or the member's reply would go to its own loopback.
        local: list[nft.Json] = [nft.match_payload("ip", "saddr", nft.prefix("127.0.0.0/8")),
                 nft.match_meta("oifname", bridge), {"masquerade": None}]  # fmt: skip
        commands.append(nft.rule("postrouting", local, tag))
        if network.internal:
            for key in ("iifname", "oifname"):
                commands.append(
                    nft.rule("forward", [nft.match_meta(key, bridge), {"drop": None}], tag)
                )
        else:
            outbound: list[nft.Json] = [
                nft.match_payload("ip", "saddr", nft.prefix(network.subnet)),
                nft.match_meta("oifname", bridge, "!="),
                {"masquerade": None},
            ]
            commands.append(nft.rule("postrouting", outbound, tag))
        return commands

    def delete_network(self, network: NetworkRecord) -> None:
        doing = f"removing network {network.name}"
        nft.delete_tagged([nft.net_tag(network.id)], doing=doing)
        if not any(tag.startswith(nft.NET_TAG) for tag in nft.tags_in_use()):
            # The last network went: so does pydock's table (a later join makes it again).
            nft.run([{"delete": {"table": {"family": nft.FAMILY, "name": nft.TABLE}}}],
                    doing=doing)  # fmt: skip
        try:
            with _netlink() as ip:
                index = _index(ip, network.interface)
                if index is not None:
                    ip.link("del", index=index)
        except Exception as exc:
            if _code(exc) != _ENODEV:
                raise NetworkError(f"{doing}: netlink: {exc}") from exc

    def join(self, network: NetworkRecord, endpoint: EndpointRecord, pid: int) -> None:
        doing = f"connecting container {endpoint.container_id[:12]} to network {network.name}"
        self.create_network(network)
        pause = rootlessnet.holder()
        if pause is not None:
            try:
                rootlessnet.ensure_pasta(pause, _has_tap)
            except NetworkError as exc:
                raise NetworkError(f"{doing}: {exc}") from exc
        subnet = ipaddress.ip_network(network.subnet)
        host, peer = endpoint.host_interface, "pdtmp" + endpoint.host_interface[-9:]
        try:
            with _netlink() as ip:
                bridge = _index(ip, network.interface)
                ip.link("add", ifname=host, kind="veth", peer={"ifname": peer})
                host_index, peer_index = _index(ip, host), _index(ip, peer)
                fd = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
                try:
                    ip.link("set", index=peer_index, net_ns_fd=fd)
                finally:
                    os.close(fd)
                ip.link("set", index=host_index, master=bridge, state="up")
            with _netlink(pid) as inside:
                index = _index(inside, peer)
                inside.link("set", index=index, ifname=endpoint.interface)
                inside.addr("add", index=index, address=endpoint.address,
                            prefixlen=subnet.prefixlen)  # fmt: skip
                inside.link("set", index=index, state="up")
                lo = _index(inside, "lo")
                inside.link("set", index=lo, state="up")
                has_default = any(
                    r.get_attr("RTA_DST") is None for r in inside.get_routes(family=2, table=254)
                )
                if not network.internal and not has_default:
                    inside.route("add", gateway=network.gateway)
        except Exception as exc:
            with contextlib.suppress(Exception):
                self.leave(network, endpoint)
            raise NetworkError(f"{doing}: netlink: {exc}") from exc

    def leave(self, network: NetworkRecord, endpoint: EndpointRecord) -> None:
        with contextlib.suppress(Exception), _netlink() as ip:
            index = _index(ip, endpoint.host_interface)
            if index is not None:
                ip.link("del", index=index)

    def publish(
        self,
        network: NetworkRecord,
        endpoint: EndpointRecord,
        ports: Sequence[PortBinding],
        pid: int,
    ) -> None:
        pause = rootlessnet.holder()
        if pause is not None:
            if ports:
                rootlessnet.forward(endpoint.container_id, endpoint.address, ports, pause, pid)
            return
        tag = nft.container_tag(endpoint.container_id)
        commands: list[nft.Json] = []
        for port in ports:
            match: list[nft.Json] = [{"match": {"op": "==", "left": {"fib": {"result": "type",
                      "flags": ["daddr"]}}, "right": "local"}}]  # fmt: skip
            if port.host_ip not in ("", "0.0.0.0"):
                match.append(nft.match_payload("ip", "daddr", port.host_ip))
            match.append(nft.match_payload(port.protocol, "dport", port.host_port))
            target: nft.Json = {"dnat": {"family": "ip", "addr": endpoint.address,
                               "port": port.container_port}}  # fmt: skip
            for chain in ("prerouting", "output"):
                commands.append(nft.rule(chain, [*match, target], tag))
        if commands:
            nft.run(commands, doing=f"publishing ports of container {endpoint.container_id[:12]}")

    def unpublish(self, network: NetworkRecord, container_id: str) -> None:
        if rootlessnet.holder() is not None:
            rootlessnet.stop_forwarder(container_id)
            return
        nft.delete_tagged(
            [nft.container_tag(container_id)],
            doing=f"removing the published ports of container {container_id[:12]}",
        )

    def routed_subnets(self) -> list[str]:
        """The destinations of this namespace's IPv4 routes (as Docker checks before it picks
        a pool): another pydock root's bridge, a VPN, the LAN."""
        found = []
        with contextlib.suppress(Exception), _netlink() as ip:
            for route in ip.get_routes(family=socket.AF_INET, table=254):
                destination = route.get_attr("RTA_DST")
                length = route.get("dst_len")
                if destination and length:
                    found.append(f"{destination}/{length}")
        return found

    def quiesce(self) -> None:
        if rootlessnet.holder() is not None:
            rootlessnet.stop_pasta()

    def forget_containers(self, gone: set[str]) -> None:
        if rootlessnet.holder() is not None:
            rootlessnet.forget_forwarders(gone)
        stale = {nft.container_tag(c) for c in gone} & nft.tags_in_use()
        if stale:
            nft.delete_tagged(stale, doing="removing rules of containers that are gone")
