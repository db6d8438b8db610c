"""The network a container joins when ``--network`` names none: the bridge, as in Docker.

A host can choose another default, the way podman's ``containers.conf`` does: in
``/etc/pydock/pydock.conf`` as root, ``$XDG_CONFIG_HOME/pydock/pydock.conf`` (``~/.config``)
rootless::

    [network]
    default = "none"        # or "bridge", "host", or the name of a network

and ``$PYDOCK_NETWORK`` overrides the file for one shell (the test suite pins ``none`` this
way, so that only the tests about networks make bridges). Publishing ports (``-p``, ``-P``)
with a default of ``none`` or ``host`` joins the bridge instead, as before there was a default.

Rootless, the bridge needs pasta and a usable ``/dev/net/tun``; where the default is the bridge
and either is missing, the container gets no network and pydock says why in one warning line,
rather than failing a plain ``pydock run`` that never asked for a network.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydock.network.errors import NetworkConfigError
from pydock.paths import is_rootless

ENV = "PYDOCK_NETWORK"
CONFIG_NAME = "pydock.conf"
SYSTEM_CONFIG = Path("/etc/pydock") / CONFIG_NAME
BUILTIN = "bridge"
# What a bridge needs rootless (see pydock.network.rootlessnet).
PASTA = "pasta"
TUN_DEVICE = "/dev/net/tun"


@dataclass(frozen=True)
class Choice:
    """The network a container gets, and a warning to print when it is not what was asked."""

    network: str
    warning: str | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    """The host's (root) or the user's (rootless) pydock.conf."""
    env = os.environ if env is None else env
    if not is_rootless():
        return SYSTEM_CONFIG
    config_home = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "pydock" / CONFIG_NAME


def configured(env: Mapping[str, str] | None = None) -> str:
    """The default network: ``$PYDOCK_NETWORK``, else pydock.conf's, else the bridge."""
    env = os.environ if env is None else env
    if env.get(ENV):
        return env[ENV]
    path = config_path(env)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return BUILTIN
    except OSError as exc:
        raise NetworkConfigError(f"reading {path}: {exc.strerror}") from exc
    import tomllib  # only when there is a file: the import costs more than the rest of this

    try:
        network = tomllib.loads(text).get("network", {}).get("default", BUILTIN)
    except (tomllib.TOMLDecodeError, AttributeError) as exc:
        raise NetworkConfigError(f"{path}: {exc}") from exc
    if not isinstance(network, str) or not network:
        raise NetworkConfigError(f"{path}: network.default must be a network's name")
    return network


def rootless_bridge_problem() -> str | None:
    """Why a rootless bridge cannot work here (pasta missing, ``/dev/net/tun`` closed), or
    ``None``; as root, always ``None``."""
    if not is_rootless():
        return None
    if shutil.which(PASTA) is None:
        return "pasta not found (install the passt package)"
    if not os.access(TUN_DEVICE, os.R_OK | os.W_OK):
        return f"{TUN_DEVICE} cannot be opened by this user"
    return None


def choose(
    network: str | None, *, publishing: bool, env: Mapping[str, str] | None = None
) -> Choice:
    """The network of a new container: ``network`` when one was named, else the default."""
    if network:
        return Choice(network)
    default = configured(env)
    if default in ("none", "host"):
        return Choice("bridge" if publishing else default)
    problem = rootless_bridge_problem()
    if problem is None or publishing:
        return Choice(default)  # publishing: the bridge was asked for, its error stands
    return Choice(
        "none",
        f"WARNING: the container has no network: rootless networking is unavailable here"
        f" ({problem}); say --network none, or set {ENV}=none, to choose that",
    )
