"""Draw a ``pydock bench`` results dict as a terminal table and a Markdown report.

Everything here reads only the plain dict of ``results.json`` (see :mod:`pydock.bench.results`),
so an old run can be drawn again; the figures of each cell are computed again from its samples
(:mod:`pydock.bench.stats`), so a version 1 file gets intervals and verdicts too. Partial runs
are normal: a cell may be missing, skipped or empty, and every output says so.

Two layouts: the grid (a row per workload, a column per backend; a cell reads ``12.3 ms 0.52x
faster``) and the list (a row per workload and backend, with the median's 95% interval, the
ratio's interval and the flags). The terminal gets the grid when it fits, else the list with as
many columns as fit; the Markdown report has both. A backend with no data anywhere gets no
column.
"""

from __future__ import annotations

from pathlib import Path

from rich import box
from rich.console import Console
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

from pydock.bench.cells import (
    BASELINE,
    DOES_NOT_APPLY,
    NOT_APPLICABLE,
    NOT_RUN,
    Data,
    backends,
    baseline_of,
    figures,
    format_range,
    format_ratio,
    format_ratio_range,
    format_value,
    result_of,
    shown_backends,
    state,
)
from pydock.bench.plots import plot, plot_stems
from pydock.bench.results import write_json

# -- cells --------------------------------------------------------------------------------------


def cell_text(data: Data, workload: Data, backend: str) -> str:
    """A grid cell: ``12.3 ms 0.52x faster``, the baseline's ``12.3 ms baseline``, or a state."""
    found = figures(data, workload, backend)
    if found is None:
        return state(workload, backend) or NOT_RUN
    parts = [format_value(found.median, str(workload.get("unit", "")))]
    if backend == baseline_of(data):
        parts.append(BASELINE)
    elif found.ratio is not None:
        parts.append(format_ratio(found.ratio))
        if found.verdict is not None:
            parts.append(found.verdict)
    if found.flags:
        parts.append(f"[{' '.join(found.flags)}]")
    return " ".join(parts)


LIST_COLUMNS = ("workload", "backend", "median", "95% CI", "ratio", "ratio 95% CI", "verdict",
                "flags")  # fmt: skip


def list_rows(data: Data) -> list[dict[str, str]]:
    """The list layout: one row per workload and shown backend where the workload applies."""
    rows = []
    baseline = baseline_of(data)
    for workload in data.get("workloads", []):
        unit = str(workload.get("unit", ""))
        first = True
        for name in shown_backends(data):
            found = figures(data, workload, name)
            row = dict.fromkeys(LIST_COLUMNS, "")
            row["workload"] = str(workload["name"]) if first else ""
            row["backend"] = name
            if found is None:
                where = state(workload, name)
                if where == NOT_APPLICABLE:
                    continue
                row["median"] = where or NOT_RUN
            else:
                row["median"] = format_value(found.median, unit)
                row["95% CI"] = format_range(found.ci, unit) if found.ci else ""
                if name == baseline:
                    row["ratio"] = BASELINE
                elif found.ratio is not None:
                    row["ratio"] = format_ratio(found.ratio)
                row["ratio 95% CI"] = format_ratio_range(found.ratio_ci) if found.ratio_ci else ""
                row["verdict"] = found.verdict or ""
                row["flags"] = " ".join(found.flags)
            rows.append(row)
            first = False
        if first:  # nothing shown for this workload: still say it was not run
            rows.append({**dict.fromkeys(LIST_COLUMNS, ""), "workload": str(workload["name"]),
                         "median": NOT_RUN})  # fmt: skip
    return rows


def _filled(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[str]:
    """``columns`` without those empty in every row."""
    return [c for c in columns if c in ("workload", "backend") or any(r[c] for r in rows)]


# -- text ---------------------------------------------------------------------------------------


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
            result = result_of(workload, name)
            if result is not None and result.get("skipped") not in (None, "", DOES_NOT_APPLY):
                grouped.setdefault(str(result["skipped"]), []).append(str(workload["name"]))
        lines += [f"{name} / {', '.join(names)}: {why}" for why, names in grouped.items()]
    return lines


def flagged(data: Data) -> list[str]:
    """``workload / backend: flags (samples)`` for every cell whose samples were flagged."""
    lines = []
    for workload in data.get("workloads", []):
        unit = str(workload.get("unit", ""))
        for name in backends(data):
            found = figures(data, workload, name)
            if found is not None and found.flags:
                values = ", ".join(format_value(v, unit) for v in found.samples)
                lines.append(f"{workload['name']} / {name}: {' and '.join(found.flags)} ({values})")
    return lines


def title(data: Data) -> str:
    """One line naming the run's settings, and whether it was cut short."""
    settings = data.get("settings", {})
    warmup = settings.get("warmup")
    line = (
        f"pydock bench: size {settings.get('size', '?')}, repeat {settings.get('repeat', '?')}"
        + (f" (+{warmup} warm-up)" if warmup else "")
        + f", cache {settings.get('cache', '?')}, baseline {settings.get('baseline', '?')}"
    )
    if data.get("interrupted"):
        line += " (interrupted: partial results)"
    return line


def _coverage(data: Data) -> str:
    """The real coverage of the median intervals, which is below 95% for 5 samples or fewer."""
    found = set()
    for workload in data.get("workloads", []):
        for name in backends(data):
            cell = figures(data, workload, name)
            if cell is not None and cell.ci is not None:
                found.add((len(cell.samples), round(cell.ci.coverage * 100)))
    return ", ".join(f"{pct}% with {n} samples" for n, pct in sorted(found))


def legend(data: Data) -> list[str]:
    """How to read the cells."""
    baseline = baseline_of(data) or "?"
    lines = [
        f"ratio = median / median of {baseline} (MiB/s, conn/s: higher is better)",
        "faster/slower: the two medians' intervals do not overlap; no difference: they do",
    ]
    coverage = _coverage(data)
    if coverage:
        lines.append(f"intervals: order statistics of the samples (coverage {coverage})")
    return lines


def settle_lines(data: Data) -> list[str]:
    settings = data.get("settings", {})
    done = settings.get("settle")
    if not done:
        return []
    lines = [f"between rounds: {', '.join(done)}"]
    lines += [f"not between rounds: {why}" for why in settings.get("settle_skipped") or []]
    return lines


def grid_table(data: Data) -> Table:
    """The grid: one row per workload, one column per shown backend."""
    names = shown_backends(data)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column(Text("workload"), no_wrap=True)
    for name in names:
        table.add_column(Text(name), justify="right", no_wrap=True)
    for workload in data.get("workloads", []):
        cells = [Text(cell_text(data, workload, name)) for name in names]
        table.add_row(Text(str(workload["name"])), *cells)
    return table


def list_table(data: Data, columns: tuple[str, ...] = LIST_COLUMNS) -> Table:
    """The list: one row per workload and backend, with ``columns`` that have data."""
    rows = list_rows(data)
    shown = _filled(rows, columns)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in shown:
        right = column not in ("workload", "backend", "verdict", "flags")
        table.add_column(Text(column), justify="right" if right else "left", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(row[c]) for c in shown))
    return table


UNBOUNDED = 100_000  # measure a table's natural width, not the console's

# From the fullest to the most compact; the terminal gets the first that fits.
NARROWER = (
    ("workload", "backend", "median", "ratio", "ratio 95% CI", "verdict", "flags"),
    ("workload", "backend", "median", "ratio", "verdict", "flags"),
    ("workload", "backend", "ratio", "verdict"),
)


def _width(console: Console, table: Table) -> int:
    return Measurement.get(console, console.options.update_width(UNBOUNDED), table).maximum


def fitting_table(data: Data, console: Console) -> Table:
    """The grid if it fits the console, else the widest list layout that does."""
    candidates = [grid_table(data), list_table(data)]
    candidates += [list_table(data, columns) for columns in NARROWER]
    for table in candidates:
        if _width(console, table) <= console.width:
            return table
    return candidates[-1]


def print_table(data: Data, console: Console) -> None:
    """Title, table, flags, skip reasons and legend, as plain text where there is no tty."""
    console.print(Text(title(data)), highlight=False)
    console.print(fitting_table(data, console))
    for heading, lines in (("flagged:", flagged(data)), ("skipped:", skip_reasons(data))):
        if lines:
            console.print(Text(heading), highlight=False)
            for line in lines:
                console.print(Text(f"  {line}"), highlight=False)
    for line in [*settle_lines(data), *legend(data)]:
        console.print(Text(line), highlight=False)


# -- Markdown -----------------------------------------------------------------------------------


def _md(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _md_row(cells: list[str]) -> str:
    return "| " + " | ".join(_md(cell) for cell in cells) + " |"


def markdown_table(data: Data) -> str:
    """The grid in GitHub-flavoured Markdown (for pasting into the README)."""
    names = shown_backends(data)
    lines = [_md_row(["workload", *names]), "|---|" + "---:|" * len(names)]
    for workload in data.get("workloads", []):
        cells = [cell_text(data, workload, name) for name in names]
        lines.append(_md_row([str(workload["name"]), *cells]))
    return "\n".join(lines) + "\n"


def markdown_list(data: Data) -> str:
    """The list layout in Markdown, every column that has data."""
    rows = list_rows(data)
    shown = _filled(rows, LIST_COLUMNS)
    align = ["---" if c in ("workload", "backend", "verdict", "flags") else "---:" for c in shown]
    lines = [_md_row(shown), "|" + "|".join(align) + "|"]
    lines += [_md_row([row[c] for c in shown]) for row in rows]
    return "\n".join(lines) + "\n"


def _machine_lines(machine: Data) -> list[str]:
    shown: list[tuple[str, str]] = []
    for key in ("hostname", "kernel", "arch", "cpus", "python"):
        if machine.get(key) is not None:
            shown.append((key, str(machine[key])))
    if machine.get("memory_bytes"):
        shown.append(("memory", f"{int(machine['memory_bytes']) / 2**30:.1f} GiB"))
    for key in ("work_dir", "work_fs", "work_mount", "work_device", "work_fs_options"):
        if machine.get(key):
            shown.append((key, str(machine[key])))
    if machine.get("load_average"):
        shown.append(("load_average", " ".join(f"{v:.2f}" for v in machine["load_average"])))
    return [f"- {key}: {value}" for key, value in shown]


def _warmup_lines(data: Data) -> list[str]:
    """Warm-up samples far from the counted median (first-use costs the warm-up kept out)."""
    lines = []
    for workload in data.get("workloads", []):
        unit = str(workload.get("unit", ""))
        for name in backends(data):
            found = figures(data, workload, name)
            if found is None or not found.median:
                continue
            far = [v for v in found.warmup if not 0.5 <= v / found.median <= 2]
            if far:
                shown = ", ".join(format_value(v, unit) for v in far)
                lines.append(f"- {workload['name']} / {name}: warm-up {shown}, "
                             f"median {format_value(found.median, unit)}")  # fmt: skip
    return lines


def markdown(data: Data) -> str:
    """The whole report: command, machine, settings, results, flags, skips and plot links."""
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
    for key in ("size", "repeat", "warmup", "cache", "baseline"):
        if key in settings or key != "warmup":
            lines.append(f"- {key}: {settings.get(key, '?')}")
    lines += [f"- {line}" for line in settle_lines(data)]
    if settings.get("note"):
        lines.append(f"- note: {settings['note']}")
    if settings.get("network"):
        lines.append(f"- network: {settings['network']}")
    lines += [f"- data {key}: {value}" for key, value in settings.get("data", {}).items()]
    lines += [f"- net {key}: {value}" for key, value in settings.get("net", {}).items()]
    lines += ["", "## Results", "", title(data), "", markdown_table(data)]
    lines += [*(f"- {line}" for line in legend(data)), ""]
    lines += ["### Every cell", "", markdown_list(data)]
    found = flagged(data)
    if found:
        lines += ["### Flagged samples", "", *(f"- {_md(line)}" for line in found), ""]
    warm = _warmup_lines(data)
    if warm:
        lines += ["### Warm-up samples left out", "", *warm, ""]
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
    links = [(alt, f"plots/{stem}.png") for alt, stem, _ in plot_stems(data)]
    if links:
        lines += ["## Plots", "", *(f"![{name}]({path})\n" for name, path in links)]
    return "\n".join(lines).rstrip("\n") + "\n"


def write_all(data: Data, out_dir: Path) -> dict[str, Path]:
    """Write ``results.json``, ``report.md`` and ``plots/`` into ``out_dir``; return their paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {"json": out_dir / "results.json", "markdown": out_dir / "report.md"}
    write_json(data, paths["json"])
    plot(data, out_dir)
    paths["markdown"].write_text(markdown(data))
    return {**paths, "plots": out_dir / "plots"}
