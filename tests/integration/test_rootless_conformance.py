"""The conformance suite as an unprivileged user: vfs as a plain user, overlay2 in a user
namespace (mounted with userxattr), fuse as a plain user with /dev/fuse opened up for the run.
Every case that runs as root must run here too, bar the ones that need privilege (devices)."""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

import pytest

from .unprivileged import (
    SYSTEM_PYTHON,
    missing_prerequisite,
    run_as,
    sandbox_copy,
    unprivileged_user,
)

pytestmark = [pytest.mark.userns, pytest.mark.slow, pytest.mark.timeout(900)]

_why = missing_prerequisite()


@pytest.mark.skipif(_why is not None, reason=_why or "")
@pytest.mark.parametrize(
    ("driver", "userns"), [("vfs", False), ("overlay2", True), ("fuse", False)]
)
def test_conformance_unprivileged(driver: str, userns: bool) -> None:
    # Not under pytest's own tmp dirs: those are private to root and pruned by other runs.
    base = Path(tempfile.mkdtemp(prefix=f"pydock-rootless-{driver}-", dir="/tmp"))
    base.chmod(0o755)
    dev_fuse = Path("/dev/fuse")
    fuse_mode = dev_fuse.stat().st_mode if dev_fuse.exists() else None
    try:
        if driver == "fuse" and fuse_mode is not None:
            dev_fuse.chmod(0o666)  # opened up for the test user only while the suite runs
        _run_suite(base, driver, userns)
    finally:
        if fuse_mode is not None:
            dev_fuse.chmod(fuse_mode & 0o7777)
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(f"/tmp/pydock-rootless-{driver}-{base.name}", ignore_errors=True)


def _run_suite(base: Path, driver: str, userns: bool) -> None:
    sandbox = sandbox_copy(base / "src")
    with unprivileged_user() as user:
        output = run_as(
            user,
            [
                str(SYSTEM_PYTHON),
                "-m",
                "pytest",
                "-q",
                "-p",
                "no:cacheprovider",
                "--basetemp",
                f"/tmp/pydock-rootless-{driver}-{base.name}",
                "tests/conformance",
                "-k",
                driver,
                "-rs",
            ],
            cwd=sandbox,
            userns=userns,
            timeout=850,
        )
    assert output.startswith("exit 0"), output[-4000:]
    summary = re.search(r"(\d+) passed", output)
    assert summary and int(summary.group(1)) >= 50, output[-2000:]
    assert "SKIPPED" not in output or driver not in output.split("SKIPPED", 1)[1][:200], output[
        -2000:
    ]
