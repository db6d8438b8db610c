"""One cell of a ``pydock bench`` results dict: its figures, its state, and numbers for people.

Shared by the table and report (:mod:`pydock.bench.report`) and the plots
(:mod:`pydock.bench.plots`), so that all of them say the same thing about a cell.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field
from typing import Any

from pydock.bench import stats

NOT_RUN = "not run"
SKIPPED = "skipped"
DOES_NOT_APPLY = "does not apply"  # the runner's reason for a backend without the operation
NOT_APPLICABLE = "-"
BASELINE = "baseline"

Data = dict[str, Any]


@dataclass(frozen=True)
class Figures:
    """What the report says about one cell, computed from its samples."""

    samples: list[float]
    warmup: list[float]
    median: float
    ci: stats.Interval | None
    ratio: float | None
    ratio_ci: stats.Interval | None
    verdict: str | None  # None for the baseline itself and where there is no interval
    flags: list[str] = field(default_factory=list)


def backends(data: Data) -> list[str]:
    """The backends that ran, in run order."""
    return [str(b["name"]) for b in data.get("backends", []) if not b.get("skipped")]


def result_of(workload: Data, backend: str) -> Data | None:
    for result in workload.get("results", []):
        if result.get("backend") == backend:
            return dict(result)
    return None


def baseline_of(data: Data) -> str:
    return str(data.get("settings", {}).get("baseline", ""))


def _samples(result: Data | None) -> list[float]:
    if result is None or result.get("skipped"):
        return []
    return [float(v) for v in result.get("samples") or []]


def figures(data: Data, workload: Data, backend: str) -> Figures | None:
    """The figures of ``backend`` on ``workload``; None if it has no samples."""
    result = result_of(workload, backend)
    samples = _samples(result)
    if result is None or not samples:
        return None
    base_name = baseline_of(data)
    base = _samples(result_of(workload, base_name))
    ours = stats.median_interval(samples)
    median = statistics.median(samples)
    ratio = ratio_ci = verdict = None
    if base and statistics.median(base):
        ratio = median / statistics.median(base)
        theirs = stats.median_interval(base)
        if ours is not None and theirs is not None and backend != base_name:
            ratio_ci = stats.ratio_interval(ours, theirs)
            verdict = stats.verdict(ours, theirs, str(workload.get("better", "lower")))
    warmup = [float(v) for v in result.get("warmup") or []]
    return Figures(samples, warmup, median, ours, ratio, ratio_ci, verdict, stats.flags(samples))


def state(workload: Data, backend: str) -> str | None:
    """``-``, ``skipped`` or ``not run`` for a cell without samples; None for one with."""
    result = result_of(workload, backend)
    if result is None:
        return NOT_RUN
    if result.get("skipped") == DOES_NOT_APPLY:
        return NOT_APPLICABLE
    if result.get("skipped"):
        return SKIPPED
    return None if result.get("samples") else NOT_RUN


def shown_backends(data: Data) -> list[str]:
    """The backends with something to show (samples, or a failure) in at least one workload."""
    return [
        name
        for name in backends(data)
        if any(state(w, name) in (None, SKIPPED) for w in data.get("workloads", []))
    ]


# -- numbers ------------------------------------------------------------------------------------


def _num(value: float) -> str:
    """About three significant digits, never in exponent form."""
    size = abs(value)
    if size >= 100 or size == 0:
        return f"{value:.0f}"
    if size >= 10:
        return f"{value:.1f}"
    if size >= 1:
        return f"{value:.2f}"
    return f"{value:.3f}"


def _scaled(value: float, unit: str) -> tuple[float, str]:
    if unit == "s" and abs(value) < 1:
        return value * 1000, "ms"
    return value, unit


def format_value(value: float, unit: str) -> str:
    """``value`` in ``unit`` for people: seconds under one second are shown in ms."""
    number, shown = _scaled(value, unit)
    return f"{_num(number)} {shown}".rstrip()


def format_range(interval: stats.Interval, unit: str) -> str:
    """``6.90-8.10 ms``: both ends in the unit of the upper one."""
    factor = _scaled(interval.high, unit)[0] / interval.high if interval.high else 1.0
    shown = _scaled(interval.high, unit)[1]
    return f"{_num(interval.low * factor)}-{_num(interval.high * factor)} {shown}".rstrip()


def format_ratio(ratio: float) -> str:
    """``1.23x``; small ratios keep two significant digits (``0.0031x``), not ``0.00x``."""
    if ratio == 0 or ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.2g}x"


def format_ratio_range(interval: stats.Interval) -> str:
    return f"{format_ratio(interval.low)[:-1]}-{format_ratio(interval.high)}"
