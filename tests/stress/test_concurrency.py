"""Eight loops of mixed commands on one root at once: no command fails, nothing is left over.

20 seconds in CI; ``PYDOCK_STRESS=long`` runs 5 minutes.
"""

from __future__ import annotations

import os
import random
import subprocess
import threading
import time
from pathlib import Path

import pytest

from .support import LONG, SEED, assert_nothing_left, clean_env, command, ok

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="containers, overlay2 and FUSE need uid 0 here"),
    pytest.mark.timeout(900 if LONG else 300),
]

LOOPS = 8
SECONDS = 300.0 if LONG else 20.0


def _steps(loop: int, rng: random.Random, layer: Path) -> list[list[str]]:
    """One round of a loop: its own tags, so that loops never race for one name."""
    storage = ("overlay2", "fuse", "vfs")[loop % 3]
    mine = f"loop{loop}"
    choice = rng.randrange(6)
    if choice == 0:
        return [["--storage", storage, "run", "--rm", "busybox", "sh", "-c", "echo x > /f"]]
    if choice == 1:
        return [["import", str(layer), f"{mine}:imported"], ["rmi", f"{mine}:imported"]]
    if choice == 2:
        return [["tag", "busybox", f"{mine}:tag"], ["inspect", f"{mine}:tag"],
                ["rmi", f"{mine}:tag"]]  # fmt: skip
    if choice == 3:
        return [
            # Running, so that another loop's system prune (which removes stopped containers,
            # as Docker's) leaves it to this loop.
            ["--storage", storage, "run", "-d", "--name", f"{mine}-c", "busybox", "sleep", "60"],
            ["--storage", storage, "commit", f"{mine}-c", f"{mine}:committed"],
            ["rm", "-f", f"{mine}-c"],
            ["rmi", f"{mine}:committed"],
        ]
    if choice == 4:
        return [["images"], ["ps", "-a"], ["system", "df"]]
    return [["system", "prune", "-f"]]


def test_eight_loops_of_mixed_commands(tmp_path: Path) -> None:
    root = tmp_path / "root"
    ok(root, "import", "builtin:busybox", "busybox")
    for storage in ("overlay2", "fuse", "vfs"):
        ok(root, "--storage", storage, "run", "--rm", "busybox", "true")
    layer = tmp_path / "layer.tar"
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "file").write_bytes(random.Random(SEED).randbytes(300_000))
    subprocess.run(["tar", "-cf", str(layer), "-C", str(tmp_path / "data"), "."], check=True)
    env = clean_env()
    failures: list[str] = []
    counts = [0] * LOOPS
    deadline = time.monotonic() + SECONDS

    def loop(index: int) -> None:
        rng = random.Random(f"{SEED}-{index}")
        while time.monotonic() < deadline and len(failures) < 5:
            for args in _steps(index, rng, layer):
                done = subprocess.run(
                    command(root, *args), capture_output=True, text=True, timeout=120, env=env
                )
                counts[index] += 1
                if done.returncode != 0:
                    failures.append(f"loop {index}: {' '.join(args)}: {done.stderr.strip()}")
                    return

    threads = [threading.Thread(target=loop, args=(index,)) for index in range(LOOPS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=SECONDS + 300)
    print(f"{sum(counts)} commands in {LOOPS} loops, {len(failures)} failures")
    assert failures == []
    assert sum(counts) > LOOPS * 3
    assert_nothing_left(root)
    assert ok(root, "images", "-q").split() == [ok(root, "images", "-q").split()[0]]
