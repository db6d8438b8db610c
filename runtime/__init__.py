"""Container runtime: namespaces, rootfs set-up, pivot_root, capabilities, cgroups, monitor.

It receives a root filesystem path and a :class:`ContainerSpec` and knows nothing of graph
drivers. ``create`` sets a container up and returns it CREATED; ``Container.start`` executes its
command; ``run`` does both; ``execute`` starts another process in a running container.
"""

from __future__ import annotations

from .capabilities import DEFAULT_CAPABILITIES
from .capabilities import resolve as resolve_capabilities
from .container import Container
from .errors import (
    CgroupError,
    CommandNotExecutableError,
    CommandNotFoundError,
    ContainerError,
    ExecError,
    InvalidSpecError,
    InvalidTransitionError,
    NamespaceUnavailableError,
    SetupError,
    UnknownUserError,
)
from .execute import ExecProcess, ExecSpec, execute
from .launch import create, run
from .monitor import read_exit_file
from .spec import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    BindMount,
    CgroupLimits,
    ContainerSpec,
    NetworkMode,
    Rlimit,
    User,
)
from .state import Event, State
from .user import resolve as resolve_user

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "BindMount",
    "CgroupError",
    "CgroupLimits",
    "CommandNotExecutableError",
    "CommandNotFoundError",
    "Container",
    "ContainerError",
    "ContainerSpec",
    "Event",
    "ExecError",
    "ExecProcess",
    "ExecSpec",
    "InvalidSpecError",
    "InvalidTransitionError",
    "NamespaceUnavailableError",
    "NetworkMode",
    "Rlimit",
    "SetupError",
    "State",
    "UnknownUserError",
    "User",
    "create",
    "execute",
    "read_exit_file",
    "resolve_capabilities",
    "resolve_user",
    "run",
]
