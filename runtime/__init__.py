"""Container runtime: namespaces, rootfs set-up, pivot_root, capabilities, cgroups, monitor.

It receives a root filesystem path and a :class:`ContainerSpec` and knows nothing of graph
drivers. ``create`` sets a container up and returns it CREATED; ``Container.start`` executes its
command; ``run`` does both; ``execute`` starts another process in a running container.
"""

from __future__ import annotations

from .capabilities import DEFAULT_CAPABILITIES
from .capabilities import bounding as bounding_capabilities
from .capabilities import resolve as resolve_capabilities
from .cgroups import Cgroup, CgroupUsage, cgroup_version
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
    SeccompError,
    SetupError,
    UnknownUserError,
)
from .execute import ExecProcess, ExecSpec, execute
from .launch import create, run
from .monitor import read_exit_file, read_oom_killed
from .seccomp_default import DEFAULT_PROFILE as DEFAULT_SECCOMP_PROFILE
from .seccomp_profile import SeccompProfile
from .seccomp_profile import parse_docker_json as parse_seccomp_profile
from .spec import (
    DEFAULT_MASKED_PATHS,
    DEFAULT_READONLY_PATHS,
    DEFAULT_SHM_SIZE,
    BindMount,
    CgroupLimits,
    ContainerSpec,
    Device,
    NetworkMode,
    Rlimit,
    TmpfsMount,
    User,
)
from .state import Event, State
from .user import resolve as resolve_user

__all__ = [
    "DEFAULT_CAPABILITIES",
    "DEFAULT_MASKED_PATHS",
    "DEFAULT_READONLY_PATHS",
    "DEFAULT_SECCOMP_PROFILE",
    "DEFAULT_SHM_SIZE",
    "BindMount",
    "Cgroup",
    "CgroupError",
    "CgroupLimits",
    "CgroupUsage",
    "CommandNotExecutableError",
    "CommandNotFoundError",
    "Container",
    "ContainerError",
    "ContainerSpec",
    "Device",
    "Event",
    "ExecError",
    "ExecProcess",
    "ExecSpec",
    "InvalidSpecError",
    "InvalidTransitionError",
    "NamespaceUnavailableError",
    "NetworkMode",
    "Rlimit",
    "SeccompError",
    "SeccompProfile",
    "SetupError",
    "State",
    "TmpfsMount",
    "UnknownUserError",
    "User",
    "bounding_capabilities",
    "cgroup_version",
    "create",
    "execute",
    "parse_seccomp_profile",
    "read_exit_file",
    "read_oom_killed",
    "resolve_capabilities",
    "resolve_user",
    "run",
]
