"""Benchmark the overlay2 driver against the tools a user would pick instead, in one run.

Three pairs, each interleaved (A B A B ...) on the same seeded data:

1. ``get`` + ``put`` of a ``--depth``-layer chain (pydock mounts and unmounts the overlay)
   against ``mount -t overlay`` + ``umount`` of the same lower dirs by the mount command;
2. ``apply_diff`` of a layer tar (``--files`` small files + one ``--big-mib`` MiB file) into a
   new overlay2 layer against ``tar -xf`` of the same tar into an empty directory;
3. ``diff`` of a layer whose upper dir holds ``--changed`` changed files against ``tar -cf`` of
   the same upper dir.

Usage: ``python benchmarks/bench_overlay2.py [--dir DIR] [--depth 100] [--files 20000]
[--big-mib 512] [--changed 10000] [--repeat 5] [--json]``. Needs root (mounts).
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
from pathlib import Path

import graphdriver

SEED = 4242


def timed(func: Callable[[], object]) -> float:
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def make_tree(root: Path, files: int, big_mib: int, rng: random.Random) -> None:
    for i in range(files):
        directory = root / f"d{i // 100:03d}"
        directory.mkdir(parents=True, exist_ok=True)
        (directory / f"f{i:05d}").write_bytes(rng.randbytes(rng.randrange(0, 4096)))
    if big_mib:
        chunk = rng.randbytes(1 << 20)
        with open(root / "big", "wb") as handle:
            for _ in range(big_mib):
                handle.write(chunk)


def bench_mount(work: Path, depth: int, repeat: int) -> dict[str, list[float]]:
    driver = graphdriver.get_driver("overlay2", work / "home-mount")
    ids: list[str] = []
    for k in range(depth):
        layer_id = f"m{k:04d}"
        driver.create(layer_id, ids[-1] if ids else None)
        (driver.layout.diff_dir(layer_id) / f"file{k}").write_text(str(k))  # type: ignore[attr-defined]
        ids.append(layer_id)
    top = ids[-1]
    # Short links relative to the home, as moby does, so the option string fits in a page.
    lowers = ":".join(driver.layout.lower_links(top))  # type: ignore[attr-defined]
    home = work / "home-mount"
    target = work / "reference-merged"
    upper, wdir = work / "reference-upper", work / "reference-work"
    for path in (target, upper, wdir):
        path.mkdir()
    options = f"lowerdir={lowers},upperdir={upper},workdir={wdir}"
    samples: dict[str, list[float]] = {"pydock get+put": [], "mount -t overlay + umount": []}

    def ours() -> None:
        driver.get(top)
        driver.put(top)

    def reference() -> None:
        subprocess.run(
            ["mount", "-t", "overlay", "overlay", "-o", options, target], check=True, cwd=home
        )
        subprocess.run(["umount", target], check=True)

    get_only: list[float] = []
    for _ in range(repeat):
        samples["pydock get+put"].append(timed(ours))
        samples["mount -t overlay + umount"].append(timed(reference))
        get_only.append(timed(lambda: driver.get(top)))
        driver.put(top)
    samples["pydock get alone"] = get_only
    return samples


def bench_apply(work: Path, files: int, big_mib: int, repeat: int) -> dict[str, list[float]]:
    source = work / "apply-src"
    make_tree(source, files, big_mib, random.Random(SEED))
    tar_path = work / "layer.tar"
    subprocess.run(["tar", "-C", source, "-cf", tar_path, "."], check=True)
    shutil.rmtree(source)
    driver = graphdriver.get_driver("overlay2", work / "home-apply")
    samples: dict[str, list[float]] = {"pydock apply_diff": [], "tar -xf": []}
    for i in range(repeat):
        layer_id = f"a{i}"
        driver.create(layer_id, None)
        with open(tar_path, "rb") as stream:
            samples["pydock apply_diff"].append(
                timed(lambda s=stream, lid=layer_id: driver.apply_diff(lid, None, s))
            )
        target = work / f"tar-x-{i}"
        target.mkdir()
        samples["tar -xf"].append(
            timed(lambda t=target: subprocess.run(["tar", "-C", t, "-xf", tar_path], check=True))
        )
        driver.remove(layer_id)
        shutil.rmtree(target)
    return samples


def bench_diff(work: Path, changed: int, repeat: int) -> dict[str, list[float]]:
    driver = graphdriver.get_driver("overlay2", work / "home-diff")
    driver.create("base", None)
    make_tree(driver.layout.diff_dir("base"), changed, 0, random.Random(SEED + 1))  # type: ignore[attr-defined]
    driver.create_read_write("upper", "base")
    merged = driver.get("upper")
    rng = random.Random(SEED + 2)
    for directory in sorted(p for p in merged.iterdir() if p.is_dir()):
        for path in sorted(directory.iterdir()):
            path.write_bytes(rng.randbytes(rng.randrange(1, 4096)))
    driver.put("upper")
    upper = driver.layout.diff_dir("upper")  # type: ignore[attr-defined]
    samples: dict[str, list[float]] = {"pydock diff": [], "tar -cf": []}

    out_path = work / "diff-out.tar"

    def ours() -> None:
        with driver.diff("upper", "base") as stream, open(out_path, "wb") as out:
            shutil.copyfileobj(stream, out)

    def reference() -> None:
        # Into a real file: GNU tar skips reading file contents when writing to /dev/null.
        subprocess.run(["tar", "-C", upper, "-cf", out_path, "."], check=True)

    for _ in range(repeat):
        samples["pydock diff"].append(timed(ours))
        samples["tar -cf"].append(timed(reference))
    return samples


def report(title: str, samples: dict[str, list[float]], ours: str, ref: str) -> dict[str, object]:
    print(f"\n{title}")
    for name, values in samples.items():
        median = statistics.median(values)
        spread = (max(values) - min(values)) / median if median else 0.0
        print(f"  {name:<28} median {median * 1000:9.1f} ms   spread {spread:5.1%}")
    ratio = statistics.median(samples[ours]) / statistics.median(samples[ref])
    print(f"  ratio {ours} / {ref}: {ratio:.2f}x")
    return {"samples": samples, "ratio": ratio, "ours": ours, "reference": ref}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, default=None)
    parser.add_argument("--depth", type=int, default=100)
    parser.add_argument("--files", type=int, default=20000)
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--changed", type=int, default=10000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if os.geteuid() != 0:
        print("bench_overlay2: needs root to mount overlays", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="bench-overlay2-", dir=args.dir))
    results: dict[str, object] = {}
    try:
        results["mount"] = report(
            f"mount of a {args.depth}-layer chain",
            bench_mount(work, args.depth, args.repeat),
            "pydock get+put",
            "mount -t overlay + umount",
        )
        results["apply"] = report(
            f"apply_diff of {args.files} files + {args.big_mib} MiB",
            bench_apply(work, args.files, args.big_mib, args.repeat),
            "pydock apply_diff",
            "tar -xf",
        )
        results["diff"] = report(
            f"diff of {args.changed} changed files",
            bench_diff(work, args.changed, args.repeat),
            "pydock diff",
            "tar -cf",
        )
    finally:
        subprocess.run(["umount", "-R", "-l", work], stderr=subprocess.DEVNULL, check=False)
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
