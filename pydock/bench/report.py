"""Draw a ``pydock bench`` results dict as a terminal table, a Markdown report and PNG plots.

Everything here reads only the plain dict of ``results.json`` (see :mod:`pydock.bench.results`),
so an old run can be drawn again. Partial runs are normal: a cell may be missing, skipped or
empty, and every output says so rather than failing. A cell reads ``12.3 ms (1.00x) ±4.1%``:
the median, its ratio to the baseline's median, and the spread (max - min) / median.
"""

from __future__ import annotations

import re
import statistics
import textwrap
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from pydock.bench.results import write_json

if TYPE_CHECKING:
    from matplotlib.axes import Axes

NOT_RUN = "not run"
SKIPPED = "skipped"
DOES_NOT_APPLY = "does not apply"  # the runner's reason for a backend without the operation
NOT_APPLICABLE = "-"
SUMMARY = "summary"

Data = dict[str, Any]


def _backends(data: Data) -> list[str]:
    """The backends that ran, in run order."""
    return [str(b["name"]) for b in data.get("backends", []) if not b.get("skipped")]


def _result(workload: Data, backend: str) -> Data | None:
    for result in workload.get("results", []):
        if result.get("backend") == backend:
            return dict(result)
    return None


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


def format_value(value: float, unit: str) -> str:
    """``value`` in ``unit`` for people: seconds under one second are shown in ms."""
    if unit == "s" and abs(value) < 1:
        return f"{_num(value * 1000)} ms"
    return f"{_num(value)} {unit}".rstrip()


def format_ratio(ratio: float) -> str:
    """``1.23x``; small ratios keep two significant digits (``0.0031x``), not ``0.00x``."""
    if ratio == 0 or ratio >= 0.1:
        return f"{ratio:.2f}x"
    return f"{ratio:.2g}x"


def _median(result: Data) -> float | None:
    if result.get("median") is not None:
        return float(result["median"])
    samples = result.get("samples") or []
    return float(statistics.median(samples)) if samples else None


def cell_text(result: Data | None, unit: str) -> str:
    """One table cell: median, ratio to the baseline, and spread when there are 2+ samples."""
    if result is None:
        return NOT_RUN
    if result.get("skipped") == DOES_NOT_APPLY:
        return NOT_APPLICABLE
    if result.get("skipped"):
        return SKIPPED
    median = _median(result)
    if median is None:
        return NOT_RUN
    parts = [format_value(median, unit)]
    if result.get("ratio") is not None:
        parts.append(f"({format_ratio(float(result['ratio']))})")
    samples = [float(v) for v in result.get("samples") or []]
    if len(samples) >= 2 and median:
        spread = (max(samples) - min(samples)) / median * 100
        parts.append(f"±{spread:.1f}%" if spread < 10 else f"±{spread:.0f}%")
    return " ".join(parts)


def skip_reasons(data: Data) -> list[str]:
    """``backend / workload[, workload...]: reason`` lines, one per backend and distinct reason."""
    lines: list[str] = []
    for backend in data.get("backends", []):
        name = str(backend["name"])
        if backend.get("skipped"):
            lines.append(f"{name} / all workloads: {backend['skipped']}")
            continue
        grouped: dict[str, list[str]] = {}
        for workload in data.get("workloads", []):
            result = _result(workload, name)
            if result is not None and result.get("skipped") not in (None, "", DOES_NOT_APPLY):
                grouped.setdefault(str(result["skipped"]), []).append(str(workload["name"]))
        lines += [f"{name} / {', '.join(names)}: {why}" for why, names in grouped.items()]
    return lines


def title(data: Data) -> str:
    """One line naming the run's settings, and whether it was cut short."""
    settings = data.get("settings", {})
    line = (
        f"pydock bench: size {settings.get('size', '?')}, repeat {settings.get('repeat', '?')}, "
        f"cache {settings.get('cache', '?')}, baseline {settings.get('baseline', '?')}"
    )
    if data.get("interrupted"):
        line += " (interrupted: partial results)"
    return line


def legend(data: Data) -> str:
    """How to read the ratio in every cell."""
    baseline = data.get("settings", {}).get("baseline", "?")
    return f"ratio = median / median of {baseline}; lower is better for times, higher for MiB/s"


def text_table(data: Data) -> Table:
    """A rich table: one row per workload, one column per backend that was not skipped."""
    backends = _backends(data)
    heading = title(data)
    # as wide as the title, so that the title is not wrapped over a narrow table
    table = Table(title=Text(heading), title_justify="left", min_width=len(heading))
    table.add_column(Text("workload"), no_wrap=True)
    for name in backends:
        table.add_column(Text(name), justify="right")
    for workload in data.get("workloads", []):
        unit = str(workload.get("unit", ""))
        cells = [Text(cell_text(_result(workload, name), unit)) for name in backends]
        table.add_row(Text(str(workload["name"])), *cells)
    return table


def print_table(data: Data, console: Console) -> None:
    """The table, then the skip reasons and the legend, as plain text where there is no tty."""
    console.print(text_table(data))
    reasons = skip_reasons(data)
    if reasons:
        console.print(Text("skipped:"), highlight=False)
        for line in reasons:
            console.print(Text(f"  {line}"), highlight=False)
    console.print(Text(legend(data)), highlight=False)


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(_md(cell) for cell in cells) + " |"


def markdown_table(data: Data) -> str:
    """The results table alone, in GitHub-flavoured Markdown (for pasting into the README)."""
    backends = _backends(data)
    lines = [_md_row(["workload", *backends]), "|---|" + "---:|" * len(backends)]
    for workload in data.get("workloads", []):
        unit = str(workload.get("unit", ""))
        cells = [cell_text(_result(workload, name), unit) for name in backends]
        lines.append(_md_row([str(workload["name"]), *cells]))
    return "\n".join(lines) + "\n"


def _machine_lines(machine: Data) -> list[str]:
    shown: list[tuple[str, str]] = []
    for key in ("kernel", "arch", "cpus", "python", "work_fs"):
        if machine.get(key) is not None:
            shown.append((key, str(machine[key])))
    if machine.get("memory_bytes"):
        shown.insert(3, ("memory", f"{int(machine['memory_bytes']) / 2**30:.1f} GiB"))
    if machine.get("work_dir"):
        shown.append(("work_dir", str(machine["work_dir"])))
    if machine.get("load_average"):
        shown.append(("load_average", " ".join(f"{v:.2f}" for v in machine["load_average"])))
    return [f"- {key}: {value}" for key, value in shown]


def markdown(data: Data) -> str:
    """The whole report: command, machine, settings, results, skip reasons and plot links."""
    settings = data.get("settings", {})
    lines = ["# pydock bench report", ""]
    if data.get("interrupted"):
        lines += ["**Interrupted: partial results.**", ""]
    lines += ["Command:", "", "```", " ".join(data.get("command", [])), "```", ""]
    lines += [f"Started {data.get('started', '?')}, finished {data.get('finished') or '?'}.", ""]
    lines += ["## Machine", "", *_machine_lines(data.get("machine", {})), ""]
    versions = data.get("versions", {})
    lines += ["## Versions", "", *(f"- {k}: {v}" for k, v in versions.items()), ""]
    lines += ["## Settings", ""]
    for key in ("size", "repeat", "cache", "baseline"):
        lines.append(f"- {key}: {settings.get(key, '?')}")
    if settings.get("note"):
        lines.append(f"- note: {settings['note']}")
    lines += [f"- data {key}: {value}" for key, value in settings.get("data", {}).items()]
    lines += ["", "## Results", "", title(data), "", markdown_table(data), legend(data), ""]
    lines += ["## Workloads", "", "| workload | unit | better | description |", "|---|---|---|---|"]
    for workload in data.get("workloads", []):
        fields = ["name", "unit", "better", "description"]
        lines.append(_md_row([str(workload.get(f, "")) for f in fields]))
    lines.append("")
    lines += ["## Backends", "", "| backend | kind | what it is |", "|---|---|---|"]
    for backend in data.get("backends", []):
        fields = [str(backend.get(f) or "") for f in ("name", "kind", "description")]
        lines.append(_md_row(fields))
    lines.append("")
    reasons = skip_reasons(data)
    if reasons:
        lines += ["## Skipped", "", *(f"- {_md(line)}" for line in reasons), ""]
    links = [(alt, f"plots/{stem}.png") for alt, stem, _ in _plot_stems(data)]
    if links:
        lines += ["## Plots", "", *(f"![{name}]({path})\n" for name, path in links)]
    return "\n".join(lines).rstrip("\n") + "\n"


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9-]+", "-", name.lower()).strip("-") or "workload"


def _bars(data: Data, workload: Data) -> list[tuple[str, float, list[float]]]:
    """(backend, median, samples) of each backend that ran this workload and has samples."""
    bars = []
    for name in _backends(data):
        result = _result(workload, name)
        if result is None or result.get("skipped") or not result.get("samples"):
            continue
        median = _median(result)
        if median is not None:
            bars.append((name, median, [float(v) for v in result["samples"]]))
    return bars


def _ratios(data: Data) -> list[tuple[Data, dict[str, float]]]:
    """Each workload that has a ratio for some backend, with those ratios."""
    rows = []
    for workload in data.get("workloads", []):
        ratios = {}
        for name in _backends(data):
            result = _result(workload, name)
            if result and not result.get("skipped") and result.get("ratio") is not None:
                ratios[name] = float(result["ratio"])
        if ratios:
            rows.append((workload, ratios))
    return rows


def _plot_stems(data: Data) -> list[tuple[str, str, Data | None]]:
    """(alt text, file stem, workload or None for the summary) of every PNG :func:`plot` writes."""
    stems: list[tuple[str, str, Data | None]] = []
    if _ratios(data):
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


def _draw_workload(ax: Axes, workload: Data, bars: list[tuple[str, float, list[float]]]) -> None:
    unit = str(workload.get("unit", ""))
    scale, label = 1.0, unit
    if unit == "s" and max(v for _, _, samples in bars for v in samples) < 1:
        scale, label = 1000.0, "ms"
    xs = list(range(len(bars)))
    medians = [median * scale for _, median, _ in bars]
    below = [max(0.0, (median - min(s)) * scale) for _, median, s in bars]
    above = [max(0.0, (max(s) - median) * scale) for _, median, s in bars]
    ax.bar(xs, medians, yerr=[below, above], capsize=5, color="tab:blue", alpha=0.7)
    for x, (_, _, samples) in zip(xs, bars, strict=True):
        step = 0.3 / max(1, len(samples) - 1)
        offsets = [-0.15 + step * i for i in range(len(samples))] if len(samples) > 1 else [0.0]
        points = [v * scale for v in samples]
        ax.scatter([x + o for o in offsets], points, s=12, color="black", zorder=3)
    ax.set_xticks(xs, [name for name, _, _ in bars])
    ax.set_ylabel(f"{label} ({workload.get('better', '?')} is better)")
    ax.set_ylim(bottom=0)
    heading = f"{workload['name']}: {workload.get('description', '')}"
    ax.set_title(textwrap.fill(heading, 60), fontsize=10)


def _draw_summary(ax: Axes, data: Data, rows: list[tuple[Data, dict[str, float]]]) -> None:
    names = [b for b in _backends(data) if any(b in ratios for _, ratios in rows)]
    width = 0.8 / len(names)
    for i, name in enumerate(names):
        xs = [j - 0.4 + width * (i + 0.5) for j, (_, r) in enumerate(rows) if name in r]
        ys = [r[name] for _, r in rows if name in r]
        ax.bar_label(ax.bar(xs, ys, width, label=name), fmt="%.2g", fontsize=6, rotation=90)
    ax.set_yscale("log")  # ratios span 1000x and more; equal steps up and down look alike
    ax.axhline(1.0, color="black", linewidth=0.8, linestyle="--")
    ticks = [f"{w['name']}\n({w.get('better', '?')} is better)" for w, _ in rows]
    ax.set_xticks(list(range(len(rows))), ticks, fontsize=8)
    baseline = data.get("settings", {}).get("baseline", "?")
    ax.set_ylabel(f"median / median of {baseline} (log scale)")
    ax.set_title("ratio to baseline: below 1 is faster for times, above 1 for MiB/s", fontsize=10)
    ax.legend(fontsize=8)


def plot(data: Data, out_dir: Path) -> list[Path]:
    """Write ``out_dir/plots/<workload>.png`` per workload with samples and ``summary.png``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plots = out_dir / "plots"
    plots.mkdir(parents=True, exist_ok=True)
    written = []
    for _, stem, workload in _plot_stems(data):
        path = plots / f"{stem}.png"
        if workload is None:
            rows = _ratios(data)
            fig, ax = plt.subplots(figsize=(max(6.0, 1.6 * len(rows) + 2), 6.0))
        else:
            bars = _bars(data, workload)
            fig, ax = plt.subplots(figsize=(max(4.5, 1.2 * len(bars) + 2), 4.0))
        try:
            if workload is None:
                _draw_summary(ax, data, rows)
            else:
                _draw_workload(ax, workload, bars)
            fig.tight_layout()
            fig.savefig(path, dpi=100)
        finally:
            plt.close(fig)
        written.append(path)
    return written


def write_all(data: Data, out_dir: Path) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and ``plots/`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "report.md"}
    write_json(data, paths["json"])
    plot(data, out_dir)
    paths["markdown"].write_text(markdown(data))
    return {**paths, "plots": out_dir / "plots"}
