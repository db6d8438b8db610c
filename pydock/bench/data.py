"""The seeded data every backend is measured on: one tree, the same tree as a layer tar.

The tree holds ``files`` small files (0 to 8 KiB of random bytes, 50 to a directory, two levels
deep) and one ``big_mib`` MiB file, ``big.bin``. The same seed gives the same bytes on every
machine, so two runs of one size measure the same work. Generated data is kept in the work
directory with a stamp and reused while the stamp matches.

The net workloads need none of that tree: their site is a directory of two seeded files that a
container's web server publishes, ``small.bin`` (1 KiB) and ``big.bin`` (``big_mib`` MiB).
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path

SEED = 20261128
DATA_VERSION = 1
FILES_PER_DIR = 50
SMALL_MAX = 8 << 10
BIG_BLOCK = 4 << 20
BIG_NAME = "big.bin"
SMALL_NAME = "small.bin"  # the net workloads' small file
SMALL_BYTES = 1024


@dataclass(frozen=True)
class Size:
    """How much work one ``--size`` means."""

    files: int  # small files in the tree and the layer tar
    big_mib: int  # the one big file read sequentially and copied up
    create: int  # small files the create workload writes
    changed: int  # files changed before the diff workload
    depths: tuple[int, ...]  # layer-chain depths the mount workload measures
    connections: int = 500  # connections the net-connect workload makes

    def describe(self) -> dict[str, object]:
        return asdict(self)


SIZES: dict[str, Size] = {
    "small": Size(files=2000, big_mib=64, create=1000, changed=500, depths=(1, 20),
                  connections=500),
    "medium": Size(files=20000, big_mib=256, create=5000, changed=5000, depths=(1, 50, 100),
                   connections=1000),
    "large": Size(files=100000, big_mib=1024, create=20000, changed=20000,
                  depths=(1, 100, 500), connections=2000),
}  # fmt: skip


@dataclass(frozen=True)
class Dataset:
    """The generated data of one size."""

    tree: Path  # the files as a plain directory
    tar: Path  # the same files as a layer tar (POSIX format, sorted)
    paths: tuple[str, ...]  # relative paths of the small files, in creation order
    size: Size

    @property
    def big(self) -> str:
        return BIG_NAME


def small_path(index: int) -> str:
    """Relative path of small file ``index``."""
    directory = index // FILES_PER_DIR
    return f"d{directory // 20:03d}/e{directory % 20:02d}/f{index:06d}"


def generate(root: Path, size: Size) -> list[str]:
    """Write the tree into the empty directory ``root``; returns the small files' paths."""
    rng = random.Random(SEED)
    paths = []
    for index in range(size.files):
        rel = small_path(index)
        target = root / rel
        if index % FILES_PER_DIR == 0:
            target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(rng.randbytes(rng.randint(0, SMALL_MAX)))
        os.chmod(target, rng.choice((0o644, 0o755, 0o600)))
        paths.append(rel)
    block = rng.randbytes(BIG_BLOCK)
    with open(root / BIG_NAME, "wb") as out:
        left = size.big_mib << 20
        while left > 0:
            cut = rng.randrange(BIG_BLOCK)  # rotate, so the file is not one block repeated
            piece = (block[cut:] + block[:cut])[:left]
            out.write(piece)
            left -= len(piece)
    return paths


def prepare(work: Path, name: str) -> Dataset:
    """The dataset of size ``name`` under ``work/data-NAME``, generated unless already there."""
    size = SIZES[name]
    base = work / f"data-{name}"
    tree, tar, stamp_file, index = base / "tree", base / "layer.tar", base / "stamp", base / "paths"
    stamp = f"{DATA_VERSION} {SEED} {size}"
    if stamp_file.exists() and stamp_file.read_text() == stamp and tar.exists():
        return Dataset(tree, tar, tuple(index.read_text().split("\n")), size)
    shutil.rmtree(base, ignore_errors=True)
    tree.mkdir(parents=True)
    paths = generate(tree, size)
    subprocess.run(
        ["tar", "--format=posix", "--sort=name", "--numeric-owner", "-cf", str(tar), "-C",
         str(tree), "."],
        check=True, timeout=600,
    )  # fmt: skip
    index.write_text("\n".join(paths))
    stamp_file.write_text(stamp)
    return Dataset(tree, tar, tuple(paths), size)


@dataclass(frozen=True)
class Site:
    """The directory the net workloads' server publishes, and the sizes of its two files."""

    root: Path
    small_bytes: int
    big_bytes: int


def prepare_site(work: Path, size: Size) -> Site:
    """``work/www-<MiB>m`` with the seeded ``small.bin`` and ``big.bin`` (kept while complete)."""
    big_bytes = size.big_mib << 20
    root = work / f"www-{size.big_mib}m"
    small, big = root / SMALL_NAME, root / BIG_NAME
    if small.is_file() and big.is_file() and big.stat().st_size == big_bytes:
        return Site(root, SMALL_BYTES, big_bytes)
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True, exist_ok=True)
    rng = random.Random(SEED + 1)
    small.write_bytes(rng.randbytes(SMALL_BYTES))
    block = rng.randbytes(BIG_BLOCK)
    part = big.with_name(BIG_NAME + ".part")
    with open(part, "wb") as out:
        left = big_bytes
        while left > 0:
            cut = rng.randrange(BIG_BLOCK)
            piece = (block[cut:] + block[:cut])[:left]
            out.write(piece)
            left -= len(piece)
    part.replace(big)  # a run cut short leaves no big.bin of the wrong size
    for path in (root, small, big):
        path.chmod(0o755 if path.is_dir() else 0o644)  # httpd serves as any user
    return Site(root, SMALL_BYTES, big_bytes)


class DataSource:
    """The dataset of one size, generated (or found) on first use only.

    Workloads that need no data (mounting a chain of one-file layers, starting a container)
    then run without waiting for thousands of files to be written.
    """

    def __init__(self, work: Path, name: str) -> None:
        self.work, self.name, self.size = work, name, SIZES[name]
        self._dataset: Dataset | None = None
        self._site: Site | None = None

    def get(self) -> Dataset:
        if self._dataset is None:
            self._dataset = prepare(self.work, self.name)
        return self._dataset

    def site(self) -> Site:
        """The files the net workloads serve (written on first use)."""
        if self._site is None:
            self._site = prepare_site(self.work, self.size)
        return self._site


def small_tar(target: Path, name: str, content: bytes) -> Path:
    """A layer tar holding one file ``name`` (the layers of a mount chain)."""
    import io
    import tarfile

    with tarfile.open(target, "w", format=tarfile.PAX_FORMAT) as archive:
        info = tarfile.TarInfo(name)
        info.size = len(content)
        info.mode = 0o644
        archive.addfile(info, io.BytesIO(content))
    return target
