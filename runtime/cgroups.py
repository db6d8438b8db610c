"""Per-container cgroups: ``--memory``, ``--cpus``, ``--pids-limit`` and the like, on v2 or v1.

The layout is read from /proc/self/mountinfo: a cgroup2 file system on /sys/fs/cgroup is the
unified (v2) layout; otherwise each controller must be mounted as its own v1 hierarchy (the
legacy and hybrid layouts). A container's cgroup is ``<parent>/<id>``, removed with the
container. The default parent differs by version: v2 forbids controllers below a cgroup that
holds processes, and the caller is in its own cgroup, so v2 uses ``/pydock`` at the top (as
Docker's ``/docker``); v1 has no such rule, so there the parent is ``pydock`` below the caller's
own cgroup in each hierarchy, and limits placed on the caller keep applying to its containers.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path

from .errors import CgroupError
from .spec import CgroupLimits

CGROUP_ROOT = Path("/sys/fs/cgroup")
CPU_PERIOD_US = 100_000
# Controllers a container's cgroup gets even without limits, where the host lets us: they give
# ``stats`` and ``top`` their figures, the OOM-kill count, and the freezer that ``pause`` uses.
TRACKED = ("memory", "cpu", "cpuacct", "pids", "freezer")
# What v1 has as controllers and v2 has in every cgroup without enabling anything.
_V2_BUILTIN = frozenset({"cpuacct", "freezer"})
FREEZE_TIMEOUT = 10.0


@dataclass(frozen=True)
class MountedHierarchy:
    """One mounted cgroup hierarchy: where it is, what it holds, which cgroup it shows as /."""

    mountpoint: Path
    root: str
    version: int
    controllers: frozenset[str]


def mounted_hierarchies(mountinfo: str) -> list[MountedHierarchy]:
    """Parse /proc/self/mountinfo text into the cgroup hierarchies it lists."""
    found = []
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        if not sep:
            continue
        fields, tail = left.split(), right.split()
        if len(fields) < 5 or len(tail) < 3 or tail[0] not in ("cgroup", "cgroup2"):
            continue
        mountpoint = Path(fields[4].replace("\\040", " "))
        if tail[0] == "cgroup2":
            names = frozenset(_read(mountpoint / "cgroup.controllers").split())
            found.append(MountedHierarchy(mountpoint, fields[3], 2, names))
        else:
            options = tail[2].split(",")
            names = frozenset(o for o in options if o not in ("rw", "ro") and "=" not in o)
            found.append(MountedHierarchy(mountpoint, fields[3], 1, names))
    return found


def own_cgroups(text: str) -> dict[str, str]:
    """Map each controller of /proc/self/cgroup text (``""`` for v2) to the caller's path."""
    paths: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        for name in parts[1].split(",") if parts[1] else [""]:
            paths[name] = parts[2]
    return paths


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _needed(limits: CgroupLimits) -> list[str]:
    names = []
    if (limits.memory, limits.memory_swap, limits.memory_reservation) != (None, None, None):
        names.append("memory")
    cfs = (limits.cpu_period, limits.cpu_quota) != (None, None)
    if limits.cpus is not None or limits.cpu_shares is not None or cfs:
        names.append("cpu")
    if limits.pids is not None:
        names.append("pids")
    if limits.cpuset_cpus is not None or limits.cpuset_mems is not None:
        names.append("cpuset")
    if limits.device_denies:
        names.append("devices")
    return names


def cpu_weight(shares: int) -> int:
    """cgroup v2's ``cpu.weight`` (1-10000) for v1's ``cpu.shares`` (2-262144), as runc maps."""
    shares = min(max(shares, 2), 262144)
    return 1 + ((shares - 2) * 9999) // 262142


def _settings(limits: CgroupLimits, version: int) -> list[tuple[str, str, str]]:
    """Return (controller, file, value) writes that apply ``limits``."""
    writes = []
    if limits.memory is not None:
        name = "memory.max" if version == 2 else "memory.limit_in_bytes"
        writes.append(("memory", name, str(limits.memory)))
    if limits.cpus is not None:
        quota = max(1000, round(limits.cpus * CPU_PERIOD_US))
        if version == 2:
            writes.append(("cpu", "cpu.max", f"{quota} {CPU_PERIOD_US}"))
        else:
            writes.append(("cpu", "cpu.cfs_period_us", str(CPU_PERIOD_US)))
            writes.append(("cpu", "cpu.cfs_quota_us", str(quota)))
    if (limits.cpu_period, limits.cpu_quota) != (None, None):
        writes += _cfs_settings(limits.cpu_period, limits.cpu_quota, version)
    if limits.pids is not None:
        writes.append(("pids", "pids.max", str(limits.pids)))
    if limits.memory_reservation is not None:
        name = "memory.low" if version == 2 else "memory.soft_limit_in_bytes"
        writes.append(("memory", name, str(limits.memory_reservation)))
    if limits.memory_swap is not None:
        # v1 limits memory plus swap, and only at or above memory.limit_in_bytes (written
        # first); v2 limits the swap alone.
        if version == 2:
            swap = (
                "max"
                if limits.memory_swap == -1
                else str(limits.memory_swap - (limits.memory or 0))
            )
            writes.append(("memory", "memory.swap.max", swap))
        else:
            writes.append(("memory", "memory.memsw.limit_in_bytes", str(limits.memory_swap)))
    if limits.cpu_shares is not None:
        if version == 2:
            writes.append(("cpu", "cpu.weight", str(cpu_weight(limits.cpu_shares))))
        else:
            writes.append(("cpu", "cpu.shares", str(limits.cpu_shares)))
    if limits.cpuset_cpus is not None:
        writes.append(("cpuset", "cpuset.cpus", limits.cpuset_cpus))
    if limits.cpuset_mems is not None:
        writes.append(("cpuset", "cpuset.mems", limits.cpuset_mems))
    if limits.device_denies:
        if version == 2:
            raise CgroupError(
                "limiting device permissions: cgroup v2 needs an eBPF device program, which "
                "pydock does not load (give the device rwm)"
            )
        for rule in limits.device_denies:
            writes.append(("devices", "devices.deny", rule))
    return writes


def _cfs_settings(
    period: int | None, quota: int | None, version: int
) -> list[tuple[str, str, str]]:
    """``--cpu-period``/``--cpu-quota``: v1's two files (the period first: the kernel checks the
    quota against it), v2's one ``cpu.max`` (``max`` for no quota, the default period)."""
    if version == 2:
        limit = "max" if quota is None or quota < 0 else str(quota)
        return [("cpu", "cpu.max", f"{limit} {period or CPU_PERIOD_US}")]
    writes = []
    if period is not None:
        writes.append(("cpu", "cpu.cfs_period_us", str(period)))
    if quota is not None:
        writes.append(("cpu", "cpu.cfs_quota_us", str(quota if quota > 0 else -1)))
    return writes


@dataclass(frozen=True)
class CgroupUsage:
    """What a cgroup uses now: memory (and its limit, 0 for none) in bytes, CPU time in
    nanoseconds, processes."""

    memory: int
    memory_limit: int
    cpu_ns: int
    pids: int


def _number(text: str) -> int:
    """A control file's number; 0 for ``max``, empty or unlimited (v1's huge value)."""
    text = text.strip()
    if not text.isdigit():
        return 0
    value = int(text)
    return 0 if value >= 1 << 62 else value


@dataclass(frozen=True)
class Cgroup:
    """The cgroup directories of one container, by controller (v2: the same directory)."""

    container_id: str
    version: int
    directories: dict[str, Path]
    # True when the parent is the default ``pydock`` directory, removed once it is empty.
    owns_parent: bool = True

    def add(self, pid: int) -> None:
        """Move process ``pid`` into the container's cgroup."""
        for directory in sorted(set(self.directories.values())):
            try:
                (directory / "cgroup.procs").write_text(str(pid))
            except OSError as exc:
                raise CgroupError(
                    f"moving process {pid} into cgroup {directory}: {exc.strerror}",
                    container_id=self.container_id,
                    path=directory,
                ) from exc

    def join_handles(self) -> tuple[int, ...]:
        """Descriptors through which a process of one thread moves itself in (:func:`join`);
        ``()`` on v2, where the caller moves it (:meth:`add`).

        On v1 a thread that writes 0 to a hierarchy's ``tasks`` moves only itself, which the
        kernel does without write-locking every thread group; a pid written to
        ``cgroup.procs`` takes that lock, and its first taking waits an RCU grace period
        (10-20 ms on a hybrid host). v2 moves processes only, through ``cgroup.procs``.
        The descriptors are opened here, by the caller (the kernel checks the opener's
        credentials), close on exec, and are the caller's to close.
        """
        if self.version != 1:
            return ()
        handles: list[int] = []
        try:
            for directory in sorted(set(self.directories.values())):
                handles.append(os.open(directory / "tasks", os.O_WRONLY | os.O_CLOEXEC))
        except OSError as exc:
            for fd in handles:
                os.close(fd)
            raise CgroupError(
                f"opening cgroup {exc.filename} for container {self.container_id}: {exc.strerror}",
                container_id=self.container_id,
                path=exc.filename,
            ) from exc
        return tuple(handles)

    def read(self, controller: str, name: str) -> str:
        """Return the stripped contents of one control file."""
        return (self.directories[controller] / name).read_text().strip()

    def to_json(self) -> str:
        """What :meth:`from_json` reads back: the version and the directories."""
        paths = {name: str(path) for name, path in sorted(self.directories.items())}
        document = {"version": self.version, "directories": paths, "owns_parent": self.owns_parent}
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_json(cls, container_id: str, text: str) -> Cgroup:
        """The cgroup :meth:`to_json` described."""
        document = json.loads(text)
        paths = {str(k): Path(v) for k, v in dict(document["directories"]).items()}
        return cls(container_id, int(document["version"]), paths, bool(document["owns_parent"]))

    def exists(self) -> bool:
        """Whether its directories are still there (the monitor removes them at the exit)."""
        return any(directory.is_dir() for directory in self.directories.values())

    def _file(self, controller: str, name: str) -> str:
        """The contents of one control file, ``""`` when it is not there."""
        directory = self.directories.get(controller)
        return "" if directory is None else _read(directory / name)

    def oom_killed(self) -> bool:
        """Whether the kernel's OOM killer killed a process of this cgroup."""
        if self.version == 2:
            text = self._file("memory", "memory.events")
        else:
            text = self._file("memory", "memory.oom_control")
        counts = dict(line.split(None, 1) for line in text.splitlines() if " " in line)
        return int(counts.get("oom_kill", "0")) > 0 or (
            self.version == 1 and counts.get("under_oom", "0").strip() == "1"
        )

    def pids(self) -> list[int]:
        """The processes in the cgroup."""
        controller = "pids" if "pids" in self.directories else next(iter(self.directories))
        return [int(word) for word in self._file(controller, "cgroup.procs").split()]

    def is_frozen(self) -> bool:
        """Whether the cgroup is frozen (``pause``)."""
        if self.version == 2:
            return "frozen 1" in self._file("freezer", "cgroup.events").splitlines()
        return self._file("freezer", "freezer.state").strip() == "FROZEN"

    def freeze(self, frozen: bool = True) -> None:
        """Freeze (or thaw) every process of the cgroup; returns once the kernel has."""
        if "freezer" not in self.directories:
            raise CgroupError(
                f"freezing container {self.container_id}: no freezer cgroup (it needs root "
                "and the freezer controller)",
                container_id=self.container_id,
            )
        directory = self.directories["freezer"]
        name, value = ("cgroup.freeze", "1" if frozen else "0")
        if self.version == 1:
            name, value = ("freezer.state", "FROZEN" if frozen else "THAWED")
        deadline = time.monotonic() + FREEZE_TIMEOUT
        try:
            while True:
                (directory / name).write_text(value)
                if self.is_frozen() == frozen:
                    return
                if time.monotonic() > deadline:
                    raise CgroupError(
                        f"freezing container {self.container_id}: {directory} did not settle",
                        container_id=self.container_id,
                        path=directory,
                    )
                time.sleep(0.01)
        except OSError as exc:
            raise CgroupError(
                f"freezing container {self.container_id} in {directory}: {exc.strerror}",
                container_id=self.container_id,
                path=directory,
            ) from exc

    def usage(self) -> CgroupUsage:
        """Memory, CPU time and process figures (``stats``)."""
        if self.version == 2:
            memory = _number(self._file("memory", "memory.current"))
            limit = _number(self._file("memory", "memory.max"))
            cpu_stat = dict(
                line.split(None, 1) for line in self._file("cpu", "cpu.stat").splitlines()
            )
            cpu_ns = _number(cpu_stat.get("usage_usec", "")) * 1000
        else:
            memory = _number(self._file("memory", "memory.usage_in_bytes"))
            limit = _number(self._file("memory", "memory.limit_in_bytes"))
            cpu_ns = _number(self._file("cpuacct", "cpuacct.usage"))
        pids = _number(self._file("pids", "pids.current")) if "pids" in self.directories else 0
        return CgroupUsage(memory, limit, cpu_ns, pids or len(self.pids()))

    def update(self, limits: CgroupLimits) -> None:
        """Apply new limits to a live cgroup (``update``)."""
        for controller, name, value in _settings(limits, self.version):
            directory = self.directories.get(controller)
            if directory is None:
                raise CgroupError(
                    f"updating container {self.container_id}: it has no {controller} cgroup",
                    container_id=self.container_id,
                )
            try:
                (directory / name).write_text(value)
            except OSError as exc:
                raise CgroupError(
                    f"updating container {self.container_id}: {directory / name}: "
                    f"{(exc.strerror or str(exc)).lower()}",
                    container_id=self.container_id,
                    path=directory / name,
                ) from exc

    def remove(self, timeout: float = 2.0) -> None:
        """Remove the container's cgroup directories, waiting briefly for exiting processes."""
        deadline = time.monotonic() + timeout
        for directory in sorted(set(self.directories.values())):
            while True:
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError as exc:
                    if exc.errno != errno.EBUSY or time.monotonic() > deadline:
                        raise CgroupError(
                            f"removing cgroup {directory}: {exc.strerror}",
                            container_id=self.container_id,
                            path=directory,
                        ) from exc
                    time.sleep(0.01)
            if self.owns_parent:
                # It stays while other containers use it.
                with contextlib.suppress(OSError):
                    directory.parent.rmdir()


def _hierarchy_for(
    controller: str, hierarchies: list[MountedHierarchy], container_id: str
) -> MountedHierarchy:
    unified = next((h for h in hierarchies if h.mountpoint == CGROUP_ROOT and h.version == 2), None)
    if unified is not None:
        if controller not in unified.controllers and controller not in _V2_BUILTIN:
            raise CgroupError(
                f"setting limits for container {container_id}: the {controller} controller is "
                f"not enabled in {CGROUP_ROOT}/cgroup.controllers",
                container_id=container_id,
            )
        return unified
    legacy = next((h for h in hierarchies if h.version == 1 and controller in h.controllers), None)
    if legacy is None:
        raise CgroupError(
            f"setting limits for container {container_id}: no cgroup v1 hierarchy with the "
            f"{controller} controller is mounted, and {CGROUP_ROOT} is not cgroup2",
            container_id=container_id,
        )
    return legacy


def _directory(
    hierarchy: MountedHierarchy, own: dict[str, str], controller: str, parent: str | None, cid: str
) -> Path:
    if parent is None and hierarchy.version == 2:
        parent = "/pydock"
    elif parent is None:
        parent = own.get(controller, "/").rstrip("/") + "/pydock"
    relative = os.path.relpath(parent, hierarchy.root) if parent.startswith("/") else parent
    if relative.startswith(".."):
        raise CgroupError(
            f"setting limits for container {cid}: cgroup {parent} is outside the mounted "
            f"hierarchy at {hierarchy.mountpoint}",
            container_id=cid,
        )
    return hierarchy.mountpoint / relative / cid


def _enable_v2(mountpoint: Path, directory: Path, controllers: list[str], cid: str) -> None:
    """Enable ``controllers`` in every ancestor of ``directory`` below the mount point."""
    request = " ".join(f"+{c}" for c in controllers)
    chain = [p for p in reversed(directory.parents) if p == mountpoint or mountpoint in p.parents]
    for ancestor in chain:
        control = ancestor / "cgroup.subtree_control"
        try:
            ancestor.mkdir(exist_ok=True)
            if controllers and not set(controllers) <= set(_read(control).split()):
                control.write_text(request)
        except OSError as exc:
            why = exc.strerror
            if exc.errno == errno.EBUSY:
                why = "it holds processes itself; use a delegated cgroup as the parent"
            raise CgroupError(
                f"enabling {', '.join(controllers)} in {ancestor} for container {cid}: {why}",
                container_id=cid,
                path=ancestor,
            ) from exc


def _make(directory: Path) -> None:
    """Create ``directory`` and its parents; retry if a removal of the parent races with us."""
    for _ in range(3):
        try:
            directory.mkdir(parents=True, exist_ok=False)
            return
        except FileNotFoundError:
            continue
    directory.mkdir(parents=True, exist_ok=False)


def _fill_cpuset(mountpoint: Path, directory: Path) -> None:
    """v1 cpuset: a new cgroup starts with no CPUs and no memory nodes, and takes no process
    until it has both; give each new level its parent's, from the top down."""
    chain = [p for p in reversed(directory.parents) if mountpoint in p.parents] + [directory]
    for level in chain:
        for name in ("cpuset.cpus", "cpuset.mems"):
            inherited = _read(level.parent / name).strip()
            if inherited and not _read(level / name).strip():
                (level / name).write_text(inherited)


def cgroup_version() -> int:
    """2 when /sys/fs/cgroup is the unified hierarchy, else 1 (the legacy and hybrid layouts)."""
    hierarchies = mounted_hierarchies(_read(Path("/proc/self/mountinfo")))
    unified = any(h.mountpoint == CGROUP_ROOT and h.version == 2 for h in hierarchies)
    return 2 if unified else 1


def join(handles: tuple[int, ...]) -> None:
    """Move the calling process, which must have one thread, into the cgroups whose ``tasks``
    files ``handles`` are (see :meth:`Cgroup.join_handles`); closes them."""
    try:
        for fd in handles:
            os.write(fd, b"0")
    finally:
        for fd in handles:
            os.close(fd)


def create_tracked(
    container_id: str, limits: CgroupLimits, *, parent: str | None = None
) -> Cgroup | None:
    """The container's cgroup with ``limits`` and, where the host allows, every controller of
    :data:`TRACKED`; without limits, ``None`` where no cgroup can be made (rootless)."""
    try:
        return create(container_id, limits, parent=parent, extra=TRACKED)
    except CgroupError:
        if limits.is_empty():
            return None
    return create(container_id, limits, parent=parent)


def create(
    container_id: str,
    limits: CgroupLimits,
    *,
    parent: str | None = None,
    extra: tuple[str, ...] = (),
) -> Cgroup:
    """Create the container's cgroup with ``limits`` applied, or raise CgroupError.

    ``extra`` names controllers to join without a limit; those the host lacks are left out.
    """
    hierarchies = mounted_hierarchies(_read(Path("/proc/self/mountinfo")))
    own = own_cgroups(_read(Path("/proc/self/cgroup")))
    controllers = _needed(limits)
    chosen: dict[str, MountedHierarchy] = {}
    for controller in controllers:
        chosen[controller] = _hierarchy_for(controller, hierarchies, container_id)
    for controller in extra:
        if controller not in chosen:
            with contextlib.suppress(CgroupError):
                chosen[controller] = _hierarchy_for(controller, hierarchies, container_id)
    enabled = [c for c, h in chosen.items() if h.version == 2 and c not in _V2_BUILTIN]
    directories: dict[str, Path] = {}
    version = 2
    for controller, hierarchy in chosen.items():
        version = hierarchy.version
        directory = _directory(hierarchy, own, controller, parent, container_id)
        if version == 2:
            _enable_v2(hierarchy.mountpoint, directory, enabled, container_id)
        directories[controller] = directory
    cgroup = Cgroup(container_id, version, directories, owns_parent=parent is None)
    writes = _settings(limits, version)
    try:
        for directory in sorted(set(directories.values())):
            _make(directory)
        cpuset = chosen.get("cpuset")
        if cpuset is not None and cpuset.version == 1:
            _fill_cpuset(cpuset.mountpoint, directories["cpuset"])
        for controller, name, value in writes:
            (directories[controller] / name).write_text(value)
    except OSError as exc:
        cgroup.remove()
        why = exc.strerror or str(exc)
        if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            why += " (cgroup limits need root, or a cgroup v2 tree delegated to this user)"
        raise CgroupError(
            f"setting limits for container {container_id} in {exc.filename}: {why}",
            container_id=container_id,
            path=exc.filename,
        ) from exc
    return cgroup
