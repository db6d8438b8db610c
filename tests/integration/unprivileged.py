"""Run parts of the suite as an unprivileged user that the tests create themselves.

The pyenv Python lives under /root (mode 0700), out of reach of other users, so the user runs
Debian's /usr/bin/python3 (with Debian's python3-xxhash, -zstandard, -pytest, -pyfuse3, -trio)
on a copy of the packages in a world-readable directory. A small ``.dist-info`` in that copy
declares the ``pydock.graphdrivers`` entry points, as the installed distribution would.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SYSTEM_PYTHON = Path("/usr/bin/python3")
USER = "pydock-unpriv"
_MODULES = ("xxhash", "zstandard", "pytest", "pytest_timeout")


def missing_prerequisite() -> str | None:
    """Why the unprivileged runs cannot happen here, or ``None``."""
    if os.geteuid() != 0:
        return "needs uid 0 to create the unprivileged user"
    for tool in ("useradd", "runuser", "unshare", "newuidmap"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install passwd, util-linux and uidmap)"
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} not found"
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import " + ", ".join(_MODULES)], capture_output=True, text=True
    )
    if probe.returncode != 0:
        return "Debian's python3-xxhash/zstandard/pytest/pytest-timeout are not installed"
    return None


@contextmanager
def unprivileged_user() -> Iterator[str]:
    """An unprivileged user with /etc/subuid ranges; created if missing, kept for reuse."""
    try:
        pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--create-home", USER], check=True, capture_output=True)
    yield USER


def sandbox_copy(dest: Path) -> Path:
    """Copy the packages and tests to ``dest`` (world-readable) with entry-point metadata."""
    for package in ("graphdriver", "drivers", "runtime"):
        shutil.copytree(REPO / package, dest / package, ignore=_ignore)
    shutil.copytree(REPO / "tests", dest / "tests", ignore=_ignore)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    points = project["project"]["entry-points"]["pydock.graphdrivers"]
    dist = dest / "pydock_sandbox-0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: pydock-sandbox\nVersion: 0\n")
    lines = ["[pydock.graphdrivers]", *(f"{k} = {v}" for k, v in points.items())]
    (dist / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (dest / "pytest.ini").write_text(
        "[pytest]\nmarkers =\n    root\n    fuse\n    overlay\n    userns\n    registry\n    slow\n"
    )
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def _ignore(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in ("__pycache__", ".pytest_cache", ".mypy_cache")]


def run_as(user: str, args: list[str], *, cwd: Path, userns: bool, timeout: float) -> str:
    """Run ``args`` as ``user`` (inside a new user+mount namespace with ``userns``)."""
    prefix = ["runuser", "-u", user, "--"]
    if userns:
        prefix += ["unshare", "--map-root-user", "--map-auto", "--mount"]
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": f"/home/{user}",
        "PYTHONPATH": os.fspath(cwd),
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
    }
    done = subprocess.run(
        prefix + args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"
