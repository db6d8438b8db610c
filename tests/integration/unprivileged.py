"""Run parts of the suite as an unprivileged user that the tests create themselves.

The user runs the same interpreter and the same dependency versions as root: pydock's own
environment (``scripts/setup`` builds it in /opt/pydock, readable by every user), the one whose
Python runs this test session, with the installed ``pydock`` command. Nothing is installed at
test time.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .containers_support import SUITE_SETTINGS

REPO = Path(__file__).resolve().parents[2]
# pydock's environment: this session's interpreter, which the user must be able to run too.
ENV_PYTHON = Path(sys.executable)
ENV_BIN = ENV_PYTHON.parent
USER_PREFIX = "pdun"


def installed(command: str) -> Path:
    """A console script of pydock's environment (``pydock``, ``pydock-fuse-overlay``)."""
    return ENV_BIN / command


def missing_prerequisite() -> str | None:
    """Why the unprivileged runs cannot happen here, or ``None``."""
    if os.geteuid() != 0:
        return "needs uid 0 to create the unprivileged user"
    for tool in ("useradd", "runuser", "unshare", "newuidmap"):
        if shutil.which(tool) is None:
            return f"{tool} not found (install passwd, util-linux and uidmap)"
    if not installed("pydock").exists():
        return f"{installed('pydock')} not found: run the suite with pydock's environment"
    probe = subprocess.run(
        ["runuser", "-u", "nobody", "--", str(ENV_PYTHON), "-c", "import pydock, pytest"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd="/",
    )
    if probe.returncode != 0:
        return f"other users cannot run {sys.prefix} (run scripts/setup): {probe.stderr[-200:]}"
    return None


@contextmanager
def unprivileged_user() -> Iterator[str]:
    """An unprivileged user with /etc/subuid ranges, removed again (home, ranges) at the end.

    The name is this session's own (``pdun<pid>``), as the other test users' are: sessions that
    run side by side never share one, and each removes the user it made.
    """
    name = f"{USER_PREFIX}{os.getpid() % 100000}"
    try:
        pwd.getpwnam(name)
    except KeyError:
        pass
    else:
        remove_user(name)  # left by a session that was killed before its clean-up
    subprocess.run(["useradd", "--create-home", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        remove_user(name)


def remove_user(name: str) -> None:
    """Remove a test user everywhere it left a trace: processes, home, subordinate id ranges,
    and the run roots made for it under /tmp by pydock and its fuse mount server, and by
    podman (the bench asks it for its version, and a user's podman without XDG_RUNTIME_DIR
    makes its runtime directories there even for that)."""
    uid = pwd.getpwnam(name).pw_uid
    subprocess.run(["pkill", "-KILL", "-u", name], capture_output=True)
    subprocess.run(["userdel", "--remove", name], capture_output=True)
    for table in ("/etc/subuid", "/etc/subgid"):
        lines = Path(table).read_text().splitlines(keepends=True)
        Path(table).write_text("".join(line for line in lines if not line.startswith(f"{name}:")))
    run_roots = ("pydock", "pydock-run", "podman-run", "containers-user")
    for run_root in (f"/tmp/{prefix}-{uid}" for prefix in run_roots):
        shutil.rmtree(run_root, ignore_errors=True)


def copy_of_tests(dest: Path) -> Path:
    """Copy the tests to ``dest`` (world-readable); the packages come from the environment."""
    shutil.copytree(REPO / "tests", dest / "tests", ignore=_ignore)
    shutil.copy(REPO / "pyproject.toml", dest / "pyproject.toml")  # pytest's markers
    for path in [dest, *dest.rglob("*")]:
        path.chmod(0o755 if path.is_dir() else 0o644)
    return dest


def _ignore(directory: str, names: list[str]) -> list[str]:
    return [n for n in names if n in ("__pycache__", ".pytest_cache", ".mypy_cache")]


def run_as(
    user: str,
    args: list[str],
    *,
    cwd: Path,
    userns: bool,
    timeout: float,
    env: dict[str, str] | None = None,
) -> str:
    """Run ``args`` as ``user`` (inside a new user+mount namespace with ``userns``)."""
    prefix = ["runuser", "-u", user, "--"]
    if userns:
        prefix += ["unshare", "--map-root-user", "--map-auto", "--mount"]
    environment = {
        "PATH": f"{ENV_BIN}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": f"/home/{user}",
        "PYTHONDONTWRITEBYTECODE": "1",
        "LANG": "C.UTF-8",
        # The suite's pinned default network (tests/conftest.py), as every command keeps it.
        **{k: os.environ[k] for k in SUITE_SETTINGS if k in os.environ},
        **(env or {}),
    }
    done = subprocess.run(
        prefix + args, cwd=cwd, env=environment, capture_output=True, text=True, timeout=timeout
    )
    return f"exit {done.returncode}\n{done.stdout}\n{done.stderr}"


@contextmanager
def device_mode(path: str, *, open_to_users: bool) -> Iterator[None]:
    """The device node ``path`` readable and writable by every user (as Debian ships
    /dev/fuse and /dev/net/tun), or by root only (as some hosts, this one, create them), for the
    test's own run; the mode it had is restored after."""
    mode = stat.S_IMODE(os.stat(path).st_mode)
    wanted = mode | 0o666 if open_to_users else mode & ~0o066
    if wanted == mode:
        yield
        return
    os.chmod(path, wanted)
    try:
        yield
    finally:
        os.chmod(path, mode)
