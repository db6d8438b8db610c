"""Benchmark ``pydock load`` and ``pydock pull`` against ``podman load`` and ``podman pull``.

The image (seeded): the built-in busybox layer, a layer of ``--files`` small files, a layer
with one ``--big-mib`` MiB file of random bytes, and a layer deleting half the small files and
the big file (whiteouts). It is written once as a docker-archive with uncompressed layers.

1. load: ``pydock --storage DRIVER load -i ARCHIVE`` into a new root, against
   ``podman --storage-driver DRIVER load -i ARCHIVE`` into a new root;
2. pull: the image is pushed once (by pydock, gzip layers) to a local ``docker-registry`` on
   127.0.0.1; then ``pydock pull`` against ``podman pull``, each into a new root.

Runs are interleaved (pydock, podman, pydock, podman, ...) per driver (pydock's vfs against
podman's vfs, pydock's overlay2 against podman's overlay); the median of ``--repeat`` runs
and the ratio pydock/podman are printed (below 1.0: pydock is faster). Podman is skipped with
the reason if it cannot run here. Needs root (overlay mounts) and about 3 GiB in ``--dir``.

Usage: ``python benchmarks/bench_images.py [--dir DIR] [--files 20000] [--big-mib 512]
[--repeat 3] [--drivers vfs,overlay2] [--no-pull] [--json]``
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from pydock.image import builtin
from pydock.image.content import digest_bytes

SEED = 20_000
PODMAN_DRIVERS = {"vfs": "vfs", "overlay2": "overlay"}
TIMEOUT = 1800


# -- the image ------------------------------------------------------------------------------------


def _info(name: str, size: int = 0, *, directory: bool = False) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime = 1_700_000_000
    return info


def small_files_layer(path: Path, files: int, rng: random.Random) -> list[str]:
    names = []
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("data", directory=True))
        for index in range(files):
            if index % 100 == 0:
                tar.addfile(_info(f"data/d{index // 100:03d}", directory=True))
            name = f"data/d{index // 100:03d}/f{index:05d}"
            blob = rng.randbytes(rng.randrange(0, 4096))
            tar.addfile(_info(name, len(blob)), io.BytesIO(blob))
            names.append(name)
    return names


class _RandomStream(io.RawIOBase):
    """``size`` seeded random bytes, made as they are read."""

    def __init__(self, size: int, rng: random.Random) -> None:
        self.left = size
        self.rng = rng

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        count = min(len(buffer), self.left, 1 << 20)
        buffer[:count] = self.rng.randbytes(count)
        self.left -= count
        return count


def big_file_layer(path: Path, mib: int, rng: random.Random) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(_info("big", directory=True))
        size = mib << 20
        tar.addfile(_info("big/file", size), io.BufferedReader(_RandomStream(size, rng), 1 << 20))


def deletions_layer(path: Path, doomed: list[str]) -> None:
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for name in ["big", *sorted(doomed)]:
            parent, _, base = name.rpartition("/")
            whiteout = f"{parent}/.wh.{base}" if parent else f".wh.{base}"
            tar.addfile(_info(whiteout, 0))


def sha256_file(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return "sha256:" + hasher.hexdigest()


def build_archive(work: Path, files: int, big_mib: int) -> Path:
    """Write the benchmark image as a docker-archive; returns its path."""
    rng = random.Random(SEED)
    layers = [work / f"layer{index}.tar" for index in range(4)]
    with layers[0].open("wb") as out:
        builtin.write_busybox_rootfs(out)
    names = small_files_layer(layers[1], files, rng)
    big_file_layer(layers[2], big_mib, rng)
    deletions_layer(layers[3], names[::2])
    diff_ids = [sha256_file(layer) for layer in layers]
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/bin/sh"]},
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "history": [
                {"created": "2024-01-01T00:00:00Z", "created_by": f"layer {index}"}
                for index in range(4)
            ],
        },
        separators=(",", ":"),
    ).encode()
    archive = work / "image.tar"
    with tarfile.open(archive, "w", format=tarfile.PAX_FORMAT) as tar:
        config_name = digest_bytes(config).partition(":")[2] + ".json"
        tar.addfile(_info(config_name, len(config)), io.BytesIO(config))
        members = []
        for layer, diff_id in zip(layers, diff_ids, strict=True):
            name = diff_id.partition(":")[2] + ".tar"
            tar.add(layer, arcname=name)
            members.append(name)
        manifest = [{"Config": config_name, "RepoTags": ["bench/image:1"], "Layers": members}]
        data = json.dumps(manifest).encode()
        tar.addfile(_info("manifest.json", len(data)), io.BytesIO(data))
    for layer in layers:
        layer.unlink()
    return archive


# -- tools ----------------------------------------------------------------------------------------


def run(command: list[str]) -> None:
    done = subprocess.run(command, capture_output=True, timeout=TIMEOUT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {done.stderr.decode()[-2000:]}")


def pydock(root: Path, driver: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "pydock", "--root", str(root), "--storage", driver, *args]


def podman_runroot(root: Path) -> Path:
    # podman refuses a run root longer than 50 characters.
    return Path("/run") / f"bench-{abs(hash(str(root))) % 10**8}"


def podman(root: Path, driver: str, *args: str) -> list[str]:
    runroot = podman_runroot(root)
    return [
        "podman", "--root", str(root), "--runroot", str(runroot),
        "--storage-driver", PODMAN_DRIVERS[driver], *args,
    ]  # fmt: skip


def podman_problem(work: Path, driver: str) -> str | None:
    """Why podman cannot run with ``driver`` here, or ``None``."""
    if shutil.which("podman") is None:
        return "podman is not installed"
    root = work / f"podman-probe-{driver}"
    try:
        done = subprocess.run(podman(root, driver, "info"), capture_output=True, timeout=120)
    finally:
        wipe(root, podman_root=True, driver=driver)
    if done.returncode != 0:
        return done.stderr.decode().strip().splitlines()[-1] if done.stderr else "podman failed"
    return None


def wipe(root: Path, *, podman_root: bool = False, driver: str = "vfs") -> None:
    if podman_root and root.exists():
        subprocess.run(podman(root, driver, "system", "reset", "-f"), capture_output=True,
                       timeout=600)  # fmt: skip
    for path in (root, podman_runroot(root)):
        if path.exists():
            subprocess.run(["umount", "-R", "-l", str(path)], capture_output=True, timeout=60)
            shutil.rmtree(path, ignore_errors=True)


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    run(command)
    return time.perf_counter() - start


# -- registry -------------------------------------------------------------------------------------


def start_registry(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = work / "registry.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\n"
        f"storage:\n  filesystem:\n    rootdirectory: {work / 'registry'}\n"
        f"http:\n  addr: 127.0.0.1:{port}\n  secret: bench\n"
    )
    process = subprocess.Popen(
        ["docker-registry", "serve", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    address = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://{address}/v2/", timeout=1):
                return process, address
        except (OSError, urllib.error.HTTPError):
            time.sleep(0.1)
    process.kill()
    raise SystemExit("docker-registry did not start")


# -- main -----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dir", type=Path, help="work directory (default: a temporary one)")
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--big-mib", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--drivers", default="vfs,overlay2")
    parser.add_argument("--no-pull", action="store_true", help="skip the pull benchmark")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-images-", dir=args.dir or "/var/tmp"))
    results: dict[str, dict[str, object]] = {}
    registry: subprocess.Popen[bytes] | None = None
    try:
        started = time.perf_counter()
        archive = build_archive(work, args.files, args.big_mib)
        size = archive.stat().st_size
        took = time.perf_counter() - started
        print(f"image: {size / 2**20:.0f} MiB archive, built in {took:.1f}s")
        drivers = [name for name in args.drivers.split(",") if name]
        problems = {driver: podman_problem(work, driver) for driver in drivers}
        for driver, problem in problems.items():
            if problem:
                print(f"podman ({PODMAN_DRIVERS[driver]}) skipped: {problem}")
        phases = [("load", ["load", "-i", str(archive)], ["load", "-i", str(archive)])]
        if not args.no_pull:
            registry, address = start_registry(work)
            source = work / "push-root"
            run(pydock(source, "vfs", "load", "-q", "-i", str(archive)))
            reference = f"{address}/bench/image:1"
            run(pydock(source, "vfs", "tag", "bench/image:1", reference))
            run(pydock(source, "vfs", "push", "-q", "--tls-verify=false", reference))
            wipe(source)
            pull = ["pull", "-q", "--tls-verify=false", reference]
            phases.append(("pull", pull, pull))
        for phase, ours, theirs in phases:
            for driver in drivers:
                mine: list[float] = []
                other: list[float] = []
                root = work / "pydock-root"
                their_root = work / "podman-root"
                for _ in range(args.repeat):
                    wipe(root)
                    mine.append(timed(pydock(root, driver, *ours)))
                    wipe(root)
                    if not problems[driver]:
                        wipe(their_root, podman_root=True, driver=driver)
                        other.append(timed(podman(their_root, driver, *theirs)))
                        wipe(their_root, podman_root=True, driver=driver)
                ours_median = statistics.median(mine)
                entry: dict[str, object] = {"pydock": mine, "pydock_median": ours_median}
                line = f"{phase:5} {driver:9} pydock {ours_median:7.2f}s"
                if other:
                    theirs_median = statistics.median(other)
                    ratio = ours_median / theirs_median
                    entry |= {"podman": other, "podman_median": theirs_median, "ratio": ratio}
                    line += f"  podman {theirs_median:7.2f}s  ratio {ratio:.2f}x"
                else:
                    line += f"  podman skipped: {problems[driver]}"
                results[f"{phase}/{driver}"] = entry
                print(line, flush=True)
    finally:
        if registry is not None:
            registry.kill()
            registry.wait(timeout=30)
        for name in ("pydock-root", "podman-root", "push-root"):
            wipe(work / name, podman_root=name == "podman-root")
        shutil.rmtree(work, ignore_errors=True)
    if args.json:
        print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    raise SystemExit(main())
