"""The ``run``/``create`` flags that reach into the host's kernel, checked as Docker checks them.

``--ulimit``, ``--shm-size``, ``--sysctl``, ``--device``, ``--cpuset-cpus``, ``--cpu-shares``,
``--memory-swap``, ``--memory-reservation``, ``--pid/--ipc/--uts/--cgroupns``, ``--expose``,
``--label-file``, ``--oom-score-adj``, ``--cpu-period``, ``--cpu-quota``, ``--cpuset-mems`` and
``--volumes-from``. Each parser returns the plain text the container's config keeps and raises
:class:`ContainerConfigError` with Docker's reason for a bad value.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from pydock.containers.errors import ContainerConfigError

# Docker's smallest --memory-reservation, as its smallest --memory.
MIN_RESERVATION = 6 * 1024 * 1024
# go-units' RAMInBytes: a number, a unit of powers of 1024, an optional b or ib.
_RAM = re.compile(r"(\d+(?:\.\d+)?)\s*([kmgtp]?)(i?b)?", re.IGNORECASE)
_RAM_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}
ULIMIT_NAMES = (
    "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile", "nproc",
    "rss", "rtprio", "rttime", "sigpending", "stack",
)  # fmt: skip
# Docker's --sysctl allow-list: what the IPC namespace isolates, and net.* (the network one).
_IPC_SYSCTLS = frozenset(
    {
        "kernel.msgmax",
        "kernel.msgmnb",
        "kernel.msgmni",
        "kernel.sem",
        "kernel.shmall",
        "kernel.shmmax",
        "kernel.shmmni",
        "kernel.shm_rmid_forced",
    }
)
NAMESPACE_MODES = {"pid": ("", "host"), "ipc": ("", "private", "host"), "uts": ("", "host")}
CGROUPNS_MODES = ("host", "private")
# Docker's bounds of the CFS period and the smallest quota, in microseconds.
CPU_PERIOD_RANGE = (1000, 1_000_000)
MIN_CPU_QUOTA = 1000
VOLUMES_FROM_MODES = ("", "ro", "rw")
EXPOSE_PROTOCOLS = ("tcp", "udp")


def parse_ram(text: str, flag: str) -> int:
    """A size in bytes as Docker's ``--shm-size``, ``--memory-swap`` take it (``64m``, ``1g``)."""
    match = _RAM.fullmatch(text.strip())
    if match is None:
        raise ContainerConfigError(f"parsing {flag} {text!r}: invalid size: {text!r}")
    return int(float(match.group(1)) * _RAM_UNITS[match.group(2).lower()])


def parse_ulimit(text: str) -> str:
    """``--ulimit NAME=SOFT[:HARD]`` as ``NAME=SOFT:HARD`` (-1: unlimited; HARD defaults to
    SOFT)."""
    where = f"parsing --ulimit {text!r}"
    name, equals, values = text.partition("=")
    if not equals:
        raise ContainerConfigError(f"{where}: invalid ulimit argument: {text}")
    if name not in ULIMIT_NAMES:
        raise ContainerConfigError(f"{where}: invalid ulimit type: {name}")
    parts = values.split(":")
    if len(parts) > 2:
        raise ContainerConfigError(
            f"{where}: too many limit value arguments - {values}, can only have up to two,"
            " `soft[:hard]`"
        )
    numbers = []
    for part in parts:
        try:
            numbers.append(int(part))
        except ValueError:
            raise ContainerConfigError(
                f'{where}: strconv.ParseInt: parsing "{part}": invalid syntax'
            ) from None
    soft, hard = numbers[0], numbers[-1]
    if any(n < -1 for n in numbers):
        raise ContainerConfigError(f"{where}: a limit is a number of 0 or more, or -1")
    if _order(soft) > _order(hard):
        raise ContainerConfigError(
            f"{where}: ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
        )
    return f"{name}={soft}:{hard}"


def _order(value: int) -> float:
    return float("inf") if value == -1 else value


def ulimits_of(items: Sequence[str]) -> tuple[str, ...]:
    """Every ``--ulimit``; a later one of the same name wins."""
    found: dict[str, str] = {}
    for item in items:
        entry = parse_ulimit(item)
        found[entry.partition("=")[0]] = entry
    return tuple(found.values())


def ulimit_parts(entry: str) -> tuple[str, int, int]:
    """``NAME=SOFT:HARD`` as its name, soft and hard limits."""
    name, _, values = entry.partition("=")
    soft, _, hard = values.partition(":")
    return name, int(soft), int(hard)


def parse_shm_size(text: str) -> int:
    """``--shm-size``: the /dev/shm tmpfs in bytes."""
    value = parse_ram(text, "--shm-size")
    if value <= 0:
        raise ContainerConfigError(f"parsing --shm-size {text!r}: SHM size must be greater than 0")
    return value


def parse_sysctls(items: Sequence[str], *, network: str, ipc_mode: str) -> tuple[str, ...]:
    """``--sysctl NAME=VALUE``: only those a namespace of the container's own isolates."""
    found: dict[str, str] = {}
    for item in items:
        name, equals, value = item.partition("=")
        name = name.strip()
        allowed = name in _IPC_SYSCTLS or name.startswith(("fs.mqueue.", "net."))
        if not equals or not allowed:
            raise ContainerConfigError(f"checking --sysctl: sysctl {item!r} is not allowed")
        if name.startswith("net.") and network == "host":
            raise ContainerConfigError(
                f"checking --sysctl: sysctl {name!r} is not allowed in the host's network namespace"
            )
        if not name.startswith("net.") and ipc_mode == "host":
            raise ContainerConfigError(
                f"checking --sysctl: sysctl {name!r} is not allowed in the host's ipc namespace"
            )
        found[name] = value
    return tuple(f"{name}={value}" for name, value in found.items())


def parse_namespace_mode(flag: str, text: str | None) -> str:
    """``--pid``, ``--ipc``, ``--uts``: ``host`` (only as root) or the container's own."""
    if text is None:
        return ""
    if text not in NAMESPACE_MODES[flag]:
        raise ContainerConfigError(f"checking --{flag} {text!r}: invalid {flag.upper()} mode")
    if text == "host" and os.geteuid() != 0:
        raise ContainerConfigError(
            f"checking --{flag} host: sharing the host's {flag} namespace needs root"
        )
    return "" if text == "private" else text


def parse_device(text: str) -> str:
    """``--device HOST[:CONTAINER[:PERMS]]`` as ``HOST:CONTAINER:PERMS``, the host node checked."""
    where = f"checking --device {text!r}"
    parts = text.split(":")
    if len(parts) == 2 and parts[1] and not set(parts[1]) - set("rwm"):
        parts = [parts[0], parts[0], parts[1]]
    if len(parts) > 3 or not parts[0]:
        raise ContainerConfigError(f"{where}: bad format for path: {text}")
    source = parts[0]
    destination = parts[1] if len(parts) > 1 and parts[1] else source
    permissions = parts[2] if len(parts) == 3 else "rwm"
    if not permissions or set(permissions) - set("rwm"):
        raise ContainerConfigError(f"{where}: bad mode specified: {permissions}")
    if not destination.startswith("/"):
        raise ContainerConfigError(f"{where}: {destination} is not an absolute path")
    if os.geteuid() != 0:
        raise ContainerConfigError(f"{where}: adding host devices needs root")
    try:
        info = os.stat(source)
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise ContainerConfigError(
            f"{where}: error gathering device information while adding custom device"
            f" {source!r}: {why}"
        ) from exc
    if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
        raise ContainerConfigError(
            f"{where}: error gathering device information while adding custom device"
            f" {source!r}: not a device node"
        )
    return f"{source}:{PurePosixPath(destination)}:{permissions}"


def device_parts(entry: str) -> tuple[str, str, str]:
    """``HOST:CONTAINER:PERMS`` as its three parts."""
    source, destination, permissions = entry.rsplit(":", 2)
    return source, destination, permissions


def _number_list(text: str, flag: str, what: str) -> set[int]:
    """``0-1,3`` as a set of numbers; Docker's reason when it is no such list."""
    numbers: set[int] = set()
    for item in text.split(","):
        low, dash, high = item.partition("-")
        if not low.isdigit() or (dash and not high.isdigit()) or (dash and int(high) < int(low)):
            raise ContainerConfigError(f"checking {flag} {text!r}: Invalid value {text} for {what}")
        numbers.update(range(int(low), int(high if dash else low) + 1))
    return numbers


def parse_cpuset(text: str, available: Sequence[int] | None = None) -> str:
    """``--cpuset-cpus 0-1,3``: CPUs by number and range, every one present on this host."""
    cpus = _number_list(text, "--cpuset-cpus", "cpuset cpus")
    have = sorted(available if available is not None else os.sched_getaffinity(0))
    if not cpus <= set(have):
        raise ContainerConfigError(
            f"checking --cpuset-cpus {text!r}: Requested CPUs are not available - requested"
            f" {text}, available: {cpu_ranges(have)}"
        )
    return text


def memory_nodes() -> list[int]:
    """The host's online memory (NUMA) nodes; node 0 where the kernel has no NUMA."""
    try:
        online = Path("/sys/devices/system/node/online").read_text().strip()
    except OSError:
        return [0]
    return sorted(_number_list(online, "node list", "memory nodes")) if online else [0]


def parse_cpuset_mems(text: str, available: Sequence[int] | None = None) -> str:
    """``--cpuset-mems 0-1``: memory nodes by number and range, every one online here."""
    nodes = _number_list(text, "--cpuset-mems", "cpuset mems")
    have = sorted(available if available is not None else memory_nodes())
    if not nodes <= set(have):
        raise ContainerConfigError(
            f"checking --cpuset-mems {text!r}: Requested memory nodes are not available -"
            f" requested {text}, available: {cpu_ranges(have)}"
        )
    return text


def parse_oom_score_adj(value: int | None) -> int | None:
    """``--oom-score-adj``: -1000 (never killed) to 1000 (killed first); 0 is the default."""
    if value is None or value == 0:
        return None
    if not -1000 <= value <= 1000:
        raise ContainerConfigError(
            f"checking --oom-score-adj {value}: Invalid value {value}, range for oom score adj"
            " is [-1000, 1000]"
        )
    return value


def parse_cfs(
    period: int | None, quota: int | None, *, cpus: bool
) -> tuple[int | None, int | None]:
    """``--cpu-period`` and ``--cpu-quota`` in microseconds (0: not set; a negative quota: no
    quota), checked as Docker's daemon checks them; neither goes with ``--cpus``."""
    period = period or None
    quota = quota or None
    if cpus and period is not None:
        raise ContainerConfigError(
            "checking --cpu-period: Conflicting options: Nano CPUs and CPU Period cannot both"
            " be set"
        )
    if cpus and quota is not None:
        raise ContainerConfigError(
            "checking --cpu-quota: Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        )
    low, high = CPU_PERIOD_RANGE
    if period is not None and not low <= period <= high:
        raise ContainerConfigError(
            f"checking --cpu-period {period}: CPU cfs period can not be less than 1ms (i.e. 1000)"
            " or larger than 1s (i.e. 1000000)"
        )
    if quota is not None and 0 < quota < MIN_CPU_QUOTA:
        raise ContainerConfigError(
            f"checking --cpu-quota {quota}: CPU cfs quota can not be less than 1ms (i.e. 1000)"
        )
    if quota is not None and quota < 0:
        quota = -1
    return period, quota


def parse_cgroupns(text: str | None) -> str:
    """``--cgroupns host|private``; pydock's default is a namespace of the container's own."""
    if text is None or text == "":
        return "private"
    if text not in CGROUPNS_MODES:
        raise ContainerConfigError(f"checking --cgroupns {text!r}: --cgroupns: invalid CGROUP mode")
    return text


def parse_attach(items: Sequence[str], *, detach: bool) -> tuple[str, ...]:
    """``-a/--attach STDIN|STDOUT|STDERR`` (any case): the streams a foreground run attaches."""
    streams: list[str] = []
    for item in items:
        name = item.lower()
        if name not in ("stdin", "stdout", "stderr"):
            raise ContainerConfigError(
                f'checking -a: invalid argument "{item}" for "-a, --attach" flag: valid streams'
                " are STDIN, STDOUT and STDERR"
            )
        if name not in streams:
            streams.append(name)
    if streams and detach:
        raise ContainerConfigError("checking -a: Conflicting options: -a and -d")
    return tuple(streams)


_CTRL_KEYS = {"@": 0, "[": 27, "\\": 28, "]": 29, "^": 30, "_": 31}


def parse_detach_keys(text: str | None) -> bytes | None:
    """``--detach-keys``: comma-separated ``ctrl-X`` (X a letter or one of ``@[\\]^_``) or
    single characters, as Docker's; None when not given."""
    if not text:
        return None
    keys = bytearray()
    for key in text.split(","):
        lowered = key.lower()
        if len(key) == 1 and key.isascii():
            keys.append(ord(key))
        elif lowered.startswith("ctrl-") and len(key) == 6 and "a" <= lowered[5] <= "z":
            keys.append(ord(lowered[5]) - ord("a") + 1)
        elif lowered.startswith("ctrl-") and len(key) == 6 and key[5] in _CTRL_KEYS:
            keys.append(_CTRL_KEYS[key[5]])
        else:
            raise ContainerConfigError(
                f"checking --detach-keys: Invalid detach keys ({text}) provided"
            )
    return bytes(keys)


def parse_volumes_from(text: str) -> tuple[str, str]:
    """``--volumes-from CONTAINER[:ro|rw]`` as the container and the mode (``""``: each mount
    keeps its own)."""
    name, _, mode = text.partition(":")
    if not name:
        raise ContainerConfigError(f"checking --volumes-from {text!r}: no container given")
    if mode not in VOLUMES_FROM_MODES:
        raise ContainerConfigError(f"checking --volumes-from {text!r}: invalid mode: {mode}")
    return name, mode


def cpu_ranges(cpus: Sequence[int]) -> str:
    """CPU numbers as the kernel lists them: ``0-3,6``."""
    ranges: list[list[int]] = []
    for cpu in sorted(cpus):
        if ranges and ranges[-1][1] == cpu - 1:
            ranges[-1][1] = cpu
        else:
            ranges.append([cpu, cpu])
    return ",".join(str(a) if a == b else f"{a}-{b}" for a, b in ranges)


def parse_cpu_shares(value: int | None) -> int | None:
    """``-c/--cpu-shares``: a relative weight (0: the default, 1024)."""
    if value is None or value == 0:
        return None
    if value < 0:
        raise ContainerConfigError(f"checking --cpu-shares {value}: shares must not be negative")
    return value


def parse_memory_swap(text: str | None, memory: int | None) -> int | None:
    """``--memory-swap``: memory plus swap (-1: unlimited swap); a limit needs ``--memory``."""
    if not text:
        return None
    value = -1 if text.strip() == "-1" else parse_ram(text, "--memory-swap")
    if value == 0:
        return None
    if memory is None and value != -1:
        raise ContainerConfigError(
            f"checking --memory-swap {text!r}: You should always set the Memory limit when"
            " using Memoryswap limit, see usage"
        )
    if memory is not None and value != -1 and value < memory:
        raise ContainerConfigError(
            f"checking --memory-swap {text!r}: Minimum memoryswap limit should be larger than"
            " memory limit, see usage"
        )
    return value


def parse_memory_reservation(text: str | None, memory: int | None) -> int | None:
    """``--memory-reservation``: the soft limit, at most ``--memory``."""
    if not text:
        return None
    value = parse_ram(text, "--memory-reservation")
    if value == 0:
        return None
    if value < MIN_RESERVATION:
        raise ContainerConfigError(
            f"checking --memory-reservation {text!r}: Minimum memory reservation allowed is 6MB"
        )
    if memory is not None and memory < value:
        raise ContainerConfigError(
            f"checking --memory-reservation {text!r}: Minimum memory limit can not be less than"
            " memory reservation limit, see usage"
        )
    return value


def parse_expose(items: Sequence[str]) -> list[str]:
    """``--expose PORT[/PROTO]`` or ``START-END[/PROTO]`` as ``PORT/PROTO`` entries."""
    found: list[str] = []
    for item in items:
        ports, _, protocol = item.partition("/")
        protocol = protocol.lower() or "tcp"
        low, dash, high = ports.partition("-")
        for part in (low, high) if dash else (low,):
            if not part.isdigit() or not 0 < int(part) <= 65535:
                raise ContainerConfigError(
                    f"parsing --expose {item!r}: invalid range format for --expose: {item},"
                    f' error: strconv.ParseUint: parsing "{part}": invalid syntax'
                )
        if dash and int(high) < int(low):
            raise ContainerConfigError(
                f"parsing --expose {item!r}: invalid range format for --expose: {item}"
            )
        if protocol not in EXPOSE_PROTOCOLS:
            raise ContainerConfigError(
                f"parsing --expose {item!r}: invalid proto: {protocol} (tcp or udp)"
            )
        found += [f"{port}/{protocol}" for port in range(int(low), int(high or low) + 1)]
    return found


def read_label_files(paths: Sequence[str]) -> tuple[str, ...]:
    """``--label-file``: ``KEY=VALUE`` (or ``KEY``) lines; blank lines and ``#`` comments
    skipped."""
    labels: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ContainerConfigError(f"reading label file: open {path}: {why.lower()}") from exc
        for line in text.splitlines():
            stripped = line.strip()
            if stripped and not stripped.startswith("#"):
                labels.append(stripped)
    return tuple(labels)
