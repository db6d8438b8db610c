"""``pydock bench --workload net`` end to end: real containers, real bridges, real podman.

Each test runs the benchmark inside a fresh network namespace (``unshare --net``, entered with
``nsenter``, as the network tests do), and the benchmark moves into one more of its own, so
every bridge, veth and rule lives only there; the traffic goes to 127.0.0.1 only. What is
checked is what a run must give (a sample per round on every backend, the bytes of the seeded
files, ratios that follow from the samples) and what it must leave (nothing); never a timing.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphdriver.mountutil import detach, mounts_under

from .containers_support import clean_env, container_drivers
from .test_cli_network import Namespace

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs root (bridges, nftables, podman)"),
    pytest.mark.skipif(shutil.which("nft") is None, reason="needs nft (Debian nftables)"),
    pytest.mark.skipif(shutil.which("nsenter") is None, reason="needs nsenter (util-linux)"),
    pytest.mark.timeout(900),
]

BACKENDS = ["pydock-host", "podman"]


def _starttime(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[19]
    except (OSError, IndexError):
        return None


def _tree(work: Path, spare: set[int]) -> dict[int, str]:
    """Processes naming ``work`` (monitors, conmon) and all their descendants: pid -> start."""
    marker = os.fsencode(str(work))
    parents: dict[int, int] = {}
    roots = set()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spare:
            continue
        try:
            stat = (entry / "stat").read_text().rpartition(")")[2].split()
            parents[int(entry.name)] = int(stat[1])
            if stat[0] != "Z" and marker in (entry / "cmdline").read_bytes():
                roots.add(int(entry.name))
        except (OSError, IndexError):
            continue
    found = set(roots)
    while True:
        more = {pid for pid, parent in parents.items() if parent in found} - found - spare
        if not more:
            break
        found |= more
    return {pid: start for pid in found if (start := _starttime(pid)) is not None}


def _parent(pid: int) -> int:
    """The parent of ``pid`` (0 once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[1])
    except (OSError, IndexError, ValueError):
        return 0


def _alive(processes: dict[int, str]) -> list[int]:
    """Those of ``processes`` still running (the same pid and start time, not a zombie)."""
    left = []
    for pid, start in processes.items():
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
        except (OSError, IndexError):
            continue
        if state != "Z" and _starttime(pid) == start:
            left.append(pid)
    return left


@pytest.fixture
def namespace() -> Iterator[Namespace]:
    holder = Namespace()
    try:
        yield holder
    finally:
        holder.close()


@pytest.fixture
def work(tmp_path: Path) -> Iterator[Path]:
    """The bench's --dir; whatever is left running or mounted there is removed after the test."""
    path = tmp_path / "work"
    path.mkdir()
    yield path
    for pid in _alive(_tree(path, {os.getpid()})):
        os.kill(pid, signal.SIGKILL)
    for point in mounts_under(path):
        detach(Path(point))


def _command(storage: str, out: Path, work: Path, repeat: int) -> list[str]:
    return [
        sys.executable, "-m", "pydock", "bench", "--workload", "net", "--storage", storage,
        "--reference", ",".join(BACKENDS), "--repeat", str(repeat),
        "--dir", str(work), "--out", str(out),
    ]  # fmt: skip


def _assert_namespace_clean(namespace: Namespace) -> None:
    """Nothing of the run is left in the namespace the benchmark was started in."""
    assert namespace.links() == ["lo"]
    ruleset = namespace.run("nft", "list", "ruleset")
    assert ruleset.status == 0 and ruleset.out.strip() == "", ruleset.out


def test_net_measures_the_bridge_host_network_and_podman(
    tmp_path: Path, work: Path, namespace: Namespace
) -> None:
    storage = container_drivers()[-1]
    out = tmp_path / "out"
    done = namespace.run(*_command(storage, out, work, repeat=2), timeout=600)
    assert done.status == 0, done.err[-3000:]

    data = json.loads((out / "results.json").read_text())
    net = data["settings"]["net"]
    assert net == {"connections": 500, "small_bytes": 1024, "big_bytes": 64 << 20}
    assert "network namespace of its own" in data["settings"]["network"]
    site = work / "www-64m"  # --dir keeps the seeded site: the files the servers sent
    assert (site / "small.bin").stat().st_size == net["small_bytes"]
    assert (site / "big.bin").stat().st_size == net["big_bytes"]
    assert not (work / "data-small").exists()  # the storage workloads' data is not needed
    backends = {b["name"]: b["skipped"] for b in data["backends"]}
    podman = "podman not installed" if shutil.which("podman") is None else None
    assert backends == {storage: None, "pydock-host": None, "podman": podman}
    measured = [name for name, skipped in backends.items() if skipped is None]

    connect, transfer = data["workloads"]
    assert (connect["name"], connect["unit"], connect["better"]) == ("net-connect", "conn/s",
                                                                     "higher")  # fmt: skip
    assert (transfer["name"], transfer["unit"]) == ("net-transfer", "MiB/s")
    expected = {"net-connect": net["connections"] * net["small_bytes"],
                "net-transfer": net["big_bytes"]}  # fmt: skip
    for workload in (connect, transfer):
        cells = {cell["backend"]: cell for cell in workload["results"]}
        base = statistics.median(cells[storage]["samples"])
        for name in measured:
            cell = cells[name]
            assert cell["skipped"] is None, (workload["name"], name, cell["skipped"])
            assert len(cell["samples"]) == 2 and len(cell["warmup"]) == 1
            assert all(value > 0 for value in cell["samples"] + cell["warmup"])
            assert cell["received_bytes"] == [expected[workload["name"]]] * 2
            ratio = statistics.median(cell["samples"]) / base
            assert cell["ratio"] == pytest.approx(ratio, rel=1e-4)
        if podman is not None:
            assert cells["podman"]["skipped"] == podman and cells["podman"]["samples"] == []
    lines = {line.split()[0]: line for line in done.out.splitlines() if line.strip()}
    assert "conn/s baseline" in lines["net-connect"] and "MiB/s" in lines["net-transfer"]

    _assert_namespace_clean(namespace)
    assert _alive(_tree(work, {os.getpid()})) == []
    assert mounts_under(work) == [] and not (work / "runs").exists()


def test_interrupting_net_removes_its_containers(
    tmp_path: Path, work: Path, namespace: Namespace
) -> None:
    storage = container_drivers()[-1]
    out = tmp_path / "out"
    process = subprocess.Popen(
        namespace.argv(*_command(storage, out, work, repeat=50)),
        stderr=subprocess.PIPE,
        env=clean_env(),
    )
    assert process.stderr is not None
    seen = b""
    deadline = time.monotonic() + 300
    # Every server has answered once the warm-up of the second workload begins.
    while b"net-transfer on" not in seen and time.monotonic() < deadline:
        ready, _, _ = select.select([process.stderr], [], [], 1.0)
        if ready:
            chunk = os.read(process.stderr.fileno(), 4096)
            if not chunk:
                break
            seen += chunk
    assert b"net-transfer on" in seen, seen.decode()
    # nsenter enters a network namespace without forking: process.pid is the benchmark.
    servers = _tree(work, {os.getpid(), process.pid})
    comms: dict[int, str] = {}
    for pid in servers:
        with contextlib.suppress(OSError):
            comms[pid] = Path(f"/proc/{pid}/comm").read_text().strip()
    names = sorted(comms.values())
    # busybox httpd forks a child per connection: count the servers, not a connection's child.
    serving = [
        pid for pid, name in comms.items() if name == "httpd" and comms.get(_parent(pid)) != "httpd"
    ]
    with_podman = shutil.which("podman") is not None
    assert len(serving) == 2 + with_podman, names  # with pydock's monitors
    assert ("conmon" in names) == with_podman, names
    os.kill(process.pid, signal.SIGTERM)
    rest = process.stderr.read().decode()
    assert process.wait(timeout=180) == 130, seen.decode() + rest
    data = json.loads((out / "results.json").read_text())
    assert data["interrupted"] is True
    assert _alive(servers) == []
    _assert_namespace_clean(namespace)
    assert mounts_under(work) == [] and not (work / "runs").exists()
