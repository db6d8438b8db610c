"""The container spec: everything the runtime needs to start one container, as frozen values."""

from __future__ import annotations

import enum
import os
import resource
import stat
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


# The namespaces ``--pid``, ``--ipc`` and ``--uts`` may share with the host.
HOST_SHAREABLE = frozenset({"pid", "ipc", "uts", "cgroup"})
# Docker's /dev/shm size when ``--shm-size`` is not given.
DEFAULT_SHM_SIZE = 64 * 1024 * 1024


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
class Device:
    """``--device``: the host's device node ``source`` made at ``destination`` in /dev.

    ``permissions`` are the cgroup's ``r`` (read), ``w`` (write), ``m`` (mknod); what is left
    out is denied through the devices controller.
    """

    source: Path
    destination: str
    permissions: str = "rwm"

    def __post_init__(self) -> None:
        if not self.source.is_absolute() or not self.destination.startswith("/"):
            raise InvalidSpecError(
                f"checking device {self.source}:{self.destination}: both paths must be absolute"
            )
        if not self.permissions or set(self.permissions) - set("rwm"):
            raise InvalidSpecError(
                f"checking device {self.source}: permissions {self.permissions!r} are not r, w, m"
            )

    def cgroup_deny(self) -> str | None:
        """The devices-controller rule (``c 1:3 w``) that takes the missing permissions away."""
        missing = "".join(p for p in "rwm" if p not in self.permissions)
        if not missing:
            return None
        info = os.stat(self.source)
        kind = "b" if stat.S_ISBLK(info.st_mode) else "c"
        return f"{kind} {os.major(info.st_rdev)}:{os.minor(info.st_rdev)} {missing}"


@dataclass(frozen=True)
class Rlimit:
    """A resource limit by its ``--ulimit`` name (``nofile``, ``nproc``, ...)."""

    name: str
    soft: int
    hard: int

    def __post_init__(self) -> None:
        if self.name not in RLIMIT_NAMES:
            raise InvalidSpecError(f"checking rlimit: unknown resource {self.name!r}")
        if _limit_order(self.soft) > _limit_order(self.hard):
            raise InvalidSpecError(
                f"checking rlimit {self.name}: soft limit {self.soft} exceeds hard {self.hard}"
            )

    @property
    def resource(self) -> int:
        """The ``resource.RLIMIT_*`` number."""
        return RLIMIT_NAMES[self.name]


def _limit_order(value: int) -> float:
    """A limit for comparing: RLIM_INFINITY (-1 here) above every number."""
    return float("inf") if value == resource.RLIM_INFINITY else value


@dataclass(frozen=True)
class CgroupLimits:
    """``--memory`` in bytes, ``--cpus`` as a fraction of CPUs, ``--pids-limit``;
    ``--cpu-shares``, ``--cpuset-cpus`` (``0-1,3``), ``--memory-swap`` (memory plus swap in
    bytes, -1 for no limit), ``--memory-reservation`` (the soft limit); ``device_denies`` are
    devices-controller rules (``c 1:3 w``) for ``--device`` permissions. ``--cpu-period`` and
    ``--cpu-quota`` are the CFS period and quota in microseconds (quota -1: none), exclusive
    with ``cpus``; ``--cpuset-mems`` the memory nodes (``0-1``)."""

    memory: int | None = None
    cpus: float | None = None
    pids: int | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    memory_swap: int | None = None
    memory_reservation: int | None = None
    device_denies: tuple[str, ...] = ()
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_mems: str | None = None

    def __post_init__(self) -> None:
        if self.memory is not None and self.memory <= 0:
            raise InvalidSpecError(f"checking limits: memory {self.memory} is not positive")
        if self.cpus is not None and self.cpus <= 0:
            raise InvalidSpecError(f"checking limits: cpus {self.cpus} is not positive")
        if self.pids is not None and self.pids <= 0:
            raise InvalidSpecError(f"checking limits: pids {self.pids} is not positive")
        if self.cpu_shares is not None and self.cpu_shares <= 0:
            raise InvalidSpecError(f"checking limits: cpu shares {self.cpu_shares} not positive")
        swap = self.memory_swap
        if swap is not None and swap != -1 and (self.memory is None or swap < self.memory):
            raise InvalidSpecError(f"checking limits: memory+swap {swap} is below the memory limit")
        if self.cpus is not None and (self.cpu_period, self.cpu_quota) != (None, None):
            raise InvalidSpecError("checking limits: cpus and a cfs period or quota together")

    def is_empty(self) -> bool:
        """True when no limit is set."""
        return (
            all(
                value is None
                for value in (
                    self.memory,
                    self.cpus,
                    self.pids,
                    self.cpu_shares,
                    self.cpuset_cpus,
                    self.memory_swap,
                    self.memory_reservation,
                    self.cpu_period,
                    self.cpu_quota,
                    self.cpuset_mems,
                )
            )
            and not self.device_denies
        )


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
    # ``--domainname``: the NIS domain name of the container's UTS namespace.
    domainname: str = ""
    # ``--shm-size``: bytes of the /dev/shm tmpfs.
    shm_size: int = DEFAULT_SHM_SIZE
    # ``--sysctl``: (name, value) pairs written below /proc/sys in the container.
    sysctls: tuple[tuple[str, str], ...] = ()
    # ``--pid/--ipc/--uts host``: the namespaces shared with the caller's (the host's).
    host_namespaces: frozenset[str] = frozenset()
    # ``--device``: host device nodes made in the container's /dev.
    devices: tuple[Device, ...] = ()
    # ``--oom-score-adj``: written for the container's first process, its children inherit it.
    oom_score_adj: int | None = None

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
        if not self.host_namespaces <= HOST_SHAREABLE:
            raise InvalidSpecError(
                f"{where}: only {', '.join(sorted(HOST_SHAREABLE))} can be the host's",
                container_id=self.container_id,
            )
        if self.domainname and "uts" in self.host_namespaces:
            raise InvalidSpecError(
                f"{where}: unable to set domainname without a private UTS namespace",
                container_id=self.container_id,
            )
        if self.oom_score_adj is not None and not -1000 <= self.oom_score_adj <= 1000:
            raise InvalidSpecError(
                f"{where}: oom score adj {self.oom_score_adj} not in -1000..1000"
            )
        if self.shm_size <= 0:
            raise InvalidSpecError(f"{where}: shm size {self.shm_size} is not positive")

    @property
    def effective_hostname(self) -> str:
        """The hostname, defaulting to the first 12 characters of the id as Docker does (the
        host's own with ``--uts host``)."""
        if "uts" in self.host_namespaces:
            return os.uname().nodename
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
