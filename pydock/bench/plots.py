"""The PNG plots of a ``pydock bench`` results dict: one per workload and a summary.

- Each backend has one colour in every plot of every run (:func:`colour`).
- A workload's chart shows each backend's median as a bar with its 95% interval, every counted
  sample as a dot and the warm-up sample as a grey cross; the axis is logarithmic where the
  values span more than 10x, so a 0.5 ms bar stays visible beside a 400 ms one. The tick label
  under each bar gives its ratio and verdict.
- The summary has one panel for times (lower is better) and one for throughputs (higher is
  better), never one axis for both: horizontal bars of the ratio to the baseline on a log scale,
  each labelled ``0.52x``; pale bars are those with no difference.
- Every PNG has a footer naming the command, the machine and the date.
"""

from __future__ import annotations

import hashlib
import re
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING

from pydock.bench.cells import (
    Data,
    Figures,
    backends,
    baseline_of,
    figures,
    format_ratio,
)
from pydock.bench.stats import SAME

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

SUMMARY = "summary"
LOG_SPAN = 10.0  # a workload whose values span more than this gets a log axis

# Fixed colours for the backends pydock knows (Tableau 10, colour-blind-safe order); any other
# name gets one from the rest of the palette by a hash of its name, the same in every run.
COLOURS = {
    "overlay2": "#4e79a7",
    "vfs": "#f28e2b",
    "fuse": "#59a14f",
    "tar": "#79706e",
    "kernel-overlay": "#b07aa1",
    "fuse-overlayfs": "#edc948",
    "podman": "#9c755f",
    "crun": "#e15759",
}
SPARE = ("#76b7b2", "#ff9da7", "#bab0ac", "#86bcb6", "#d37295", "#a0cbe8", "#8cd17d", "#b6992d")


def colour(backend: str) -> str:
    """The backend's colour: fixed for known names, a stable hash of the name for others."""
    if backend in COLOURS:
        return COLOURS[backend]
    digest = hashlib.sha256(backend.encode()).digest()
    return SPARE[digest[0] % len(SPARE)]


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "workload"


def _bars(data: Data, workload: Data) -> list[tuple[str, Figures]]:
    """(backend, figures) of each backend that ran this workload and has samples."""
    found = []
    for name in backends(data):
        cell = figures(data, workload, name)
        if cell is not None:
            found.append((name, cell))
    return found


def _ratios(data: Data, better: str) -> list[tuple[Data, dict[str, Figures]]]:
    """The workloads of one direction that have a ratio for some non-baseline backend."""
    rows = []
    baseline = baseline_of(data)
    for workload in data.get("workloads", []):
        if workload.get("better", "lower") != better:
            continue
        cells = {n: f for n, f in _bars(data, workload) if n != baseline and f.ratio is not None}
        if cells:
            rows.append((workload, cells))
    return rows


def plot_stems(data: Data) -> list[tuple[str, str, Data | None]]:
    """(alt text, file stem, workload or None for the summary) of every PNG :func:`plot` writes."""
    stems: list[tuple[str, str, Data | None]] = []
    if _ratios(data, "lower") or _ratios(data, "higher"):
        stems.append(("summary", SUMMARY, None))
    taken = {SUMMARY}
    for workload in data.get("workloads", []):
        if not _bars(data, workload):
            continue
        stem = base = _slug(str(workload["name"]))
        n = 2
        while stem in taken:
            stem, n = f"{base}-{n}", n + 1
        taken.add(stem)
        stems.append((str(workload["name"]), stem, workload))
    return stems


def footer(data: Data) -> str:
    """The command, the machine and the date, for the foot of every plot."""
    machine = data.get("machine", {})
    where = ", ".join(
        str(part)
        for part in (
            machine.get("hostname"),
            f"Linux {machine['kernel']}" if machine.get("kernel") else None,
            f"{machine['cpus']} CPUs" if machine.get("cpus") else None,
            f"on {machine['work_fs']}" if machine.get("work_fs") else None,
        )
        if part
    )
    when = str(data.get("started", "")).replace("T", " ").rstrip("Z")
    return " | ".join(p for p in (" ".join(data.get("command", [])), where, when) if p)


def _log_axis(ax: Axes, axis: str, span: float) -> None:
    """A log scale whose ticks read 0.01, 1, 100 rather than 10^-2."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    def plain(value: float, _: object) -> str:
        return f"{value:g}"

    (ax.set_yscale if axis == "y" else ax.set_xscale)("log")
    which = ax.yaxis if axis == "y" else ax.xaxis
    subs = (1.0, 2.0, 5.0) if span <= 100 else (1.0,)  # more ticks only where they fit
    which.set_major_locator(LogLocator(base=10, subs=subs))
    which.set_major_formatter(FuncFormatter(plain))
    which.set_minor_formatter(NullFormatter())


def is_log(values: list[float]) -> bool:
    """Whether values this far apart need a log axis."""
    positive = [v for v in values if v > 0]
    return bool(positive) and max(positive) / min(positive) > LOG_SPAN


def _draw_workload(ax: Axes, data: Data, workload: Data, bars: list[tuple[str, Figures]]) -> None:
    unit = str(workload.get("unit", ""))
    every = [v for _, f in bars for v in [*f.samples, *f.warmup]]
    scale, label = (1000.0, "ms") if unit == "s" and max(every) < 1 else (1.0, unit)
    xs = list(range(len(bars)))
    medians = [f.median * scale for _, f in bars]
    below = [(f.median - f.ci.low) * scale if f.ci else 0.0 for _, f in bars]
    above = [(f.ci.high - f.median) * scale if f.ci else 0.0 for _, f in bars]
    ax.bar(xs, medians, yerr=[below, above], capsize=5, alpha=0.85,
           color=[colour(name) for name, _ in bars], error_kw={"elinewidth": 1.2})  # fmt: skip
    warm_label = "warm-up (not counted)"
    for x, (_, found) in zip(xs, bars, strict=True):
        n = len(found.samples)
        offsets = [-0.2 + 0.4 * i / (n - 1) for i in range(n)] if n > 1 else [0.0]
        ax.scatter([x + o for o in offsets], [v * scale for v in found.samples], s=14,
                   color="black", zorder=3, label="sample" if x == 0 else None)  # fmt: skip
        if found.warmup:
            ax.scatter([x + 0.3] * len(found.warmup), [v * scale for v in found.warmup], s=30,
                       marker="x", color="grey", zorder=3, label=warm_label)  # fmt: skip
            warm_label = ""
    ticks = []
    baseline = baseline_of(data)
    for name, found in bars:
        if name == baseline:
            ticks.append(f"{name}\nbaseline")
        elif found.ratio is not None:
            ticks.append(f"{name}\n{format_ratio(found.ratio)} {found.verdict or ''}".rstrip())
        else:
            ticks.append(name)
    ax.set_xticks(xs, ticks, fontsize=8)
    if is_log(every):
        _log_axis(ax, "y", max(every) / min(v for v in every if v > 0))
        label += ", log scale"
    else:
        ax.set_ylim(bottom=0)
    ax.set_ylabel(f"{label} ({workload.get('better', '?')} is better)")
    heading = f"{workload['name']}: {workload.get('description', '')}"
    ax.set_title(textwrap.fill(heading, 70), fontsize=10)
    ax.legend(fontsize=7, loc="best")
    ax.grid(axis="y", alpha=0.3)


GROUP_GAP = 0.8  # between two workloads' bars, in bar heights


def _ratio_slots(rows: list[tuple[Data, dict[str, Figures]]], order: list[str]) -> float:
    """How many bar heights a panel of ``rows`` takes (each workload only its own bars)."""
    return sum(len(cells) for _, cells in rows) + GROUP_GAP * max(0, len(rows) - 1)


def _draw_ratios(ax: Axes, data: Data, rows: list[tuple[Data, dict[str, Figures]]],
                 better: str) -> None:  # fmt: skip
    order = backends(data)
    y, centres, values, labelled = 0.0, [], [], set()
    for _, cells in rows:
        names = [name for name in order if name in cells]
        centres.append(y + (len(names) - 1) / 2)
        for name in names:
            found = cells[name]
            assert found.ratio is not None
            pale = found.verdict == SAME
            bar = ax.barh([y], [found.ratio], 0.85, color=colour(name), alpha=0.35 if pale else 0.9)
            text = format_ratio(found.ratio) + ("" if found.verdict is None or pale else
                                                f" {found.verdict}")  # fmt: skip
            ax.bar_label(bar, [text], fontsize=8, padding=3)
            labelled.add(name)
            values.append(found.ratio)
            y += 1
        y += GROUP_GAP
    low, high = min([*values, 1.0]), max([*values, 1.0])
    _log_axis(ax, "x", high / low)
    ax.set_xlim(low / 2, high * 12)  # room for the labels at the ends of the bars
    ax.set_ylim(y - GROUP_GAP - 0.5, -0.5)  # the run's order, top to bottom
    ax.axvline(1.0, color="black", linewidth=0.8, linestyle="--")
    ax.set_yticks(centres, [str(w["name"]) for w, _ in rows], fontsize=9)
    baseline = baseline_of(data) or "the baseline"
    side = "left" if better == "lower" else "right"
    kind = "times" if better == "lower" else "throughputs"
    ax.set_title(f"{kind}: ratio to {baseline}, {side} of 1 is faster", fontsize=10)
    ax.set_xlabel(f"median / median of {baseline} (log scale; pale: no difference)", fontsize=9)
    from matplotlib.patches import Patch

    # the legend shows each colour in full, whatever the verdict of the bar that was first
    shown = [name for name in order if name in labelled]
    ax.legend(
        [Patch(color=colour(name), alpha=0.9) for name in shown],
        shown,
        fontsize=8,
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
    )  # beside the bars, never on them
    ax.grid(axis="x", alpha=0.3)


def _summary(data: Data) -> Figure:
    import matplotlib.pyplot as plt

    order = backends(data)
    panels = [(b, rows) for b in ("lower", "higher") if (rows := _ratios(data, b))]
    sizes = [0.28 * _ratio_slots(rows, order) + 1.3 for _, rows in panels]
    fig, axes = plt.subplots(len(panels), 1, figsize=(10.5, sum(sizes) + 0.6), squeeze=False,
                             gridspec_kw={"height_ratios": sizes})  # fmt: skip
    for ax, (better, rows) in zip(axes[:, 0], panels, strict=True):
        _draw_ratios(ax, data, rows, better)
    return fig


def plot(data: Data, out_dir: Path) -> list[Path]:
    """Write ``out_dir/plots/<workload>.png`` per workload with samples and ``summary.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = []
    for _, stem, workload in plot_stems(data):
        path = plots / f"{stem}.png"
        if workload is None:
            fig = _summary(data)
        else:
            bars = _bars(data, workload)
            fig, ax = plt.subplots(figsize=(max(6.0, 1.3 * len(bars) + 2), 4.6))
        try:
            if workload is not None:
                _draw_workload(ax, data, workload, bars)
            fig.text(0.01, 0.005, footer(data), fontsize=7, color="dimgrey", va="bottom")
            fig.tight_layout(rect=(0, 0.03, 1, 1))
            fig.savefig(path, dpi=100)
        finally:
            plt.close(fig)
        written.append(path)
    return written
