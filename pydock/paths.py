"""Where pydock keeps its data: the root and run-root directories (DESIGN.md section 3)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

SYSTEM_ROOT = Path("/var/lib/pydock")
SYSTEM_RUN_ROOT = Path("/run/pydock")


def is_rootless() -> bool:
    """Whether pydock runs without uid 0, or as root of a user namespace (rootless mode)."""
    if os.geteuid() != 0:
        return True
    try:
        uid_map = Path("/proc/self/uid_map").read_text().split()
    except OSError:
        return False
    return uid_map[:3] != ["0", "0", "4294967295"]


def default_root(env: Mapping[str, str] | None = None) -> Path:
    """``$PYDOCK_ROOT``, else /var/lib/pydock as root, else ``$XDG_DATA_HOME/pydock``."""
    env = os.environ if env is None else env
    if env.get("PYDOCK_ROOT"):
        return Path(env["PYDOCK_ROOT"])
    if not is_rootless():
        return SYSTEM_ROOT
    data_home = env.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(data_home) / "pydock"


def default_run_root(env: Mapping[str, str] | None = None) -> Path:
    """``$PYDOCK_RUN_ROOT``, else /run/pydock as root, else ``$XDG_RUNTIME_DIR/pydock``."""
    env = os.environ if env is None else env
    if env.get("PYDOCK_RUN_ROOT"):
        return Path(env["PYDOCK_RUN_ROOT"])
    if not is_rootless():
        return SYSTEM_RUN_ROOT
    runtime_dir = env.get("XDG_RUNTIME_DIR") or f"/tmp/pydock-{os.geteuid()}"
    return Path(runtime_dir) / "pydock"
