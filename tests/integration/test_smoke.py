"""The installed ``pydock`` command end to end, as a user runs it: the check that CI also runs
in a throwaway environment holding the newest release of every dependency
(``scripts/check-newest``), with deprecation warnings turned into errors in every process."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from .containers_support import clean_env
from .unprivileged import installed

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="containers and overlay2 need uid 0 here"),
    pytest.mark.skipif(
        not installed("pydock").exists(), reason=f"{installed('pydock')} is not installed"
    ),
    pytest.mark.timeout(240),
]


def pydock(root: Path, *args: str) -> str:
    """Run the installed command; assert it succeeds with a quiet stderr; return stdout."""
    env = clean_env({"PYTHONWARNINGS": "error::DeprecationWarning"})
    done = subprocess.run(
        [str(installed("pydock")), "--root", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd="/",
    )
    assert done.returncode == 0 and done.stderr == "", (args, done.stdout, done.stderr)
    return done.stdout


@pytest.mark.parametrize("storage", ["fuse", "overlay2", "vfs"])
def test_run_on_every_driver(tmp_path: Path, storage: str) -> None:
    root = tmp_path / "root"
    out = pydock(root, "run", "--rm", f"--storage={storage}", "busybox", "echo", "hi")
    assert out == "hi\n"
    assert pydock(root, "ps", "-a", "-q") == ""


def test_save_and_load(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    image_id = pydock(first, "import", "builtin:busybox", "smoke:1").strip()
    archive = tmp_path / "smoke.tar"
    pydock(first, "save", "-o", str(archive), "smoke:1")
    assert pydock(second, "load", "-i", str(archive)) == "Loaded image: smoke:1\n"
    assert pydock(second, "images", "-q") == pydock(first, "images", "-q")
    assert image_id.removeprefix("sha256:")[:12] in pydock(second, "images", "-q")
    out = pydock(second, "run", "--rm", "--storage=fuse", "smoke:1", "sh", "-c", "echo $0", "x")
    assert out == "x\n"
