"""Docker's shapes for the container verbs, networks and volumes of the service (pure mapping).

``top`` output, ``stats`` documents, the ``X-Docker-Container-Path-Stat`` header of ``cp``
(Go's ``os.FileMode`` bits, not a unix mode) and the ``update`` body read into the arguments
of pydock's own ``update``.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from pydock.api.http import HttpError

ZERO_TIME = "0001-01-01T00:00:00Z"  # Go's zero time.Time, as Docker sends an empty sample's
CPU_PERIOD_US = 100_000  # the kernel's default CFS period, which CpuQuota is relative to

# Go's os.FileMode type bits (io/fs): what ``docker cp`` reads from the path stat header.
GO_MODE_DIR = 1 << 31
GO_MODE_SYMLINK = 1 << 27
GO_MODE_DEVICE = 1 << 26
GO_MODE_NAMED_PIPE = 1 << 25
GO_MODE_SOCKET = 1 << 24
GO_MODE_SETUID = 1 << 23
GO_MODE_SETGID = 1 << 22
GO_MODE_CHAR_DEVICE = 1 << 21
GO_MODE_STICKY = 1 << 20
_GO_KINDS = {
    stat.S_IFDIR: GO_MODE_DIR,
    stat.S_IFLNK: GO_MODE_SYMLINK,
    stat.S_IFBLK: GO_MODE_DEVICE,
    stat.S_IFCHR: GO_MODE_DEVICE | GO_MODE_CHAR_DEVICE,
    stat.S_IFIFO: GO_MODE_NAMED_PIPE,
    stat.S_IFSOCK: GO_MODE_SOCKET,
}

# HostConfig resources Docker's ``update`` may carry that pydock does not change.
UPDATE_IGNORED = (
    "CpuShares",
    "CpuRealtimePeriod",
    "CpuRealtimeRuntime",
    "CpusetCpus",
    "CpusetMems",
    "BlkioWeight",
    "MemoryReservation",
    "MemorySwap",
    "KernelMemory",
    "KernelMemoryTCP",
)


def go_file_mode(mode: int) -> int:
    """A unix ``st_mode`` as Go's ``os.FileMode``."""
    result = mode & 0o777 | _GO_KINDS.get(stat.S_IFMT(mode), 0)
    if mode & stat.S_ISUID:
        result |= GO_MODE_SETUID
    if mode & stat.S_ISGID:
        result |= GO_MODE_SETGID
    if mode & stat.S_ISVTX:
        result |= GO_MODE_STICKY
    return result


def go_time(ns: int) -> str:
    """Nanoseconds since the epoch as Go marshals a ``time.Time`` (RFC 3339, UTC, the
    fraction without trailing zeros)."""
    seconds, fraction = divmod(ns, 1_000_000_000)
    moment = dt.datetime.fromtimestamp(seconds, dt.UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if fraction:
        text += f".{fraction:09d}".rstrip("0")
    return text + "Z"


def path_stat_header(name: str, size: int, mode: int, mtime_ns: int, link_target: str) -> str:
    """The ``X-Docker-Container-Path-Stat`` header: base64 of the JSON of the path's facts."""
    document = {
        "name": name,
        "size": size,
        "mode": go_file_mode(mode),
        "mtime": go_time(mtime_ns),
        "linkTarget": link_target,
    }
    return base64.b64encode(json.dumps(document).encode()).decode("ascii")


def top_document(text: str) -> dict[str, object]:
    """``ps`` output as ``{"Titles": [...], "Processes": [[...], ...]}``; the last column (the
    command) keeps its spaces."""
    lines = text.splitlines()
    if not lines:
        return {"Titles": [], "Processes": []}
    titles = lines[0].split()
    last = max(0, len(titles) - 1)
    processes = []
    for line in lines[1:]:
        words = line.split()
        if words:
            processes.append([*words[:last], " ".join(words[last:])])
    return {"Titles": titles, "Processes": processes}


@dataclass(frozen=True)
class StatsSample:
    """One reading of a container's cgroup and of the host's CPU time."""

    read_ns: int
    cpu_ns: int
    system_cpu_ns: int
    memory: int
    memory_limit: int
    pids: int
    pids_limit: int
    online_cpus: int


def _cpu_stats(sample: StatsSample | None) -> dict[str, object]:
    throttling = {"periods": 0, "throttled_periods": 0, "throttled_time": 0}
    usage: dict[str, object]
    if sample is None:
        usage = {"total_usage": 0, "usage_in_kernelmode": 0, "usage_in_usermode": 0}
        return {"cpu_usage": usage, "throttling_data": throttling}
    usage = {"total_usage": sample.cpu_ns, "usage_in_kernelmode": 0, "usage_in_usermode": 0}
    return {  # what Docker reads of the CPU: total and system time, CPUs
        "cpu_usage": usage,
        "system_cpu_usage": sample.system_cpu_ns,
        "online_cpus": sample.online_cpus,
        "throttling_data": throttling,
    }


def stats_document(
    container_id: str, name: str, now: StatsSample | None, before: StatsSample | None
) -> dict[str, object]:
    """Docker's stats JSON for the figures pydock reads (``now`` None: not running, zeros)."""
    memory: dict[str, object] = {}
    pids: dict[str, object] = {}
    if now is not None:
        memory = {"usage": now.memory, "limit": now.memory_limit, "stats": {}}
        pids = {"current": now.pids}
        if now.pids_limit:
            pids["limit"] = now.pids_limit
    return {
        "read": go_time(now.read_ns) if now is not None else ZERO_TIME,
        "preread": go_time(before.read_ns) if before is not None else ZERO_TIME,
        "pids_stats": pids,
        "blkio_stats": {
            "io_service_bytes_recursive": None,
            "io_serviced_recursive": None,
            "io_queue_recursive": None,
            "io_service_time_recursive": None,
            "io_wait_time_recursive": None,
            "io_merged_recursive": None,
            "io_time_recursive": None,
            "sectors_recursive": None,
        },
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_stats(now),
        "precpu_stats": _cpu_stats(before),
        "memory_stats": memory,
        "name": "/" + name,
        "id": container_id,
    }


@dataclass(frozen=True)
class UpdateRequest:
    """An ``update`` body as the arguments of pydock's ``update`` (None: unchanged)."""

    memory: str | None = None
    cpus: str | None = None
    pids_limit: int | None = None
    restart: str | None = None
    warnings: tuple[str, ...] = ()

    def is_empty(self) -> bool:
        return (self.memory, self.cpus, self.pids_limit, self.restart) == (None,) * 4


def _integer(body: Mapping[str, object], key: str) -> int:
    value = body.get(key)
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int):
        raise HttpError(400, f"invalid {key}: {value!r} is not a number")
    return value


def update_request(body: Mapping[str, object]) -> UpdateRequest:
    """Read Docker's ``update`` body: ``Memory``, ``NanoCpus`` or ``CpuQuota``/``CpuPeriod``,
    ``PidsLimit`` and ``RestartPolicy``; zero means unchanged, as Docker's daemon reads it."""
    memory = _integer(body, "Memory")
    nano_cpus = _integer(body, "NanoCpus")
    quota, period = _integer(body, "CpuQuota"), _integer(body, "CpuPeriod")
    if nano_cpus and quota > 0:
        raise HttpError(400, "NanoCpus and CpuQuota cannot both be set")
    cpus = None
    if nano_cpus:
        cpus = f"{nano_cpus / 1e9:g}"
    elif quota > 0:
        cpus = f"{quota / (period or CPU_PERIOD_US):g}"
    pids_limit = None
    if body.get("PidsLimit") is not None:
        pids_limit = max(0, _integer(body, "PidsLimit"))  # 0 and -1: unlimited
    restart = None
    policy = body.get("RestartPolicy")
    if isinstance(policy, Mapping) and policy.get("Name"):
        restart = str(policy["Name"])
        retries = policy.get("MaximumRetryCount")
        if restart == "on-failure" and isinstance(retries, int) and retries > 0:
            restart += f":{retries}"
    warnings = tuple(
        f"pydock does not change {key}; it was ignored" for key in UPDATE_IGNORED if body.get(key)
    )
    return UpdateRequest(
        memory=str(memory) if memory else None,
        cpus=cpus,
        pids_limit=pids_limit,
        restart=restart,
        warnings=warnings,
    )
