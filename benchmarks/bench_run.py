"""Benchmark ``pydock run --rm busybox /bin/true`` per driver against podman and crun, in one run.

For every storage driver that works here, interleaved (A B C A B C ...), each sample a fresh
process as a user would type it:

* ``pydock --storage DRIVER run --rm busybox /bin/true``
* ``podman --storage-driver DRIVER run --rm --network none IMAGE /bin/true`` on the same
  busybox root file system, imported into a private podman store (fuse: podman's overlay with
  ``fuse-overlayfs`` as mount program); skipped, with the reason, when podman cannot run here
* ``crun run`` of an unpacked bundle of the same root file system (the runtime alone, no
  storage), and ``python -c pass`` (the interpreter's own start-up)

It reports medians and ratios (pydock / podman, pydock / crun, and pydock against the issue's
goal, 2 x crun + Python start-up), then where pydock's time goes: import time by package
(``python -X importtime``) and the main steps of one run (``cProfile``).

Usage: ``python benchmarks/bench_run.py [--repeat 10] [--drivers overlay2,vfs,fuse] [--dir DIR]
[--json]``. Needs root (podman and crun as root; pydock's mounts).
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import graphdriver
from graphdriver.mountutil import mounts_under
from pydock.bench.podman import PodmanError, PodmanStore, hide_hybrid_cgroup2
from pydock.image.builtin import write_busybox_rootfs
from runtime import linux

PODMAN_DRIVERS = {"overlay2": "overlay", "vfs": "vfs", "fuse": "overlay"}
# Functions whose cumulative time tells the steps of one `run --rm` apart.
STEPS = (
    ("open store + recover", "engine.py", "__init__"),
    ("prepare image layers", "storage.py", "prepare_image"),
    ("create rw layer", "storage.py", "create_rw"),
    ("mount rootfs (driver get)", "storage.py", "mount"),
    ("runtime create (fork, namespaces, rootfs)", "launch.py", "create"),
    ("exec + wait for exit", "attachment-pump", ""),
    ("release mount + record exit", "lifecycle.py", "on_exit"),
    ("remove container", "manager.py", "remove"),
)


def pydock_argv(root: Path, driver: str, *args: str) -> list[str]:
    """A pydock command on the benchmark's root."""
    return [sys.executable, "-m", "pydock", "--root", str(root), "--storage", driver, *args]


def run_quiet(argv: Sequence[str], cwd: Path | None = None) -> subprocess.CompletedProcess[bytes]:
    """Run ``argv`` with output captured (checked by the caller)."""
    return subprocess.run(list(argv), capture_output=True, timeout=120, check=False, cwd=cwd)


def timed(argv: Sequence[str]) -> float:
    """Wall time of one command that must succeed."""
    start = time.perf_counter()
    done = subprocess.run(
        list(argv), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120, check=False
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.decode()[-500:]}")
    return elapsed


# -- set-up -------------------------------------------------------------------------------------


def make_rootfs_tar(work: Path) -> Path:
    """The built-in busybox root file system as a tar (the same bytes pydock imports)."""
    target = work / "busybox.tar"
    with open(target, "wb") as out:
        write_busybox_rootfs(out)
    return target


STORES: list[PodmanStore] = []


def setup_podman(work: Path, driver: str) -> tuple[list[str] | None, str]:
    """The podman command for ``driver`` with the image imported, or why not."""
    if shutil.which("podman") is None:
        return None, "podman not installed"
    mount_program = None
    if driver == "fuse":
        mount_program = shutil.which("fuse-overlayfs")
        if mount_program is None:
            return None, "fuse-overlayfs not installed (podman's FUSE overlay)"
    store = PodmanStore(work / f"podman-{driver}", PODMAN_DRIVERS[driver], mount_program)
    STORES.append(store)
    try:
        return store.prepare(), ""
    except PodmanError as exc:
        return None, str(exc)


def setup_crun(work: Path, tar: Path) -> tuple[list[str] | None, str]:
    """A ``crun run`` command of an unpacked bundle, or why not."""
    if shutil.which("crun") is None:
        return None, "crun not installed"
    bundle = work / "bundle"
    (bundle / "rootfs").mkdir(parents=True)
    # GNU tar: Debian's Python 3.11.2 has no extraction filters (3.11.4 added them).
    run_quiet(["tar", "-xf", str(tar), "-C", str(bundle / "rootfs")]).check_returncode()
    spec = run_quiet(["crun", "spec"], cwd=bundle)
    if spec.returncode != 0:
        return None, f"crun spec failed: {spec.stderr.decode().strip()}"
    config = json.loads((bundle / "config.json").read_text())
    config["process"]["args"] = ["/bin/true"]
    config["process"]["terminal"] = False
    (bundle / "config.json").write_text(json.dumps(config))
    # No limits are asked for, so no cgroup (pydock creates none either); crun also refuses
    # cgroups on hybrid hosts whose cgroup2 tree has controllers.
    return ["crun", "--cgroup-manager=disabled", "run", "--bundle", str(bundle)], ""


# -- measuring ----------------------------------------------------------------------------------


def measure(commands: dict[str, list[str]], repeat: int) -> dict[str, list[float]]:
    """Interleaved samples of every command (the crun one gets a fresh id each time)."""
    samples: dict[str, list[float]] = {label: [] for label in commands}
    for round_ in range(repeat):
        for label, argv in commands.items():
            if argv[0] == "crun":
                argv = [*argv, f"pydock-bench-{os.getpid()}-{round_}"]
            samples[label].append(timed(argv))
    return samples


def import_profile(root: Path, driver: str) -> list[tuple[str, float]]:
    """Import time (ms, each module's own time) of one run, summed by package, heaviest first.

    pydock's and the drivers' modules are summed by subpackage (``pydock.containers``).
    """
    argv = pydock_argv(root, driver, "run", "--rm", "busybox", "/bin/true")
    done = run_quiet([argv[0], "-X", "importtime", *argv[1:]])
    totals: dict[str, float] = {}
    for line in done.stderr.decode().splitlines():
        match = re.match(r"import time:\s+(\d+) \|\s+\d+ \| *(\S+)", line)
        if match is None:
            continue
        parts = match.group(2).split(".")
        package = ".".join(parts[:2]) if parts[0] in ("pydock", "drivers") else parts[0]
        totals[package] = totals.get(package, 0.0) + int(match.group(1)) / 1000
    ranked = sorted(totals.items(), key=lambda item: -item[1])
    return [("(all imports)", sum(totals.values())), *ranked[:15]]


def step_profile(root: Path, driver: str) -> list[tuple[str, float]]:
    """Time (ms) of the main steps of one ``run --rm``, profiled in this process."""
    from pydock.cli import main

    profiler = cProfile.Profile()
    null = os.open(os.devnull, os.O_WRONLY)
    saved = os.dup(1)
    os.dup2(null, 1)
    try:
        profiler.runcall(main, ["--root", str(root), "--storage", driver, "run", "--rm",
                                "busybox", "/bin/true"])  # fmt: skip
    finally:
        os.dup2(saved, 1)
        os.close(saved)
        os.close(null)
    stats = pstats.Stats(profiler)
    found: list[tuple[str, float]] = []
    entries = stats.stats  # type: ignore[attr-defined]
    total = max(value[3] for value in entries.values())
    for label, filename, function in STEPS:
        if filename == "attachment-pump":
            cumulative = sum(
                value[3]
                for key, value in entries.items()
                if key[2] == "pump" and "attach" in key[0]
            )
        else:
            cumulative = sum(
                value[3]
                for key, value in entries.items()
                if key[0].endswith(filename) and key[2] == function
            )
        found.append((label, cumulative * 1000))
    found.append(("whole main() in process (no interpreter start)", total * 1000))
    return found


# -- report -------------------------------------------------------------------------------------


@dataclass
class Report:
    """What one benchmark run found."""

    repeat: int
    medians: dict[str, float]
    ratios: dict[str, float]
    skipped: dict[str, str]
    steps: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    imports: dict[str, list[tuple[str, float]]] = field(default_factory=dict)
    load_average: tuple[float, float, float] = (0.0, 0.0, 0.0)
    note: str = ""


def report(
    samples: dict[str, list[float]], skipped: dict[str, str], drivers: list[str], repeat: int
) -> Report:
    """Medians and the ratios the issue asks for."""
    medians = {label: statistics.median(values) for label, values in samples.items()}
    ratios: dict[str, float] = {}
    crun = medians.get("crun run (bundle)")
    python = medians["python -c pass"]
    for driver in drivers:
        ours = medians[f"pydock {driver}"]
        podman = medians.get(f"podman {driver}")
        if podman:
            ratios[f"pydock {driver} / podman {driver}"] = ours / podman
        if crun:
            ratios[f"pydock {driver} / crun"] = ours / crun
            ratios[f"pydock {driver} / (2 x crun + python start-up)"] = ours / (2 * crun + python)
    return Report(repeat, medians, ratios, skipped, load_average=os.getloadavg())


def main(argv: Sequence[str] | None = None) -> int:
    """Set up, measure, profile, report."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--drivers", help="comma-separated (default: every driver that works)")
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench_run needs root (podman and crun as root, pydock's mounts)")
    available = [name for name in graphdriver.available() if name in PODMAN_DRIVERS]
    drivers = args.drivers.split(",") if args.drivers else available
    note = hide_hybrid_cgroup2()
    work = Path(tempfile.mkdtemp(prefix="bench-run-", dir=args.dir))
    try:
        root = work / "pydock"
        tar = make_rootfs_tar(work)
        commands: dict[str, list[str]] = {"python -c pass": [sys.executable, "-c", "pass"]}
        skipped: dict[str, str] = {}
        crun, why = setup_crun(work, tar)
        if crun is None:
            skipped["crun"] = why
        else:
            commands["crun run (bundle)"] = crun
        for driver in drivers:
            run_quiet(pydock_argv(root, driver, "import", "builtin:busybox", "busybox"))
            warm = run_quiet(pydock_argv(root, driver, "run", "--rm", "busybox", "/bin/true"))
            if warm.returncode != 0:
                skipped[f"pydock {driver}"] = warm.stderr.decode().strip()
                continue
            commands[f"pydock {driver}"] = pydock_argv(root, driver, "run", "--rm", "busybox",
                                                       "/bin/true")  # fmt: skip
            podman, why = setup_podman(work, driver)
            if podman is None:
                skipped[f"podman {driver}"] = why
            else:
                commands[f"podman {driver}"] = podman
        drivers = [d for d in drivers if f"pydock {d}" in commands]
        samples = measure(commands, args.repeat)
        result = report(samples, skipped, drivers, args.repeat)
        result.note = note
        result.imports = {d: import_profile(root, d) for d in drivers}
        result.steps = {d: step_profile(root, d) for d in drivers}
        if args.json:
            print(json.dumps(asdict(result), indent=2))
        else:
            print_report(result)
    finally:
        for store in STORES:
            store.close()
        detach_mounts_under(work)
        shutil.rmtree(work, ignore_errors=True)
    return 0


def detach_mounts_under(work: Path) -> None:
    """Detach what podman left mounted below ``work`` (its store), so the tree can go."""
    for target in mounts_under(work):
        with contextlib.suppress(OSError):
            linux.umount2(target, linux.MNT_DETACH)


def print_report(result: Report) -> None:
    """The report as text."""
    load = ", ".join(f"{value:.2f}" for value in result.load_average)
    print(f"samples per command: {result.repeat} (interleaved); load average {load}")
    if result.note:
        print(f"note: {result.note}")
    print("\nmedian wall time:")
    for label, value in result.medians.items():
        print(f"  {label:<34} {value * 1000:8.1f} ms")
    print("\nratios:")
    for label, ratio in result.ratios.items():
        print(f"  {label:<48} {ratio:6.2f}")
    for label, why in result.skipped.items():
        print(f"  skipped {label}: {why}")
    for driver, steps in result.steps.items():
        print(f"\nwhere one `run --rm` on {driver} goes (cProfile, ms, cumulative):")
        for label, value in steps:
            print(f"  {label:<48} {value:8.1f}")
    for driver, imports in result.imports.items():
        print(f"\nimport time of `run --rm` on {driver} (python -X importtime, ms, by package):")
        for name, value in imports:
            print(f"  {name:<48} {value:8.1f}")


if __name__ == "__main__":
    sys.exit(main())
