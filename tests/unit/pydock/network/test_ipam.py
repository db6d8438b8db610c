"""IPAM in the store: lowest free address, never one address twice, also across processes."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import pytest

from pydock.store import Store
from pydock.store.networks import AddressesExhaustedError, NetworkRecord, PortBinding

NET = NetworkRecord(
    id="n" * 64,
    name="small",
    driver="bridge",
    created="2024-01-01T00:00:00Z",
    subnet="10.5.0.0/29",
    gateway="10.5.0.1",
    interface="pydocktest",
)


def test_addresses_lowest_free_and_reused() -> None:
    with Store.in_memory() as store:
        assert store.networks.add(NET)
        assert not store.networks.add(NET)  # the name is taken
        got = [store.networks.join(NET, f"c{i}").address for i in range(5)]
        # /29: .1 is the gateway, .0 and .7 are not hosts.
        assert got == ["10.5.0.2", "10.5.0.3", "10.5.0.4", "10.5.0.5", "10.5.0.6"]
        with pytest.raises(AddressesExhaustedError):
            store.networks.join(NET, "c5")
        assert store.networks.join(NET, "c1").address == "10.5.0.3"  # a member keeps its own
        store.networks.leave(NET.id, "c1")
        assert store.networks.join(NET, "c6").address == "10.5.0.3"
        assert not store.networks.remove(NET.id)  # members left


def test_ports_held_once() -> None:
    with Store.in_memory() as store:
        first = [PortBinding("a", "tcp", 80, "127.0.0.1", 8080)]
        assert store.networks.hold_ports(first) is None
        clash = store.networks.hold_ports([PortBinding("b", "tcp", 81, "0.0.0.0", 8080)])
        assert clash is not None and clash.container_id == "a"
        assert store.networks.hold_ports([PortBinding("b", "udp", 80, "127.0.0.1", 8080)]) is None
        assert [p.container_id for p in store.networks.ports()] == ["a", "b"]
        store.networks.release_ports("a")
        assert store.networks.hold_ports([PortBinding("b", "tcp", 81, "0.0.0.0", 8080)]) is None


def _join_many(root: str, worker: int, queue: multiprocessing.Queue[list[str]]) -> None:
    with Store.open(Path(root)) as store:
        network = store.networks.by_name("wide")
        assert network is not None
        queue.put([store.networks.join(network, f"w{worker}-{i}").address for i in range(20)])


def test_concurrent_joins_never_share_an_address(tmp_path: Path) -> None:
    with Store.open(tmp_path) as store:
        store.networks.add(
            NetworkRecord(
                id="w" * 64,
                name="wide",
                driver="bridge",
                created="x",
                subnet="10.6.0.0/24",
                gateway="10.6.0.1",
            )
        )
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    workers = [context.Process(target=_join_many, args=(str(tmp_path), n, queue)) for n in range(4)]
    for process in workers:
        process.start()
    results = [queue.get(timeout=60) for _ in workers]
    for process in workers:
        process.join(timeout=60)
        assert process.exitcode == 0
    addresses = [address for result in results for address in result]
    assert len(addresses) == 80
    assert len(set(addresses)) == 80
