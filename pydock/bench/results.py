"""What one ``pydock bench`` run measured, and the ``results.json`` it is saved as.

The JSON file is the source of every other output (table, Markdown report, plots), so a report
can be drawn again from an old run. Its shape (version 2)::

    {
      "format": "pydock-bench/2",
      "command": ["pydock", "bench", "--size", "small"],
      "started": "2026-11-28T03:40:00Z", "finished": "...",
      "interrupted": false,
      "machine": {"hostname", "kernel", "arch", "cpus", "memory_bytes", "python",
                  "load_average": [1.0, 0.5, 0.2], "work_dir", "work_fs", "root": true},
      "versions": {"pydock": "0.1.0", "fuse-overlayfs": "1.10", ...},
      "settings": {"size": "small", "repeat": 3, "cache": "dropped" | "warm only",
                   "baseline": "overlay2", "data": {"files": 2000, ...},
                   "warmup": 1, "settle": ["sync", ...], "settle_skipped": ["fstrim: ..."],
                   "net": {"connections": 500, "small_bytes": 1024, "big_bytes": 67108864},
                   "network": "net workloads: ... a network namespace of its own"},
      "backends": [{"name": "overlay2", "kind": "driver" | "reference",
                    "description": "...", "skipped": null | "why"}],
      "workloads": [{
          "name": "unpack", "description": "one line", "unit": "s" | "MiB/s" | "conn/s",
          "better": "lower" | "higher",
          "results": [{"backend": "overlay2", "warmup": [0.31], "samples": [0.12, 0.13],
                       "median": 0.125, "min": 0.12, "max": 0.13,
                       "ci": [0.12, 0.13] | null, "ci_coverage": 0.5 | null,
                       "ratio": 1.0 | null, "ratio_ci": [0.9, 1.1] | null,
                       "verdict": "faster" | "slower" | "no difference" | null,
                       "flags": ["bimodal", "drift"], "skipped": null | "why",
                       "received_bytes": [65536]}]}]
    }

``warmup`` holds the samples of the warm-up round, which count in nothing. Only the net
workloads have ``received_bytes``: the payload each counted sample received, checked against
the seeded files (``settings.net``) before the sample was kept. ``ratio`` is the
backend's median over the baseline's median for the same workload, so 1.0 is "as the
baseline"; whether above 1 is good depends on ``better``. ``ci``, ``ratio_ci``, ``verdict``
and ``flags`` are explained in :mod:`pydock.bench.stats`. Version 1 files (no warm-up, no
intervals) are still read; the report computes what they lack from their samples.
"""

from __future__ import annotations

import json
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydock.bench.stats import summary

FORMAT = "pydock-bench/2"
FORMATS = ("pydock-bench/1", FORMAT)  # what read_json accepts


@dataclass
class Cell:
    """The samples of one workload on one backend."""

    backend: str
    samples: list[float] = field(default_factory=list)
    warmup: list[float] = field(default_factory=list)  # measured, never counted
    received: list[int] = field(default_factory=list)  # payload bytes per sample (net only)
    skipped: str | None = None

    def median(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None


@dataclass
class WorkloadResult:
    """One workload's cells, one per backend, in the order of the run's backends."""

    name: str
    description: str
    unit: str
    better: str
    cells: dict[str, Cell] = field(default_factory=dict)

    def cell(self, backend: str) -> Cell:
        return self.cells.setdefault(backend, Cell(backend))

    def ratio(self, backend: str, baseline: str) -> float | None:
        """Median of ``backend`` over the median of ``baseline``; None if either is missing."""
        ours = self.cells[backend].median() if backend in self.cells else None
        base = self.cells[baseline].median() if baseline in self.cells else None
        if ours is None or not base:
            return None
        return ours / base


@dataclass
class Run:
    """Everything one run found, in the order it ran."""

    command: list[str]
    started: str
    machine: dict[str, Any]
    versions: dict[str, str]
    settings: dict[str, Any]
    backends: list[dict[str, Any]]
    workloads: list[WorkloadResult] = field(default_factory=list)
    finished: str = ""
    interrupted: bool = False

    def to_json(self) -> dict[str, Any]:
        baseline = str(self.settings.get("baseline", ""))
        workloads = []
        for workload in self.workloads:
            results = []
            base = workload.cells.get(baseline)
            for name, cell in workload.cells.items():
                samples = [round(value, 6) for value in cell.samples]
                figures = summary(cell.samples, base.samples if base else None, workload.better)
                results.append(
                    {
                        "backend": name,
                        "warmup": [round(value, 6) for value in cell.warmup],
                        "samples": samples,
                        "min": min(samples) if samples else None,
                        "max": max(samples) if samples else None,
                        **figures,
                        "skipped": cell.skipped,
                        **({"received_bytes": list(cell.received)} if cell.received else {}),
                    }
                )
            workloads.append(
                {
                    "name": workload.name,
                    "description": workload.description,
                    "unit": workload.unit,
                    "better": workload.better,
                    "results": results,
                }
            )
        return {
            "format": FORMAT,
            "command": self.command,
            "started": self.started,
            "finished": self.finished,
            "interrupted": self.interrupted,
            "machine": self.machine,
            "versions": self.versions,
            "settings": self.settings,
            "backends": self.backends,
            "workloads": workloads,
        }


def write_json(data: dict[str, Any], path: Path) -> None:
    """Write ``data`` to ``path`` through a temporary file, so a reader never sees half."""
    part = path.with_name(path.name + ".part")
    part.write_text(json.dumps(data, indent=2) + "\n")
    part.replace(path)


def read_json(path: Path) -> dict[str, Any]:
    """A results file written by :func:`write_json`; ValueError if it is not one."""
    data = json.loads(path.read_text())
    if not isinstance(data, dict) or data.get("format") not in FORMATS:
        raise ValueError(f"{path}: not a pydock bench results file ({FORMAT})")
    return data
