"""Benchmark the vfs driver against the tools a user would pick instead.

Two pairs, each measured interleaved (A B A B ...) in one run on the same seeded data:

1. ``VfsDriver.apply_diff`` of a layer tar versus ``tar -xf`` of the same tar;
2. a vfs snapshot (``create(child, parent)``) versus ``cp -a`` of the same tree.

Usage: ``python benchmarks/bench_vfs.py [--files 20000] [--big-mib 512] [--dir DIR]
[--repeat 3] [--copy auto] [--part all|apply|snapshot] [--cold] [--json]``.
Page caches are dropped before every timed run only with ``--cold``, and only as root.
"""

from __future__ import annotations

import argparse
import functools
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
from pathlib import Path

from drivers.vfs import VfsDriver

SEED = 20240611
DATA_VERSION = 1
SMALL_MAX = 16 << 10
FILES_PER_DIR = 50
BIG_CHUNK = 8 << 20


def generate(root: Path, files: int, big_mib: int) -> None:
    """Write ``files`` small files in nested directories and one ``big_mib`` MiB file."""
    rng = random.Random(SEED)
    for index in range(files):
        directory = index // FILES_PER_DIR
        sub = root / f"d{directory // 20:03d}" / f"e{directory % 20:02d}"
        if index % FILES_PER_DIR == 0:
            sub.mkdir(parents=True, exist_ok=True)
        path = sub / f"f{index:06d}.bin"
        path.write_bytes(rng.randbytes(rng.randint(0, SMALL_MAX)))
        os.chmod(path, rng.choice((0o644, 0o755, 0o600, 0o444)))
    with open(root / "big.bin", "wb") as out:
        left = big_mib << 20
        block = rng.randbytes(BIG_CHUNK)
        while left > 0:
            # Rotate the block so the file is not one chunk repeated.
            cut = rng.randrange(BIG_CHUNK)
            piece = block[cut:] + block[:cut]
            out.write(piece[:left])
            left -= len(piece)


def prepare(work: Path, files: int, big_mib: int) -> tuple[Path, Path]:
    """Seeded tree and its GNU tar, reused from an earlier run with the same parameters."""
    stamp = f"{DATA_VERSION} {SEED} {files} {big_mib}"
    tree, tar, stamp_file = work / "tree", work / "tree.tar", work / "stamp"
    if stamp_file.exists() and stamp_file.read_text() == stamp and tar.exists():
        return tree, tar
    for stale in (tree, tar, stamp_file):
        if stale.is_dir():
            shutil.rmtree(stale)
        elif stale.exists():
            stale.unlink()
    tree.mkdir(parents=True)
    print(f"generating {files} files and a {big_mib} MiB file in {tree}", file=sys.stderr)
    generate(tree, files, big_mib)
    subprocess.run(
        ["tar", "--format=pax", "--sort=name", "--numeric-owner", "-cf", tar, "-C", tree, "."],
        check=True,
    )
    stamp_file.write_text(stamp)
    return tree, tar


def settle(cold: bool) -> None:
    """Flush dirty pages (so one run's writeback does not slow the next) and maybe drop caches."""
    os.sync()
    if cold:
        Path("/proc/sys/vm/drop_caches").write_text("3\n")


def timed(action: Callable[[], object], cold: bool) -> float:
    """Seconds ``action`` takes, after settling the page cache."""
    settle(cold)
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def bench_apply(driver: VfsDriver, tar: Path, scratch: Path, repeat: int, cold: bool) -> Pair:
    """``apply_diff`` of the tar versus ``tar -xf`` of it, interleaved."""
    pair = Pair("apply_diff vs tar -xf")
    for run in range(repeat):
        layer = f"apply{run}"
        driver.create(layer, None)

        def apply(layer: str = layer) -> None:
            with open(tar, "rb") as stream:
                driver.apply_diff(layer, None, stream)

        pair.ours.append(timed(apply, cold))
        driver.remove(layer)
        target = scratch / f"tar{run}"
        target.mkdir()
        untar = functools.partial(subprocess.run, ["tar", "-xf", tar, "-C", target], check=True)
        pair.reference.append(timed(untar, cold))
        shutil.rmtree(target)
    return pair


def bench_snapshot(driver: VfsDriver, tree: Path, scratch: Path, repeat: int, cold: bool) -> Pair:
    """A vfs snapshot of a layer versus ``cp -a`` of the same directory, interleaved."""
    pair = Pair("snapshot vs cp -a")
    driver.create("base", None)
    source = driver.get("base")
    try:
        subprocess.run(["cp", "-a", f"{tree}/.", source], check=True)
        for run in range(repeat):
            child = f"snap{run}"
            pair.ours.append(timed(functools.partial(driver.create, child, "base"), cold))
            driver.remove(child)
            target = scratch / f"cp{run}"
            copy = functools.partial(subprocess.run, ["cp", "-a", source, target], check=True)
            pair.reference.append(timed(copy, cold))
            shutil.rmtree(target)
    finally:
        driver.put("base")
        driver.remove("base")
    return pair


class Pair:
    """Times of one comparison: pydock's and the reference tool's, in seconds."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.ours: list[float] = []
        self.reference: list[float] = []

    def summary(self) -> dict[str, object]:
        """Medians, spreads (max - min) and the ratio of medians (pydock / reference)."""
        ours, reference = statistics.median(self.ours), statistics.median(self.reference)
        return {
            "name": self.name,
            "pydock_median_s": round(ours, 4),
            "pydock_spread_s": round(max(self.ours) - min(self.ours), 4),
            "reference_median_s": round(reference, 4),
            "reference_spread_s": round(max(self.reference) - min(self.reference), 4),
            "ratio": round(ours / reference, 3),
            "pydock_runs_s": [round(t, 4) for t in self.ours],
            "reference_runs_s": [round(t, 4) for t in self.reference],
        }


def print_table(rows: list[dict[str, object]], header: str) -> None:
    """Print the summaries as an aligned text table."""
    print(header)
    print(f"{'comparison':<24}{'pydock':>10}{'±':>8}{'reference':>12}{'±':>8}{'ratio':>8}")
    for row in rows:
        print(
            f"{row['name']!s:<24}{row['pydock_median_s']!s:>10}{row['pydock_spread_s']!s:>8}"
            f"{row['reference_median_s']!s:>12}{row['reference_spread_s']!s:>8}{row['ratio']!s:>8}"
        )
    print("times are medians in seconds; ± is max - min; ratio is pydock / reference")


def run(work: Path, args: argparse.Namespace) -> tuple[list[dict[str, object]], str]:
    """Prepare the data in ``work`` and run the chosen comparisons; rows and copy method."""
    work.mkdir(parents=True, exist_ok=True)
    tree, tar = prepare(work, args.files, args.big_mib)
    scratch = work / "scratch"
    shutil.rmtree(scratch, ignore_errors=True)
    scratch.mkdir()
    driver = VfsDriver(scratch / "vfs", {"copy": args.copy})
    rows = []
    try:
        if args.part in ("all", "apply"):
            rows.append(bench_apply(driver, tar, scratch, args.repeat, args.cold).summary())
        if args.part in ("all", "snapshot"):
            rows.append(bench_snapshot(driver, tree, scratch, args.repeat, args.cold).summary())
        return rows, dict(driver.status())["Copy"]
    finally:
        driver.cleanup()
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, prepare data, run the comparisons and print the results."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=20000, help="number of small files")
    parser.add_argument("--big-mib", type=int, default=512, help="size of the big file in MiB")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each side")
    parser.add_argument("--copy", default="auto", help="vfs copy option")
    parser.add_argument("--part", choices=("all", "apply", "snapshot"), default="all")
    parser.add_argument("--cold", action="store_true", help="drop page caches (root only)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    if args.cold and os.geteuid() != 0:
        parser.error("--cold needs root (it writes /proc/sys/vm/drop_caches)")
    work = args.dir or Path(tempfile.mkdtemp(prefix="bench-vfs-", dir="/var/tmp"))
    try:
        rows, copy_method = run(work, args)
    finally:
        if args.dir is None:  # keep generated data only where the caller asked for it
            shutil.rmtree(work, ignore_errors=True)
    facts = f"{args.files} files + {args.big_mib} MiB, repeat {args.repeat}, copy {copy_method}"
    if args.json:
        command = [
            "python",
            "benchmarks/bench_vfs.py",
            *(argv if argv is not None else sys.argv[1:]),
        ]
        print(json.dumps({"command": command, "setup": facts, "results": rows}, indent=2))
    else:
        print_table(rows, facts)
    return 0


if __name__ == "__main__":
    sys.exit(main())
