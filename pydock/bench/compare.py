"""Two ``pydock bench`` runs side by side (before and after a change): what the change did.

For each workload and backend measured in both runs: the two medians, after / before with its
interval and a verdict (as in one run's table, with "before" as the baseline), and the ratio of
ratios: the backend's ratio to the run's baseline after the change over the same ratio before.
The ratio of ratios is what to read on a shared machine: a load that slows every backend of
the second run alike leaves it at 1.

Run as ``python -m pydock.bench.compare BEFORE.json AFTER.json`` (or ``pydock bench --compare``).
"""

from __future__ import annotations

import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

from pydock.bench import stats
from pydock.bench.cells import Data, backends, figures, format_ratio, format_ratio_range
from pydock.bench.cells import format_value as value_text

COLUMNS = ("workload", "backend", "before", "after", "after/before", "95% CI", "verdict",
           "ratio of ratios")  # fmt: skip
UNBOUNDED = 100_000  # measure a table's natural width, not the console's
NARROWER = (
    ("workload", "backend", "before", "after", "after/before", "verdict", "ratio of ratios"),
    ("workload", "backend", "after/before", "verdict", "ratio of ratios"),
)


def compare_rows(before: Data, after: Data) -> list[dict[str, str]]:
    """One row per workload and backend with samples in both runs, in the second run's order."""
    rows = []
    old_workloads = {str(w["name"]): w for w in before.get("workloads", [])}
    for workload in after.get("workloads", []):
        old = old_workloads.get(str(workload["name"]))
        if old is None:
            continue
        unit = str(workload.get("unit", ""))
        first = True
        for name in backends(after):
            new_cell, old_cell = figures(after, workload, name), figures(before, old, name)
            if new_cell is None or old_cell is None:
                continue
            row = dict.fromkeys(COLUMNS, "")
            row.update(workload=str(workload["name"]) if first else "", backend=name,
                       before=value_text(old_cell.median, unit),
                       after=value_text(new_cell.median, unit))  # fmt: skip
            if old_cell.median:
                row["after/before"] = format_ratio(new_cell.median / old_cell.median)
            if new_cell.ci is not None and old_cell.ci is not None:
                span = stats.ratio_interval(new_cell.ci, old_cell.ci)
                row["95% CI"] = format_ratio_range(span) if span else ""
                better = str(workload.get("better", "lower"))
                row["verdict"] = stats.verdict(new_cell.ci, old_cell.ci, better) or ""
            if new_cell.ratio is not None and old_cell.ratio:
                row["ratio of ratios"] = format_ratio(new_cell.ratio / old_cell.ratio)
            rows.append(row)
            first = False
    return rows


def _filled(rows: list[dict[str, str]], columns: tuple[str, ...]) -> list[str]:
    return [c for c in columns if c in ("workload", "backend") or any(r[c] for r in rows)]


def text_table(rows: list[dict[str, str]], columns: tuple[str, ...] = COLUMNS) -> object:
    from rich import box
    from rich.table import Table

    shown = _filled(rows, columns)
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for column in shown:
        left = column in ("workload", "backend", "verdict")
        table.add_column(Text(column), justify="left" if left else "right", no_wrap=True)
    for row in rows:
        table.add_row(*(Text(row[c]) for c in shown))
    return table


def heading(before: Data, after: Data, names: tuple[str, str]) -> str:
    baseline = after.get("settings", {}).get("baseline", "?")
    return (f"pydock bench --compare: before {names[0]} ({before.get('started', '?')}), "
            f"after {names[1]} ({after.get('started', '?')}); ratios to {baseline}")  # fmt: skip


def print_compare(before: Data, after: Data, names: tuple[str, str], console: Console) -> None:
    """The comparison table, the widest layout that fits the console."""
    from rich.measure import Measurement
    from rich.table import Table

    rows = compare_rows(before, after)
    console.print(Text(heading(before, after, names)), highlight=False)
    if not rows:
        console.print(Text("no workload and backend measured in both runs"), highlight=False)
        return
    for columns in (COLUMNS, *NARROWER):
        table = text_table(rows, columns)
        assert isinstance(table, Table)
        if (
            Measurement.get(console, console.options.update_width(UNBOUNDED), table).maximum
            <= console.width
        ):
            break
    console.print(table)
    console.print(Text("verdict: after against before, where their intervals do not overlap; "
                       "ratio of ratios: (after / its baseline) / (before / its baseline)"),
                  highlight=False)  # fmt: skip


def markdown(before: Data, after: Data, names: tuple[str, str]) -> str:
    rows = compare_rows(before, after)
    shown = _filled(rows, COLUMNS)
    align = ["---" if c in ("workload", "backend", "verdict") else "---:" for c in shown]
    lines = [f"# {heading(before, after, names)}", "", "| " + " | ".join(shown) + " |",
             "|" + "|".join(align) + "|"]  # fmt: skip
    lines += ["| " + " | ".join(row[c] for c in shown) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    """``python -m pydock.bench.compare BEFORE.json AFTER.json [OUT_DIR]``."""
    if len(argv) not in (2, 3):
        sys.stderr.write("usage: python -m pydock.bench.compare BEFORE.json AFTER.json [OUT]\n")
        return 2
    from pydock.bench.command import compare_runs
    from pydock.errors import PydockError

    try:
        return compare_runs(Path(argv[0]), Path(argv[1]), Path(argv[2]) if argv[2:] else None)
    except PydockError as exc:
        sys.stderr.write(f"pydock: {exc}\n")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
