"""Bench reports: the text table, the Markdown report, the PNG plots and the written directory."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

from rich.console import Console

from pydock.bench.report import (
    cell_text,
    format_ratio,
    markdown,
    markdown_table,
    plot,
    print_table,
    skip_reasons,
    write_all,
)
from pydock.bench.results import FORMAT, read_json

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _cell(
    backend: str, samples: list[float], median: float | None, ratio: float | None
) -> dict[str, Any]:
    return {
        "backend": backend,
        "samples": samples,
        "median": median,
        "min": min(samples) if samples else None,
        "max": max(samples) if samples else None,
        "ratio": ratio,
        "skipped": None,
    }


def _skipped(backend: str, why: str) -> dict[str, Any]:
    return {
        "backend": backend,
        "samples": [],
        "median": None,
        "min": None,
        "max": None,
        "ratio": None,
        "skipped": why,
    }


def _results() -> dict[str, Any]:
    return {
        "format": FORMAT,
        "command": ["pydock", "bench", "--size", "small", "--repeat", "3"],
        "started": "2026-11-28T03:40:00Z",
        "finished": "2026-11-28T03:52:10Z",
        "interrupted": False,
        "machine": {
            "hostname": "bench1",
            "kernel": "6.8.0-45-generic",
            "arch": "x86_64",
            "cpus": 8,
            "memory_bytes": 16 * 2**30,
            "python": "3.11.9",
            "load_average": [0.5, 0.25, 0.125],
            "work_dir": "/var/tmp/pydock-bench",
            "work_fs": "ext4",
            "root": True,
        },
        "versions": {"pydock": "0.1.0", "fuse-overlayfs": "1.10"},
        "settings": {
            "size": "small",
            "repeat": 3,
            "cache": "dropped",
            "baseline": "overlay2",
            "data": {"files": 2000},
        },
        "backends": [
            {"name": "overlay2", "kind": "driver", "description": "kernel", "skipped": None},
            {"name": "vfs", "kind": "driver", "description": "copies", "skipped": None},
            {"name": "fuse", "kind": "driver", "description": "fuse", "skipped": "no /dev/fuse"},
        ],
        "workloads": [
            {
                "name": "unpack",
                "description": "unpack a 2000-file layer",
                "unit": "s",
                "better": "lower",
                "results": [
                    _cell("overlay2", [0.012, 0.0123, 0.013], 0.0123, 1.0),
                    _cell("vfs", [0.036, 0.0369, 0.0378], 0.0369, 3.0),
                    _skipped("fuse", "no /dev/fuse"),
                ],
            },
            {
                "name": "commit",
                "description": "commit a changed container",
                "unit": "s",
                "better": "lower",
                "results": [
                    _cell("overlay2", [1.40, 1.42, 1.45], 1.42, 1.0),
                    _skipped("vfs", "[Errno 95] no reflinks on this fs"),
                    _skipped("fuse", "no /dev/fuse"),
                ],
            },
            {
                "name": "Read Seq",
                "description": "read every file once",
                "unit": "MiB/s",
                "better": "higher",
                "results": [
                    _cell("overlay2", [800.0, 812.0, 820.0], 812.0, 1.0),
                    _cell("vfs", [406.0], 406.0, 0.5),
                    _skipped("fuse", "no /dev/fuse"),
                ],
            },
        ],
    }


def _table_text(data: dict[str, Any]) -> str:
    console = Console(file=io.StringIO(), width=200)
    print_table(data, console)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.lstrip("│┃| ").startswith(start))


def test_table_shows_medians_ratios_spread_and_skips() -> None:
    text = _table_text(_results())
    assert "\x1b[" not in text  # not a terminal: plain text
    assert "size small, repeat 3, cache dropped, baseline overlay2" in text
    assert "interrupted" not in text
    header = _line(text, "workload")
    assert "overlay2" in header and "vfs" in header and "fuse" not in header
    unpack = _line(text, "unpack")
    assert "12.3 ms (1.00x) ±8.1%" in unpack
    assert "36.9 ms (3.00x) ±4.9%" in unpack
    commit = _line(text, "commit")
    assert "1.42 s (1.00x) ±3.5%" in commit and "skipped" in commit
    read = _line(text, "Read Seq")
    assert "812 MiB/s (1.00x) ±2.5%" in read
    assert read.rstrip(" │").endswith("406 MiB/s (0.50x)")  # one sample: no spread
    assert "vfs / commit: [Errno 95] no reflinks on this fs" in text
    assert text.count("no /dev/fuse") == 1
    assert "fuse / all workloads: no /dev/fuse" in text
    assert "ratio = median / median of overlay2; lower is better for times" in text


def test_table_of_an_interrupted_run_dedupes_reasons() -> None:
    data = _results()
    data["interrupted"] = True
    data["workloads"][2]["results"][1] = _skipped("vfs", "[Errno 95] no reflinks on this fs")
    data["workloads"].append(
        {"name": "export", "description": "export", "unit": "s", "better": "lower", "results": []}
    )
    text = _table_text(data)
    assert "(interrupted: partial results)" in text
    assert "vfs / commit, Read Seq: [Errno 95] no reflinks on this fs" in text
    assert text.count("no reflinks") == 1
    assert _line(text, "export").count("not run") == 2


def test_markdown_has_command_machine_table_and_links() -> None:
    report = markdown(_results())
    assert "```\npydock bench --size small --repeat 3\n```" in report
    assert "- kernel: 6.8.0-45-generic" in report
    assert "- memory: 16.0 GiB" in report
    assert "- load_average: 0.50 0.25 0.12" in report
    assert "- fuse-overlayfs: 1.10" in report
    assert "- cache: dropped" in report
    table = markdown_table(_results())
    assert table in report
    assert table.splitlines()[:2] == ["| workload | overlay2 | vfs |", "|---|---:|---:|"]
    assert table.splitlines()[2:] == [
        "| unpack | 12.3 ms (1.00x) ±8.1% | 36.9 ms (3.00x) ±4.9% |",
        "| commit | 1.42 s (1.00x) ±3.5% | skipped |",
        "| Read Seq | 812 MiB/s (1.00x) ±2.5% | 406 MiB/s (0.50x) |",
    ]
    assert "| Read Seq | MiB/s | higher | read every file once |" in report
    assert "| vfs | driver | copies |" in report
    assert "- vfs / commit: [Errno 95] no reflinks on this fs" in report
    assert "- fuse / all workloads: no /dev/fuse" in report
    assert "![summary](plots/summary.png)" in report
    assert "![unpack](plots/unpack.png)" in report
    assert "![Read Seq](plots/read-seq.png)" in report
    assert "Interrupted" not in report


def test_plot_writes_one_png_per_workload_with_samples(tmp_path: Path) -> None:
    data = _results()
    data["workloads"].append(
        {"name": "export", "description": "export", "unit": "s", "better": "lower", "results": []}
    )
    paths = plot(data, tmp_path)
    names = sorted(path.name for path in paths)
    assert names == ["commit.png", "read-seq.png", "summary.png", "unpack.png"]
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == names
    for path in paths:
        content = path.read_bytes()
        assert content[:8] == PNG_SIGNATURE
        assert len(content) > 2000
    report = markdown(data)
    assert all(f"(plots/{path.name})" in report for path in paths)
    assert "export.png" not in report


def test_write_all_round_trips_and_survives_partial_runs(tmp_path: Path) -> None:
    data = _results()
    paths = write_all(data, tmp_path / "run")
    assert read_json(paths["json"]) == data
    assert paths["markdown"].read_text() == markdown(data)
    assert paths["plots"] == tmp_path / "run" / "plots"
    assert (paths["plots"] / "summary.png").is_file()

    partial = copy.deepcopy(data)
    partial["interrupted"] = True
    for backend in partial["backends"]:
        backend["skipped"] = "interrupted"
    partial["workloads"].append(
        {"name": "export", "description": "export", "unit": "s", "better": "lower", "results": []}
    )
    paths = write_all(partial, tmp_path / "partial")
    assert read_json(paths["json"]) == partial
    report = paths["markdown"].read_text()
    assert "**Interrupted: partial results.**" in report
    assert "| workload |\n|---|\n| unpack |" in report
    assert "](plots/" not in report
    assert list(paths["plots"].iterdir()) == []
    assert "(interrupted: partial results)" in _table_text(partial)


def test_a_workload_that_does_not_apply_shows_a_dash_and_no_reason() -> None:
    data = _results()
    data["workloads"][0]["results"][1] = _skipped("vfs", "does not apply")
    assert cell_text(data["workloads"][0]["results"][1], "s") == "-"
    assert not any(line.startswith("vfs / unpack") for line in skip_reasons(data))
    assert "| unpack | 12.3 ms (1.00x) ±8.1% | - |" in markdown_table(data)


def test_small_ratios_keep_two_significant_digits() -> None:
    assert format_ratio(1.0) == "1.00x"
    assert format_ratio(639.26) == "639.26x"
    assert format_ratio(0.0022) == "0.0022x"
    assert format_ratio(0.074) == "0.074x"
