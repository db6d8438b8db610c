"""The workloads of ``pydock bench``, each one line of documentation and one function.

A workload takes one backend and returns one sample: seconds (lower is better), MiB/s or
connections per second (higher is better). Only the operation itself is timed; layers, mounts,
files and servers it needs are made before the clock starts and removed after it stops (a
server runs from a backend's first net sample until the end of the run). A net sample comes
with the bytes it received (:class:`pydock.bench.net.Transfer`), kept in the results.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydock.bench.backends import Backend
from pydock.bench.data import Size
from pydock.bench.net import Transfer, connection_rate, throughput

READ_BLOCK = 1 << 20
CREATE_BYTES = b"x" * 1024
RATE_UNITS = ("MiB/s", "conn/s")  # higher is better


@dataclass(frozen=True)
class Workload:
    """One measured thing."""

    name: str
    description: str
    operation: str  # the backend operation it needs (see pydock.bench.backends)
    measure: Callable[[Backend], float | Transfer]
    unit: str = "s"
    cold: bool = False  # drops the page cache before the timed part (root only)

    @property
    def better(self) -> str:
        return "higher" if self.unit in RATE_UNITS else "lower"


def _read_all(path: Path) -> int:
    total = 0
    with open(path, "rb", buffering=0) as source:
        while chunk := source.read(READ_BLOCK):
            total += len(chunk)
    return total


def _throughput(backend: Backend, path: Path, cold: bool) -> float:
    backend.clock.settle(cold)
    begin = time.perf_counter()
    size = _read_all(path)
    return (size / (1 << 20)) / (time.perf_counter() - begin)


def read_cold(backend: Backend) -> float:
    with backend.view() as root:
        return _throughput(backend, root / backend.data.big, cold=True)


def read_warm(backend: Backend) -> float:
    with backend.view() as root:
        _read_all(root / backend.data.big)
        return _throughput(backend, root / backend.data.big, cold=False)


def walk(backend: Backend) -> float:
    def lstat_everything(root: Path) -> None:
        for directory, dirs, files in os.walk(root):
            for name in dirs + files:
                os.lstat(os.path.join(directory, name))

    with backend.view() as root:
        return backend.clock.time(lambda: lstat_everything(root))


def create(backend: Backend) -> float:
    count = backend.size.create

    def write_files(target: Path) -> None:
        target.mkdir()
        for index in range(count):
            with open(target / f"new{index:06d}", "wb") as out:
                out.write(CREATE_BYTES)

    with backend.view() as root:
        return backend.clock.time(lambda: write_files(root / "pydock-bench-create"))


def copy_up(backend: Backend) -> float:
    def append(path: Path) -> None:
        with open(path, "ab") as out:
            out.write(b"!")

    with backend.view() as root:
        return backend.clock.time(lambda: append(root / backend.data.big))


def net_connect(backend: Backend) -> Transfer:
    port = backend.serve()
    return connection_rate(port, backend.site, backend.size.connections)


def net_transfer(backend: Backend) -> Transfer:
    return throughput(backend.serve(), backend.site)


def _mount_workload(depth: int) -> Workload:
    return Workload(
        f"mount-{depth}",
        f"mount and unmount a container layer on a chain of {depth} layer(s)",
        "mount",
        lambda backend: backend.mount(depth),
    )


def workloads(size: Size) -> list[Workload]:
    """Every workload for ``size``, in the order they run."""
    return [
        Workload("unpack", "unpack the layer tar into a new layer (apply_diff)", "unpack",
                 lambda backend: backend.unpack()),
        Workload("snapshot", "create a writable layer on top of the unpacked data", "snapshot",
                 lambda backend: backend.snapshot()),
        *(_mount_workload(depth) for depth in size.depths),
        Workload("start", "run --rm --network none busybox /bin/true, start to exit",
                 "start", lambda backend: backend.start()),
        Workload("read-cold", "read the big file through a fresh mount, page cache dropped",
                 "view", read_cold, unit="MiB/s", cold=True),
        Workload("read-warm", "read the big file again, from the page cache", "view",
                 read_warm, unit="MiB/s"),
        Workload("walk", "lstat every entry of a freshly mounted tree", "view", walk),
        Workload("create", f"create {size.create} files of 1 KiB in a new directory", "view",
                 create),
        Workload("copy-up", "append one byte to the big lower file (copies it up)", "view",
                 copy_up),
        Workload("diff", f"write the diff of a layer with {size.changed} changed files as tar",
                 "diff", lambda backend: backend.diff()),
        Workload("remove", "remove a layer holding the unpacked data", "remove",
                 lambda backend: backend.remove()),
        Workload("net-connect", f"{size.connections} GETs of a 1 KiB file from a container's "
                 "web server on 127.0.0.1, a new connection each", "net", net_connect,
                 unit="conn/s"),
        Workload("net-transfer", f"one GET of a {size.big_mib} MiB file from a container's web "
                 "server on 127.0.0.1", "net", net_transfer, unit="MiB/s"),
    ]  # fmt: skip


def select(all_workloads: list[Workload], names: list[str] | None) -> list[Workload]:
    """The workloads named (``mount``: every mount depth, ``net``: both net workloads), in run
    order; ValueError else."""
    if not names:
        return all_workloads
    known = {workload.name for workload in all_workloads}
    wanted = set()
    for name in names:
        if name in ("mount", "net"):
            wanted |= {w.name for w in all_workloads if w.operation == name}
        elif name in known:
            wanted.add(name)
        else:
            choices = ", ".join(["mount", "net", *sorted(known)])
            raise ValueError(f"unknown workload {name!r} (known: {choices})")
    return [workload for workload in all_workloads if workload.name in wanted]
