"""Running the plan: every workload on every backend, interleaved, with clean-up on any exit.

For each workload a warm-up round runs first (its samples are kept apart and count in nothing:
first-use costs land there), then ``repeat`` rounds that alternate the order of the backends
(A B C, then C B A, ...), so slow drift of a shared machine falls on all of them alike. The file
system is settled between rounds (see :mod:`pydock.bench.settle`). A backend that cannot run here is
skipped with the reason, and one whose operation fails has that workload marked "failed" with
the tool's last line; the rest of the run goes on. Ctrl-C (or SIGTERM) stops the run: what was
measured is kept, and every mount and process the run started is removed.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import shutil
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import graphdriver
from graphdriver.mountutil import detach, mounts_under
from pydock.bench.backends import Backend, NotApplicable, tool_error
from pydock.bench.net import Transfer
from pydock.bench.results import Run, WorkloadResult
from pydock.bench.settle import Settler
from pydock.bench.workloads import Workload
from pydock.errors import PydockError
from pydock.info import package_version

Progress = Callable[[str, int], None]  # (what runs now, samples done so far)


@dataclass
class Plan:
    """What to run."""

    backends: list[Backend]
    workloads: list[Workload]
    repeat: int
    work: Path
    skipped: dict[str, str] = field(default_factory=dict)  # backend name -> why
    settler: Settler | None = None  # None: only the sync before every sample
    warmup: int = 1  # uncounted rounds before the counted ones

    def samples(self) -> int:
        """How many samples the plan takes at most, warm-up included (for the progress bar)."""
        count = 0
        for workload in self.workloads:
            runs = [b for b in self.backends if self.applies(b, workload)]
            count += len(runs) * (self.warmup + self.repeat)
        return count

    def applies(self, backend: Backend, workload: Workload) -> bool:
        return backend.name not in self.skipped and workload.operation in backend.operations


def now() -> str:
    return dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def execute(plan: Plan, run: Run, progress: Progress) -> None:
    """Run the plan, adding to ``run`` as samples come in; KeyboardInterrupt stops it."""
    ready: set[str] = set()
    done = 0
    for workload in plan.workloads:
        result = WorkloadResult(workload.name, workload.description, workload.unit,
                                workload.better)  # fmt: skip
        run.workloads.append(result)
        active = []
        for backend in plan.backends:
            cell = result.cell(backend.name)
            if backend.name in plan.skipped:
                cell.skipped = plan.skipped[backend.name]
            elif workload.operation not in backend.operations:
                cell.skipped = "does not apply"
            else:
                active.append(backend)
        for round_ in range(-plan.warmup, plan.repeat):
            if plan.settler is not None and round_ > -plan.warmup:
                plan.settler.settle()
            order = active if round_ % 2 == 0 else active[::-1]
            for backend in order:
                cell = result.cell(backend.name)
                if cell.skipped is not None:
                    continue
                which = "warm-up" if round_ < 0 else f"round {round_ + 1}/{plan.repeat}"
                label = f"{workload.name} on {backend.name} ({which})"
                if backend.name not in ready:
                    progress(f"setting up {backend.name}", done)
                    failure = _attempt(backend.setup)
                    ready.add(backend.name)
                    if failure is not None:
                        plan.skipped[backend.name] = f"set-up failed: {failure}"
                progress(label, done)
                if backend.name in plan.skipped:
                    cell.skipped = plan.skipped[backend.name]
                    continue
                value: list[float | Transfer] = []
                failure = _attempt(_sample, workload, backend, value)
                done += 1
                if failure is not None:
                    cell.samples.clear()
                    cell.received.clear()
                    cell.skipped = f"failed: {failure}"
                elif round_ < 0:
                    cell.warmup.extend(_figure(got) for got in value)
                else:
                    cell.samples.extend(_figure(got) for got in value)
                    cell.received.extend(g.received for g in value if isinstance(g, Transfer))
        progress(f"{workload.name} done", done)


def _sample(workload: Workload, backend: Backend, into: list[float | Transfer]) -> None:
    into.append(workload.measure(backend))


def _figure(sample: float | Transfer) -> float:
    return sample.value if isinstance(sample, Transfer) else sample


def _attempt(action: Callable[..., object], *args: object) -> str | None:
    """Call ``action(*args)``; None, or a one-line reason when it failed in an expected way."""
    try:
        action(*args)
    except NotApplicable:
        return "does not apply"
    except subprocess.CalledProcessError as exc:
        return tool_error(exc)
    except subprocess.TimeoutExpired as exc:
        return f"{os.path.basename(str(exc.cmd[0]))} took longer than {exc.timeout:.0f} s"
    except (OSError, graphdriver.GraphDriverError, PydockError) as exc:
        return " ".join(str(exc).split()) or type(exc).__name__
    return None


def close_all(plan: Plan) -> None:
    """Close every backend, then detach any mount and stop any process left under the work dir."""
    for backend in reversed(plan.backends):
        with contextlib.suppress(Exception):
            backend.close()
    sweep(plan.work)


def sweep(work: Path) -> None:
    """Kill the processes (not our ancestors) naming ``work``; detach the mounts below it.

    ``work`` itself is left mounted: it may be a file system the user gave with ``--dir``.
    """
    marker = os.fsencode(str(work))
    spare = _ancestors()  # the shell or script that started this run names the dir too
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in spare:
            continue
        with contextlib.suppress(OSError):
            if marker in (entry / "cmdline").read_bytes():
                os.kill(int(entry.name), signal.SIGKILL)
    below = [p for p in mounts_under(work) if p != os.path.realpath(work)]  # --dir may be one
    for target in below:
        with contextlib.suppress(OSError):
            detach(Path(target))


def _ancestors() -> set[int]:
    """This process and every process above it, up to pid 1."""
    found, pid = set(), os.getpid()
    while pid > 0 and pid not in found:
        found.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return found


@contextlib.contextmanager
def sigterm_interrupts() -> Iterator[None]:
    """Treat SIGTERM like Ctrl-C while the benchmark runs, so it cleans up the same way."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


# -- facts about the run ------------------------------------------------------------------------


def machine(work: Path) -> dict[str, Any]:
    """The facts that make two runs comparable (or not)."""
    memory = 0
    with contextlib.suppress(OSError, ValueError, IndexError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                memory = int(line.split()[1]) * 1024
    where = work_mount(work)
    return {
        "hostname": socket.gethostname(),
        "kernel": platform.release(),
        "arch": platform.machine(),
        "cpus": os.cpu_count(),
        "memory_bytes": memory,
        "python": platform.python_version(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "work_dir": str(work),
        "work_fs": where.get("fstype", ""),
        "work_mount": where.get("target", ""),
        "work_device": where.get("source", ""),
        "work_fs_options": where.get("options", ""),
        "root": os.geteuid() == 0,
    }


def _unescape(field: str) -> str:
    """A mountinfo field with its octal escapes (``\\040`` for a space) decoded."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def work_mount(work: Path, mountinfo: str | None = None) -> dict[str, str]:
    """The mount holding ``work`` (or its nearest existing parent): target, fstype, source, options.

    Read from /proc/self/mountinfo, which names every file system as the kernel does (tmpfs,
    overlay, ext4, xfs, btrfs, fuse.*); ``work`` need not exist yet.
    """
    path, rest = Path(os.path.abspath(work)), Path()
    while not path.exists() and path != path.parent:
        path, rest = path.parent, Path(path.name) / rest
    real = os.path.normpath(Path(os.path.realpath(path)) / rest)
    if mountinfo is None:
        try:
            mountinfo = Path("/proc/self/mountinfo").read_text()
        except OSError:
            return {}
    best: dict[str, str] = {}
    for line in mountinfo.splitlines():
        left, sep, right = line.partition(" - ")
        fields, tail = left.split(), right.split()
        if not sep or len(fields) < 6 or len(tail) < 2:
            continue
        target = _unescape(fields[4])
        inside = real == target or real.startswith(target.rstrip("/") + "/")
        # a later mount on the same target hides the earlier one, so ">=" keeps the last
        if inside and len(target) >= len(best.get("target", "")):
            both = fields[5].split(",") + (tail[2].split(",") if len(tail) > 2 else [])
            options = ",".join(dict.fromkeys(both))  # the mount's flags, then the fs's own
            best = {"target": target, "fstype": tail[0], "source": _unescape(tail[1]),
                    "options": options}  # fmt: skip
    return best


def _tool_version(argv: list[str]) -> str | None:
    if shutil.which(argv[0]) is None:
        return None
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        done = subprocess.run(argv, capture_output=True, text=True, timeout=30)
        lines = (done.stdout or done.stderr).strip().splitlines()
        named = [line for line in lines if argv[0] in line]  # fuse-overlayfs prints libfuse's too
        return (named or lines)[0] if lines else None
    return None


def versions() -> dict[str, str]:
    """pydock's version and its main libraries', and those of the reference tools present."""
    found = {"pydock": package_version("pydock"), "python": sys.version.split()[0]}
    for package in ("pyfuse3", "trio", "sqlite-utils"):
        found[package] = package_version(package)
    for name, argv in (
        ("fuse-overlayfs", ["fuse-overlayfs", "--version"]),
        ("podman", ["podman", "--version"]),
        ("tar", ["tar", "--version"]),
    ):
        version = _tool_version(argv)
        if version is not None:
            found[name] = version
    return found
