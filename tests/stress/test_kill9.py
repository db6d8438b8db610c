"""kill -9 at random moments of import, load, pull, commit, rmi, run (every driver) and prune:
the next command works, nothing that existed is lost, nothing is left over.

Short in CI (a few points per operation); ``PYDOCK_STRESS=long`` runs 100 points in all.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from integration.registry_support import running_registry

from .support import LONG, SEED, assert_nothing_left, ok, pydock, run_and_kill

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="containers, overlay2 and FUSE need uid 0 here"),
    pytest.mark.timeout(1800 if LONG else 600),
]

POINTS = 13 if LONG else 2  # kill points per operation (8 operations: 104 in the long form)
DRIVERS = ("overlay2", "fuse", "vfs")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """Inputs every operation needs: a layer tar, an image archive, a registry image."""
    base = tmp_path_factory.mktemp("kill9")
    maker = base / "maker"
    ok(maker, "import", "builtin:busybox", "busybox")
    archive = base / "busybox.tar"
    ok(maker, "save", "-o", str(archive), "busybox")
    rng = random.Random(SEED)
    files = base / "files"
    files.mkdir()
    for index in range(300):
        (files / f"f{index}").write_bytes(rng.randbytes(rng.randrange(1, 200_000)))
    layer = base / "layer.tar"
    subprocess.run(["tar", "-cf", str(layer), "-C", str(files), "."], check=True, timeout=60)
    facts = {"archive": str(archive), "layer": str(layer)}
    if shutil.which("docker-registry") is None:
        yield facts
        return
    with running_registry(base / "registry") as registry:
        name = f"{registry.address}/stress/busybox:1"
        ok(maker, "tag", "busybox", name)
        ok(maker, "push", "-q", "--tls-verify=false", name)
        facts["pulled"] = name
        yield facts


def _images(root: Path) -> dict[str, str]:
    rows = [json.loads(line) for line in ok(root, "images", "--format", "json").splitlines()]
    return {f"{row['Repository']}:{row['Tag']}": row["ID"] for row in rows}


OPERATIONS: dict[str, Callable[[Path, dict[str, str]], list[str]]] = {
    "import": lambda root, w: ["import", w["layer"], "imported:1"],
    "load": lambda root, w: ["load", "-i", w["archive"]],
    "pull": lambda root, w: ["pull", "-q", "--tls-verify=false", w["pulled"]],
    "commit": lambda root, w: ["commit", "keeper", "committed:1"],
    "rmi": lambda root, w: ["rmi", "victim:1"],
    "prune": lambda root, w: ["system", "prune", "-f"],
    **{
        f"run-{driver}": (
            lambda root, w, d=driver: [
                "--storage", d, "run", "--rm", "busybox", "sh", "-c", "echo x > /f; sleep 0.3",
            ]
        )
        for driver in DRIVERS
    },
}  # fmt: skip


@pytest.mark.parametrize("operation", sorted(OPERATIONS))
def test_kill_9_loses_nothing_and_leaves_nothing(
    world: dict[str, str], tmp_path: Path, operation: str
) -> None:
    if operation == "pull" and "pulled" not in world:
        pytest.skip("docker-registry is not installed")
    root = tmp_path / "root"
    ok(root, "load", "-q", "-i", world["archive"])
    ok(root, "create", "--name", "keeper", "busybox", "true")
    rng = random.Random(f"{SEED}-{operation}")
    for point in range(POINTS):
        ok(root, "tag", "busybox", "victim:1")  # what rmi takes (and puts back each round)
        before = _images(root)
        delay = rng.uniform(0.05, 1.2)
        status = run_and_kill(root, OPERATIONS[operation](root, world), delay)
        # The next command works and nothing that existed is lost ...
        after = _images(root)
        lost = {name: image for name, image in before.items() if after.get(name) != image}
        # What the operation itself may change: the tag it writes or removes.
        for name in ("committed:1", "imported:1", "victim:1" if operation == "rmi" else ""):
            lost.pop(name, None)
        assert lost == {}, (point, delay, status, lost)
        out = pydock(root, "--storage", DRIVERS[point % 3], "run", "--rm", "busybox", "cat",
                     "/etc/passwd")  # fmt: skip
        assert out.returncode == 0, (point, delay, out.stderr)
        listed = ok(root, "ps", "-a", "--format", "json")
        if operation == "prune":
            # system prune removes stopped containers, keeper too when it got that far (as
            # Docker's); it is made again for the next round.
            if "keeper" not in listed:
                ok(root, "create", "--name", "keeper", "busybox", "true")
        else:
            assert "keeper" in listed
        # ... and nothing is left over.
        assert_nothing_left(root)
