"""The net workloads without containers: the seeded site, the client and the runner's records.

A small web server of the standard library, in a thread of the test, stands in for the busybox
httpd in a container; it listens on 127.0.0.1 only.
"""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import pytest

from pydock.bench.data import SIZES, Site, Size, prepare_site
from pydock.bench.net import (
    NetBenchError,
    connection_rate,
    free_port,
    get,
    throughput,
    wait_ready,
)
from pydock.bench.results import Run
from pydock.bench.workloads import select, workloads

TINY = Size(files=10, big_mib=1, create=1, changed=1, depths=(1,), connections=7)


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def site(tmp_path: Path) -> Site:
    return prepare_site(tmp_path / "work", TINY)


@pytest.fixture
def port(site: Site) -> Iterator[int]:
    handler = functools.partial(_Quiet, directory=str(site.root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_the_site_is_seeded_and_kept(tmp_path: Path) -> None:
    first = prepare_site(tmp_path / "a", TINY)
    second = prepare_site(tmp_path / "b", TINY)
    assert (first.small_bytes, first.big_bytes) == (1024, 1 << 20)
    for name in ("small.bin", "big.bin"):
        data = (first.root / name).read_bytes()
        assert data == (second.root / name).read_bytes()
        assert (first.root / name).stat().st_mode & 0o777 == 0o644
    assert len(set((first.root / "big.bin").read_bytes()[: 1 << 16])) > 200  # not one byte
    stamp = (first.root / "big.bin").stat().st_mtime_ns
    assert prepare_site(tmp_path / "a", TINY) == first
    assert (first.root / "big.bin").stat().st_mtime_ns == stamp  # reused, not written again
    (first.root / "big.bin").write_bytes(b"cut short")
    assert (prepare_site(tmp_path / "a", TINY).root / "big.bin").stat().st_size == 1 << 20


def test_get_counts_the_body_and_checks_it(site: Site, port: int) -> None:
    assert get(port, "small.bin", site.small_bytes) == 1024
    assert get(port, "big.bin", site.big_bytes) == 1 << 20
    with pytest.raises(NetBenchError, match="received 1024 bytes, expected 1000"):
        get(port, "small.bin", 1000)
    with pytest.raises(NetBenchError, match="HTTP status 404"):
        get(port, "nothing.bin", 0)


def test_a_port_nobody_serves_fails_and_waiting_is_bounded(site: Site) -> None:
    closed = free_port()
    with pytest.raises(NetBenchError, match=f"GET small.bin on port {closed}: "):
        get(closed, "small.bin", site.small_bytes)
    with pytest.raises(NetBenchError, match="did not answer"):
        wait_ready(closed, site, timeout=0.3)


def test_rate_and_throughput_report_what_they_received(site: Site, port: int) -> None:
    wait_ready(port, site)
    rate = connection_rate(port, site, 25)
    assert rate.received == 25 * 1024 and rate.value > 0
    moved = throughput(port, site)
    assert moved.received == 1 << 20 and moved.value > 0


def test_select_net_means_both_net_workloads() -> None:
    every = workloads(SIZES["small"])
    chosen = select(every, ["net", "unpack"])
    assert [w.name for w in chosen] == ["unpack", "net-connect", "net-transfer"]
    assert {w.unit for w in chosen[1:]} == {"conn/s", "MiB/s"}
    assert all(w.operation == "net" and w.better == "higher" for w in chosen[1:])


class _SiteBackend:
    """A backend whose "container" is the test's server."""

    kind, description = "reference", "the test's server"
    operations = frozenset({"net"})

    def __init__(self, name: str, port: int, site: Site) -> None:
        self.name, self.port, self.site, self.size = name, port, site, TINY
        self.served = 0

    def setup(self) -> None:
        pass

    def serve(self) -> int:
        self.served += 1
        return self.port


def test_the_runner_keeps_the_bytes_each_net_sample_received(
    tmp_path: Path, site: Site, port: int
) -> None:
    from pydock.bench.runner import Plan, execute

    good = _SiteBackend("good", port, site)
    wrong = _SiteBackend("wrong", port, Site(site.root, 1000, site.big_bytes))  # sizes differ
    chosen = select(workloads(TINY), ["net"])
    plan = Plan([cast(Any, good), cast(Any, wrong)], chosen, 2, tmp_path)
    run = Run(["pydock", "bench"], "t0", {}, {}, {"baseline": "good"}, [])
    execute(plan, run, lambda what, done: None)
    data = run.to_json()
    connect, transfer = data["workloads"]
    cells = {c["backend"]: c for c in connect["results"]}
    assert cells["good"]["received_bytes"] == [7 * 1024, 7 * 1024]
    assert len(cells["good"]["samples"]) == 2 and len(cells["good"]["warmup"]) == 1
    assert cells["good"]["ratio"] == 1.0 and connect["unit"] == "conn/s"
    assert cells["wrong"]["samples"] == [] and "received_bytes" not in cells["wrong"]
    assert "received 1024 bytes, expected 1000" in cells["wrong"]["skipped"]
    cells = {c["backend"]: c for c in transfer["results"]}
    assert cells["good"]["received_bytes"] == [1 << 20, 1 << 20]
    assert cells["wrong"]["received_bytes"] == [1 << 20, 1 << 20]  # the big file is right
    assert good.served == 6  # every sample asks; the backend starts its server once
