"""Benchmark pydock's userspace overlay against fuse-overlayfs (and kernel overlayfs) in one run.

Every tool mounts the same seeded layers: a base layer with ``--files`` small files in nested
directories and one ``--big-mib`` MiB file, and a top layer that replaces a tenth of the small
files, so directories really merge. Each round mounts every tool afresh and runs each workload
on each tool in turn (the order of the tools alternates between rounds):

- ``read first`` / ``read warm``: sequential read of the big file through a fresh mount, then
  the best of three more reads (the page cache is kept);
- ``stat first`` / ``stat warm``: ``lstat`` of every small file by its known path;
- ``find first`` / ``find warm``: ``find`` over the merged tree;
- ``tar``: ``tar -cf /dev/null`` of the merged tree;
- ``copy-up``: append one byte to the big file;
- ``create``: create ``--create`` small files in a new directory.

Ratios are pydock's median against fuse-overlayfs's: for throughput higher is better, for
times lower is better; the goals are those of the fuse issue.

Usage: ``python benchmarks/bench_fuse.py [--dir DIR] [--files 20000] [--big-mib 512]
[--create 5000] [--repeat 3] [--cold] [--no-kernel] [--json] [--pydock-options fsync=0]``.
Every timed run starts after ``sync``, so no workload pays for another's writeback. Needs root
for kernel overlayfs and ``--cold`` (which drops the page cache before every "first" workload).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SEED = 20240612
DATA_VERSION = 1
FILES_PER_DIR = 50
SMALL_MAX = 8 << 10
READ_BLOCK = 1 << 20
# (name, unit, goal for pydock / fuse-overlayfs, higher is better)
WORKLOADS: list[tuple[str, str, float, bool]] = [
    ("read first", "MiB/s", 0.5, True),
    ("read warm", "MiB/s", 0.9, True),
    ("stat first", "s", 0.0, False),
    ("stat warm", "s", 2.0, False),
    ("find first", "s", 0.0, False),
    ("find warm", "s", 10.0, False),
    ("tar", "s", 0.0, False),
    ("copy-up", "s", 1.5, False),
    ("create", "s", 1.3, False),
]


def generate(layers: Path, files: int, big_mib: int) -> list[str]:
    """Write the two layers; returns the relative paths of the small files."""
    rng = random.Random(SEED)
    base, top = layers / "base", layers / "top"
    paths = []
    for index in range(files):
        directory = index // FILES_PER_DIR
        rel = f"d{directory // 20:03d}/e{directory % 20:02d}/f{index:06d}"
        target = (top if index % 10 == 0 else base) / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(rng.randint(0, SMALL_MAX)))
        paths.append(rel)
    (top / "d000").mkdir(parents=True, exist_ok=True)
    with open(base / "big.bin", "wb") as out:
        block = rng.randbytes(8 << 20)
        for _ in range(big_mib // 8):
            cut = rng.randrange(len(block))
            out.write(block[cut:] + block[:cut])
    return paths


def prepare(work: Path, files: int, big_mib: int) -> tuple[Path, list[str]]:
    stamp = f"{DATA_VERSION} {SEED} {files} {big_mib}"
    layers, stamp_file, index = work / "layers", work / "stamp", work / "paths.txt"
    if stamp_file.exists() and stamp_file.read_text() == stamp:
        return layers, index.read_text().split("\n")
    shutil.rmtree(layers, ignore_errors=True)
    print(f"generating {files} files and a {big_mib} MiB file in {layers}", file=sys.stderr)
    paths = generate(layers, files, big_mib)
    index.write_text("\n".join(paths))
    stamp_file.write_text(stamp)
    return layers, paths


@dataclass
class Tool:
    """How to mount and unmount one implementation."""

    name: str
    mount: Callable[[str, Path, Path, Path], None]
    unmount: Callable[[Path], None]


def _fuse_unmount(mnt: Path) -> None:
    if subprocess.run(["fusermount3", "-u", str(mnt)], capture_output=True).returncode != 0:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


PYDOCK_OPTIONS: list[str] = []


def _pydock_mount(lower: str, upper: Path, work: Path, mnt: Path) -> None:
    options = ",".join([f"lowerdir={lower},upperdir={upper},workdir={work}", *PYDOCK_OPTIONS])
    command = [sys.executable, "-m", "drivers.fuse.cli", "-o", options, str(mnt)]
    subprocess.run(command, check=True, timeout=60, cwd=Path(__file__).resolve().parents[1])


def _fuse_overlayfs_mount(lower: str, upper: Path, work: Path, mnt: Path) -> None:
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["fuse-overlayfs", "-o", options, str(mnt)], check=True, timeout=60)


def _kernel_mount(lower: str, upper: Path, work: Path, mnt: Path) -> None:
    options = f"lowerdir={lower},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", options, str(mnt)], check=True)


def _kernel_unmount(mnt: Path) -> None:
    subprocess.run(["umount", str(mnt)], check=True)


def drop_caches() -> None:
    os.sync()
    Path("/proc/sys/vm/drop_caches").write_text("3\n")


def read_file(path: Path) -> float:
    """Read ``path`` sequentially; returns MiB/s."""
    os.sync()
    buffer = bytearray(READ_BLOCK)
    total = 0
    start = time.perf_counter()
    with open(path, "rb", buffering=0) as source:
        while count := source.readinto(buffer):
            total += count
    return total / (1 << 20) / (time.perf_counter() - start)


def timed(action: Callable[[], object]) -> float:
    os.sync()  # earlier workloads' dirty data must not be written back during this one
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def stat_all(mnt: Path, paths: list[str]) -> None:
    root = str(mnt) + "/"
    for rel in paths:
        os.lstat(root + rel)


def create_files(directory: Path, count: int) -> None:
    directory.mkdir()
    payload = b"x" * 100
    for index in range(count):
        with open(directory / f"n{index:05d}", "wb") as out:
            out.write(payload)


def append_byte(path: Path) -> None:
    with open(path, "ab") as out:
        out.write(b"!")


class Round:
    """One fresh mount per tool for a group of workloads."""

    def __init__(self, scratch: Path, lower: str, tools: list[Tool]) -> None:
        self.scratch, self.lower, self.tools = scratch, lower, tools
        self.mounts: dict[str, Path] = {}

    def __enter__(self) -> Round:
        for tool in self.tools:
            base = Path(tempfile.mkdtemp(prefix=f"{tool.name}-", dir=self.scratch))
            for sub in ("upper", "work", "mnt"):
                (base / sub).mkdir()
            tool.mount(self.lower, base / "upper", base / "work", base / "mnt")
            self.mounts[tool.name] = base / "mnt"
        return self

    def __exit__(self, *exc: object) -> None:
        for tool in self.tools:
            mnt = self.mounts.get(tool.name)
            if mnt is not None:
                tool.unmount(mnt)
                shutil.rmtree(mnt.parent, ignore_errors=True)


def run(args: argparse.Namespace) -> dict[str, dict[str, list[float]]]:
    work = Path(args.dir)
    work.mkdir(parents=True, exist_ok=True)
    layers, paths = prepare(work, args.files, args.big_mib)
    lower = f"{layers / 'top'}:{layers / 'base'}"
    tools = [
        Tool("pydock", _pydock_mount, _fuse_unmount),
        Tool("fuse-overlayfs", _fuse_overlayfs_mount, _fuse_unmount),
    ]
    if args.kernel:
        tools.append(Tool("overlay", _kernel_mount, _kernel_unmount))
    results: dict[str, dict[str, list[float]]] = {t.name: {} for t in tools}
    scratch = Path(tempfile.mkdtemp(prefix="mounts-", dir=work))

    def record(tool: str, workload: str, value: float) -> None:
        results[tool].setdefault(workload, []).append(value)

    try:
        for round_no in range(args.repeat):
            order = tools if round_no % 2 == 0 else tools[::-1]
            print(f"round {round_no + 1}/{args.repeat}", file=sys.stderr)
            with Round(scratch, lower, order) as mounts:
                for tool in order:
                    if args.cold:
                        drop_caches()
                    record(tool.name, "read first", read_file(mounts.mounts[tool.name] / "big.bin"))
                for tool in order:
                    big = mounts.mounts[tool.name] / "big.bin"
                    # Best of three: a page cache dropped by someone else is not a warm read.
                    warm = max(read_file(big) for _ in range(3))
                    record(tool.name, "read warm", warm)
                for workload in ("stat first", "stat warm"):
                    for tool in order:
                        if args.cold and workload.endswith("first"):
                            drop_caches()
                        mnt = mounts.mounts[tool.name]
                        record(tool.name, workload, timed(lambda m=mnt: stat_all(m, paths)))
            with Round(scratch, lower, order) as mounts:
                for workload in ("find first", "find warm", "tar"):
                    for tool in order:
                        if args.cold and workload.endswith("first"):
                            drop_caches()
                        mnt = mounts.mounts[tool.name]
                        command = (
                            ["find", str(mnt)]
                            if workload.startswith("find")
                            else ["tar", "-cf", "/dev/null", "-C", str(mnt), "."]
                        )
                        record(
                            tool.name,
                            workload,
                            timed(lambda c=command: subprocess.run(c, check=True, stdout=-3)),
                        )
            with Round(scratch, lower, order) as mounts:
                for tool in order:
                    big = mounts.mounts[tool.name] / "big.bin"
                    record(tool.name, "copy-up", timed(lambda b=big: append_byte(b)))
                for tool in order:
                    target = mounts.mounts[tool.name] / "new"
                    record(
                        tool.name,
                        "create",
                        timed(lambda t=target: create_files(t, args.create)),
                    )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return results


def report(results: dict[str, dict[str, list[float]]], load: tuple[float, float]) -> None:
    tools = list(results)
    print(f"load average (1 min) before {load[0]:.2f}, after {load[1]:.2f}; medians of rounds")
    header = f"{'workload':<12} {'unit':<6}" + "".join(f"{t:>16}" for t in tools)
    print(header + f"{'pydock/fuse-ovl':>17}{'goal':>8}")
    for name, unit, goal, higher in WORKLOADS:
        medians = {t: statistics.median(results[t][name]) for t in tools}
        cells = "".join(f"{medians[t]:>16.3f}" for t in tools)
        ratio = medians["pydock"] / medians["fuse-overlayfs"]
        if goal:
            met = ratio >= goal if higher else ratio <= goal
            goal_text = f"{'>=' if higher else '<='}{goal:g} {'ok' if met else 'MISS'}"
        else:
            goal_text = "-"
        print(f"{name:<12} {unit:<6}{cells}{ratio:>16.2f}x {goal_text:>10}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", default="/var/tmp/pydock-bench-fuse")
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--create", type=int, default=5000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--cold", action="store_true")
    parser.add_argument("--no-kernel", dest="kernel", action="store_false")
    parser.add_argument("--json", action="store_true")
    parser.add_argument(
        "--pydock-options", default="", help="extra -o options for pydock, e.g. fsync=0"
    )
    args = parser.parse_args()
    PYDOCK_OPTIONS.extend(o for o in args.pydock_options.split(",") if o)
    if args.kernel and os.geteuid() != 0:
        args.kernel = False
    if shutil.which("fuse-overlayfs") is None:
        print("bench_fuse: fuse-overlayfs not found (apt-get install fuse-overlayfs)")
        return 1
    before = os.getloadavg()[0]
    results = run(args)
    load = (before, os.getloadavg()[0])
    if args.json:
        print(json.dumps({"load": load, "results": results}, indent=2))
    else:
        report(results, load)
    return 0


if __name__ == "__main__":
    sys.exit(main())
