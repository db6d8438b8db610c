"""The conformance suite as an unprivileged user: vfs as a plain user, overlay2 in a user
namespace (mounted with userxattr), fuse as a plain user with /dev/fuse opened up for the run.
Every case that runs as root runs here too; the only skips allowed are the cases that need
privilege (device nodes, files owned by other users, file capabilities)."""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from .unprivileged import (
    ENV_PYTHON,
    copy_of_tests,
    device_mode,
    missing_prerequisite,
    run_as,
    unprivileged_user,
)

pytestmark = [pytest.mark.userns, pytest.mark.slow, pytest.mark.timeout(900)]

_why = missing_prerequisite()
DEV_FUSE = "/dev/fuse"
PRIVILEGED_SKIPS = ("needs uid 0", "cannot set file capabilities here")


@pytest.mark.skipif(_why is not None, reason=_why or "")
@pytest.mark.parametrize(
    ("driver", "userns"), [("vfs", False), ("overlay2", True), ("fuse", False)]
)
def test_conformance_unprivileged(driver: str, userns: bool) -> None:
    # Not under pytest's own tmp dirs: those are private to root and pruned by other runs.
    base = Path(tempfile.mkdtemp(prefix=f"pydock-rootless-{driver}-", dir="/tmp"))
    base.chmod(0o755)
    # /dev/fuse opened up for the test user only while the suite runs.
    opened = driver == "fuse" and os.path.exists(DEV_FUSE)
    try:
        with device_mode(DEV_FUSE, open_to_users=True) if opened else contextlib.nullcontext():
            _run_suite(base, driver, userns)
    finally:
        shutil.rmtree(base, ignore_errors=True)
        shutil.rmtree(f"/tmp/pydock-rootless-{driver}-{base.name}", ignore_errors=True)


def _collected(copy: Path, driver: str) -> int:
    """How many conformance cases the driver has (collected as root, without running them)."""
    done = subprocess.run(
        [str(ENV_PYTHON), "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
         "tests/conformance"],
        cwd=copy, capture_output=True, text=True, timeout=120,
        env={"PYDOCK_TEST_DRIVERS": driver, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    found = re.search(r"(\d+) tests? collected", done.stdout)
    assert done.returncode == 0 and found, done.stdout[-2000:] + done.stderr[-2000:]
    return int(found.group(1))


def _run_suite(base: Path, driver: str, userns: bool) -> None:
    copy = copy_of_tests(base / "src")
    expected = _collected(copy, driver)
    assert expected > 100, expected
    with unprivileged_user() as user:
        output = run_as(
            user,
            [
                str(ENV_PYTHON), "-m", "pytest", "-q", "-p", "no:cacheprovider",
                "--basetemp", f"/tmp/pydock-rootless-{driver}-{base.name}",
                "tests/conformance", "-rs",
            ],
            cwd=copy,
            userns=userns,
            timeout=850,
            env={"PYDOCK_TEST_DRIVERS": driver},
        )  # fmt: skip
    assert output.startswith("exit 0"), output[-4000:]
    counts = {kind: int(n) for n, kind in re.findall(r"(\d+) (passed|skipped|failed)", output)}
    assert counts.get("failed", 0) == 0, output[-4000:]
    assert counts.get("passed", 0) + counts.get("skipped", 0) == expected, (counts, expected)
    reasons = re.findall(r"^SKIPPED \[\d+\] [^:]+:\d+: (.*)$", output, re.MULTILINE)
    assert sum(1 for _ in reasons) <= counts.get("skipped", 0)
    unexpected = [r for r in reasons if not r.startswith(PRIVILEGED_SKIPS)]
    assert unexpected == [], unexpected
    assert counts.get("passed", 0) >= expected - 12, (counts, expected)
