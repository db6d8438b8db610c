"""The container spec: everything the runtime needs to start one container, as frozen values."""

from __future__ import annotations

import enum
import resource
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from . import capabilities
from .errors import InvalidSpecError
from .seccomp_default import DEFAULT_PROFILE
from .seccomp_profile import SeccompProfile

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Docker's current default lists (moby oci/defaults.go).
DEFAULT_MASKED_PATHS: tuple[str, ...] = (
    "/proc/asound",
    "/proc/acpi",
    "/proc/interrupts",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
)
DEFAULT_READONLY_PATHS: tuple[str, ...] = (
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
)

# `docker run --ulimit` names.
RLIMIT_NAMES: dict[str, int] = {
    "core": resource.RLIMIT_CORE,
    "cpu": resource.RLIMIT_CPU,
    "data": resource.RLIMIT_DATA,
    "fsize": resource.RLIMIT_FSIZE,
    "locks": 10,  # RLIMIT_LOCKS, which the resource module does not export
    "memlock": resource.RLIMIT_MEMLOCK,
    "msgqueue": resource.RLIMIT_MSGQUEUE,
    "nice": resource.RLIMIT_NICE,
    "nofile": resource.RLIMIT_NOFILE,
    "nproc": resource.RLIMIT_NPROC,
    "rss": resource.RLIMIT_RSS,
    "rtprio": resource.RLIMIT_RTPRIO,
    "rttime": resource.RLIMIT_RTTIME,
    "sigpending": resource.RLIMIT_SIGPENDING,
    "stack": resource.RLIMIT_STACK,
}


class NetworkMode(enum.StrEnum):
    """``--network``: its own namespace with only ``lo``, or the host's."""

    NONE = "none"
    HOST = "host"


@dataclass(frozen=True)
class User:
    """The numeric identity the command runs as, already resolved in the image."""

    uid: int = 0
    gid: int = 0
    additional_gids: tuple[int, ...] = ()


@dataclass(frozen=True)
class BindMount:
    """A volume: host ``source`` bound at ``destination`` inside the container."""

    source: Path
    destination: str
    readonly: bool = False

    def __post_init__(self) -> None:
        if not self.source.is_absolute():
            raise InvalidSpecError(f"checking volume: source {self.source} is not absolute")
        if not self.destination.startswith("/"):
            raise InvalidSpecError(
                f"checking volume: destination {self.destination!r} is not absolute"
            )
        if PurePosixPath(self.destination) == PurePosixPath("/"):
            raise InvalidSpecError("checking volume: destination cannot be /")


@dataclass(frozen=True)
class TmpfsMount:
    """``--tmpfs``: a tmpfs at ``destination``; ``options`` as ``mount -o`` takes them
    (``ro``, ``noexec``, ``size=64m``, ``mode=1777``...). Docker's defaults: nosuid, nodev."""

    destination: str
    options: str = ""

    def __post_init__(self) -> None:
        if not self.destination.startswith("/") or PurePosixPath(self.destination) == PurePosixPath(
            "/"
        ):
            raise InvalidSpecError(
                f"checking tmpfs: destination {self.destination!r} must be absolute and not /"
            )


@dataclass(frozen=True)
class Rlimit:
    """A resource limit by its ``--ulimit`` name (``nofile``, ``nproc``, ...)."""

    name: str
    soft: int
    hard: int

    def __post_init__(self) -> None:
        if self.name not in RLIMIT_NAMES:
            raise InvalidSpecError(f"checking rlimit: unknown resource {self.name!r}")
        if self.soft > self.hard:
            raise InvalidSpecError(
                f"checking rlimit {self.name}: soft limit {self.soft} exceeds hard {self.hard}"
            )

    @property
    def resource(self) -> int:
        """The ``resource.RLIMIT_*`` number."""
        return RLIMIT_NAMES[self.name]


@dataclass(frozen=True)
class CgroupLimits:
    """``--memory`` in bytes, ``--cpus`` as a fraction of CPUs, ``--pids-limit``."""

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory <= 0:
            raise InvalidSpecError(f"checking limits: memory {self.memory} is not positive")
        if self.cpus is not None and self.cpus <= 0:
            raise InvalidSpecError(f"checking limits: cpus {self.cpus} is not positive")
        if self.pids is not None and self.pids <= 0:
            raise InvalidSpecError(f"checking limits: pids {self.pids} is not positive")

    def is_empty(self) -> bool:
        """True when no limit is set."""
        return self.memory is None and self.cpus is None and self.pids is None


@dataclass(frozen=True)
class ContainerSpec:
    """One container: its root filesystem path, its process, and its isolation."""

    container_id: str
    rootfs: Path
    args: tuple[str, ...]
    env: tuple[str, ...] = ()
    cwd: str = "/"
    user: User = field(default_factory=User)
    hostname: str = ""
    readonly_rootfs: bool = False
    mounts: tuple[BindMount, ...] = ()
    tmpfs: tuple[TmpfsMount, ...] = ()
    network: NetworkMode = NetworkMode.NONE
    capabilities: frozenset[str] = capabilities.DEFAULT_CAPABILITIES
    no_new_privileges: bool = False
    rlimits: tuple[Rlimit, ...] = ()
    tty: bool = False
    masked_paths: tuple[str, ...] = DEFAULT_MASKED_PATHS
    readonly_paths: tuple[str, ...] = DEFAULT_READONLY_PATHS
    cgroup: CgroupLimits | None = None
    # ``--init``: pid 1 is a small reaper that runs the command as its child.
    init: bool = False
    # None: a user namespace exactly when the caller is not root.
    userns: bool | None = None
    # None: no filter (``--security-opt seccomp=unconfined``, ``--privileged``).
    seccomp: SeccompProfile | None = DEFAULT_PROFILE
    # ``--privileged``: every device node of the host in /dev, and /sys writable.
    host_devices: bool = False
    writable_sysfs: bool = False

    def __post_init__(self) -> None:
        where = f"checking spec of container {self.container_id}"
        if not self.container_id:
            raise InvalidSpecError("checking spec: the container id is empty")
        if not self.args:
            raise InvalidSpecError(f"{where}: no command given", container_id=self.container_id)
        if not self.rootfs.is_absolute():
            raise InvalidSpecError(
                f"{where}: rootfs {self.rootfs} is not absolute", container_id=self.container_id
            )
        if not self.cwd.startswith("/"):
            raise InvalidSpecError(
                f"{where}: working directory {self.cwd!r} is not absolute",
                container_id=self.container_id,
            )
        for item in self.env:
            if "=" not in item or item.startswith("="):
                raise InvalidSpecError(
                    f"{where}: environment entry {item!r} is not NAME=VALUE",
                    container_id=self.container_id,
                )
        object.__setattr__(
            self, "capabilities", frozenset(capabilities.normalize(c) for c in self.capabilities)
        )
        if capabilities.ALL in self.capabilities:
            raise InvalidSpecError(f"{where}: resolve ALL with capabilities.resolve first")

    @property
    def effective_hostname(self) -> str:
        """The hostname, defaulting to the first 12 characters of the id as Docker does."""
        return self.hostname or self.container_id[:12]


def environment(spec: ContainerSpec, home: str) -> list[str]:
    """Return the command's environment: the spec's, plus PATH, HOSTNAME, HOME, TERM defaults."""
    names = {item.split("=", 1)[0] for item in spec.env}
    env = [f"HOSTNAME={spec.effective_hostname}"] if "HOSTNAME" not in names else []
    if "PATH" not in names:
        env.append(f"PATH={DEFAULT_PATH}")
    if spec.tty and "TERM" not in names:
        env.append("TERM=xterm")
    env.extend(spec.env)
    if "HOME" not in names:
        env.append(f"HOME={home}")
    return env
