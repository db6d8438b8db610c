"""Each verb imports only what it runs: checked on what the real command imports (``python -X
importtime``), never on how long it takes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[4]
# Nobody but the commands that need them may load these.
EVERY_VERB = {
    "httpx", "rich", "matplotlib", "pydock.bench", "pydock.registry.client",
    "pydock.image.load", "pydock.image.save", "pydock.image.bundle",
    "pyroute2", "pydock.network.bridge", "pydock.network.service",
    "pydock.api", "h11", "docker",
}  # fmt: skip
IMAGE_VERBS = EVERY_VERB | {"runtime", "pydock.containers.lifecycle", "pydock.cli.containers"}
CONTAINER_VERBS = EVERY_VERB | {
    "pydock.cli.images", "pydock.cli.system", "pydock.cli.prune", "pydock.cli.volumes",
    "pydock.containers.copy",
}  # fmt: skip

VERBS: dict[str, tuple[list[str], set[str]]] = {
    "images": (["images"], IMAGE_VERBS | {"pydock.cli.system"}),
    "info": (["info"], IMAGE_VERBS | {"pydock.cli.images"}),
    "ps": (["ps", "-a"], CONTAINER_VERBS),
    "inspect": (["inspect", "busybox"], CONTAINER_VERBS),
    "create": (["create", "--name", "c", "--network", "none", "busybox", "true"], CONTAINER_VERBS),
    "start": (["start", "c"], CONTAINER_VERBS),
    "run": (["run", "--rm", "--network", "none", "busybox", "true"], CONTAINER_VERBS),
}


def imported(root: Path, args: list[str]) -> set[str]:
    """The modules ``pydock ARGS`` imported, as ``-X importtime`` lists them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYDOCK_")}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "pydock", "--root", str(root),
         "--storage", "vfs", *args],
        capture_output=True, text=True, timeout=120, env=env, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "pydock.cli.app" in names  # the listing is what it claims to be
    return names


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("imports") / "root"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYDOCK_")}
    subprocess.run(
        [sys.executable, "-m", "pydock", "--root", str(path), "--storage", "vfs", "import",
         "builtin:busybox", "busybox"],
        check=True, capture_output=True, timeout=120, env=env, cwd=REPO,
    )  # fmt: skip
    return path


@pytest.mark.parametrize("verb", list(VERBS))
def test_a_verb_imports_only_what_it_runs(root: Path, verb: str) -> None:
    if verb in ("create", "start", "run") and os.geteuid() != 0:
        pytest.skip("containers need uid 0 here (rootless moves into a user namespace)")
    args, forbidden = VERBS[verb]
    names = imported(root, args)
    loaded = sorted(n for n in names if n in forbidden or n.split(".")[0] in forbidden)
    assert loaded == [], f"{verb} imported {loaded}"
