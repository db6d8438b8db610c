"""Rootless pydock runs in a user namespace of its own, as podman does.

Before it opens its store, an unprivileged pydock moves into a new user and mount namespace in
which it is root: the image layers may then hold files of every id the maps cover (the caller's
own id as root, plus its ``/etc/subuid`` range), overlay2 can mount (with ``userxattr``), and
containers share that namespace. ``exec`` joins the namespaces of the container's monitor
instead, where the container's own namespaces can be entered.
"""

from __future__ import annotations

import os

import runtime.idmap
import runtime.userns
from pydock.errors import PydockError


def needs_namespace() -> bool:
    """Whether this process is unprivileged and still in the host's user namespace."""
    return os.geteuid() != 0 and runtime.userns.in_initial_namespace()


def enter() -> None:
    """Move into a new user and mount namespace as root (when rootless and not there yet)."""
    if not needs_namespace():
        return
    try:
        runtime.userns.enter(runtime.idmap.plan())
    except runtime.NamespaceUnavailableError:
        return  # user namespaces are off here: vfs still works, overlay2 will say why not
    except runtime.ContainerError as exc:
        raise PydockError(f"setting up rootless mode: {exc}") from exc


def join(monitor_pid: int) -> None:
    """Join the user and mount namespaces of a container's monitor (when rootless)."""
    if not needs_namespace():
        return
    try:
        runtime.userns.join(monitor_pid)
    except runtime.ContainerError as exc:
        raise PydockError(f"joining the container's user namespace: {exc}") from exc
