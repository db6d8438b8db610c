"""Bench reports: the text table, the Markdown report, the PNG plots and the written directory."""

from __future__ import annotations

import copy
import io
from pathlib import Path
from typing import Any

from rich.console import Console

from pydock.bench.cells import format_ratio
from pydock.bench.compare import compare_rows, print_compare
from pydock.bench.plots import colour, footer, is_log, plot
from pydock.bench.report import (
    cell_text,
    list_rows,
    markdown,
    markdown_table,
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


def _table_text(data: dict[str, Any], width: int = 200) -> str:
    console = Console(file=io.StringIO(), width=width)
    print_table(data, console)
    out = console.file
    assert isinstance(out, io.StringIO)
    return out.getvalue()


def _line(text: str, start: str) -> str:
    return next(line for line in text.splitlines() if line.lstrip("│┃| ").startswith(start))


def _eight_backends() -> dict[str, Any]:
    """A run with every backend of a real one, five seeded samples and a warm-up per cell."""
    import random

    rng = random.Random(13)
    names = ["overlay2", "fuse", "vfs", "tar", "kernel-overlay", "fuse-overlayfs", "podman",
             "crun"]  # fmt: skip
    medians = {"unpack": {"overlay2": 0.126, "fuse": 0.132, "vfs": 0.129, "tar": 0.0749},
               "mount-1": {"overlay2": 0.0008, "fuse": 0.0185, "vfs": 0.0001,
                           "kernel-overlay": 0.0051, "fuse-overlayfs": 0.0043},
               "start": {"overlay2": 0.297, "fuse": 0.459, "vfs": 0.285, "podman": 0.148,
                         "crun": 0.0202},
               "read-warm": {"overlay2": 4717.0, "fuse": 2927.0, "vfs": 3213.0,
                             "kernel-overlay": 2941.0, "fuse-overlayfs": 2702.0}}  # fmt: skip
    data = _results()
    data["backends"] = [{"name": n, "kind": "driver", "description": n, "skipped": None}
                        for n in names]  # fmt: skip
    data["settings"]["repeat"] = 5
    data["workloads"] = []
    for workload, cells in medians.items():
        unit = "MiB/s" if workload.startswith("read") else "s"
        results = []
        for name in names:
            if name not in cells:
                results.append(_skipped(name, "does not apply"))
                continue
            samples = [cells[name] * rng.uniform(0.9, 1.1) for _ in range(5)]
            cell = _cell(name, samples, None, None)
            cell["warmup"] = [cells[name] * 3]
            results.append(cell)
        data["workloads"].append({"name": workload, "description": workload, "unit": unit,
                                  "better": "higher" if unit == "MiB/s" else "lower",
                                  "results": results})  # fmt: skip
    return data


def test_table_shows_medians_ratios_verdicts_and_skips() -> None:
    text = _table_text(_results())
    assert "\x1b[" not in text  # not a terminal: plain text
    assert "size small, repeat 3, cache dropped, baseline overlay2" in text
    assert "interrupted" not in text
    header = _line(text, "workload")
    assert "overlay2" in header and "vfs" in header and "fuse" not in header
    unpack = _line(text, "unpack")
    assert "12.3 ms baseline" in unpack
    assert "36.9 ms 3.00x slower" in unpack  # [36, 37.8] ms against [12, 13] ms
    commit = _line(text, "commit")
    assert "1.42 s baseline" in commit and "skipped" in commit
    read = _line(text, "Read Seq")
    assert "812 MiB/s baseline" in read
    assert read.rstrip(" │").endswith("406 MiB/s 0.50x")  # one sample: no interval, no verdict
    assert "vfs / commit: [Errno 95] no reflinks on this fs" in text
    assert text.count("no /dev/fuse") == 1
    assert "fuse / all workloads: no /dev/fuse" in text
    assert "ratio = median / median of overlay2 (MiB/s, conn/s: higher is better)" in text
    assert "coverage 75% with 3 samples" in text


def test_a_narrow_terminal_gets_every_number_whole_and_no_empty_column() -> None:
    data = _eight_backends()
    wide = _table_text(data, 400)
    narrow = _table_text(data, 80)
    assert all(len(line) <= 80 for line in narrow.splitlines())
    assert "…" not in narrow and "…" not in wide
    header = _line(narrow, "workload").split()
    assert header[:3] == ["workload", "backend", "median"]  # backends as rows
    assert _line(narrow, "crun").split() == ["crun", "20.8", "ms", "0.074x", "faster"]
    assert _line(narrow, "unpack").split() == ["unpack", "overlay2", "131", "ms", "baseline"]
    # the grid on a wide terminal, with a column per backend that has data
    assert _line(wide, "workload").split() == ["workload", *[b["name"] for b in
                                                            data["backends"]]]  # fmt: skip
    data["workloads"] = [w for w in data["workloads"] if w["name"] != "unpack"]
    assert "tar" not in _line(_table_text(data, 400), "workload").split()  # no tar workload ran
    assert not any(row["backend"] == "tar" for row in list_rows(data))


def test_list_rows_carry_intervals_verdicts_and_flags() -> None:
    data = _eight_backends()
    data["workloads"][0]["results"][2]["samples"] = [0.6, 170.0, 0.61, 171.0, 0.62]
    rows = {(r["backend"]): r for r in list_rows(data)[:4]}
    assert rows["overlay2"]["workload"] == "unpack" and rows["fuse"]["workload"] == ""
    assert rows["overlay2"]["ratio"] == "baseline" and rows["overlay2"]["verdict"] == ""
    assert rows["vfs"]["flags"] == "bimodal"
    tar = rows["tar"]
    assert tar["verdict"] == "faster" and tar["ratio"].endswith("x")
    low, high = tar["ratio 95% CI"].rstrip("x").split("-")
    assert float(low) < float(tar["ratio"].rstrip("x")) < float(high) < 1
    assert tar["95% CI"].endswith(" ms")
    assert "vfs: bimodal (600 ms, 170 s, 610 ms, 171 s, 620 ms)" in _table_text(data)


def test_markdown_has_command_machine_settle_tables_and_links() -> None:
    data = _results()
    data["settings"].update(
        warmup=1, settle=["sync"], settle_skipped=["fstrim: the discard operation is not supported"]
    )
    data["workloads"][0]["results"][0]["warmup"] = [0.17]
    report = markdown(data)
    assert "```\npydock bench --size small --repeat 3\n```" in report
    assert "- kernel: 6.8.0-45-generic" in report
    assert "- memory: 16.0 GiB" in report
    assert "- work_fs: ext4" in report
    assert "- load_average: 0.50 0.25 0.12" in report
    assert "- fuse-overlayfs: 1.10" in report
    assert "- cache: dropped" in report and "- warmup: 1" in report
    assert "- between rounds: sync" in report
    assert "- not between rounds: fstrim: the discard operation is not supported" in report
    assert "- unpack / overlay2: warm-up 170 ms, median 12.3 ms" in report
    table = markdown_table(data)
    assert table in report
    assert table.splitlines() == [
        "| workload | overlay2 | vfs |", "|---|---:|---:|",
        "| unpack | 12.3 ms baseline | 36.9 ms 3.00x slower |",
        "| commit | 1.42 s baseline | skipped |",
        "| Read Seq | 812 MiB/s baseline | 406 MiB/s 0.50x |",
    ]  # fmt: skip
    assert "| workload | backend | median | 95% CI | ratio | ratio 95% CI | verdict |" in report
    assert "| unpack | overlay2 | 12.3 ms | 12.0-13.0 ms | baseline |  |  |" in report
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
    assert sorted(p.name for p in plot(_eight_backends(), tmp_path / "eight")) == [
        "mount-1.png", "read-warm.png", "start.png", "summary.png", "unpack.png"]  # fmt: skip


def test_colours_are_fixed_per_backend_and_scales_go_log_past_ten_times() -> None:
    assert colour("overlay2") == "#4e79a7" and colour("crun") == "#e15759"
    assert colour("my-driver") == colour("my-driver")  # a hash of the name, not of the run
    assert len({colour(n) for n in ("overlay2", "fuse", "vfs", "tar", "kernel-overlay",
                                     "fuse-overlayfs", "podman", "crun")}) == 8  # fmt: skip
    assert is_log([0.0006, 0.4])
    assert not is_log([0.1, 0.9])
    assert not is_log([])


def test_every_plot_footer_names_command_machine_and_date() -> None:
    assert footer(_results()) == (
        "pydock bench --size small --repeat 3 | bench1, Linux 6.8.0-45-generic, 8 CPUs, on ext4"
        " | 2026-11-28 03:40:00"
    )


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
    assert cell_text(data, data["workloads"][0], "vfs") == "-"
    assert not any(line.startswith("vfs / unpack") for line in skip_reasons(data))
    assert "| unpack | 12.3 ms baseline | - |" in markdown_table(data)


def test_small_ratios_keep_two_significant_digits() -> None:
    assert format_ratio(1.0) == "1.00x"
    assert format_ratio(639.26) == "639.26x"
    assert format_ratio(0.0022) == "0.0022x"
    assert format_ratio(0.074) == "0.074x"


def test_compare_gives_after_over_before_and_the_ratio_of_ratios() -> None:
    before = _results()
    after = copy.deepcopy(before)
    unpack = after["workloads"][0]["results"]
    unpack[0]["samples"] = [v * 2 for v in unpack[0]["samples"]]  # the machine got slower...
    unpack[1]["samples"] = [v * 2 for v in unpack[1]["samples"]]  # ...for both alike
    after["workloads"][2]["results"][1]["samples"] = [812.0]  # vfs reads twice as fast
    rows = compare_rows(before, after)
    assert [(r["workload"], r["backend"]) for r in rows] == [
        ("unpack", "overlay2"), ("", "vfs"), ("commit", "overlay2"), ("Read Seq", "overlay2"),
        ("", "vfs")]  # fmt: skip
    assert rows[1]["before"] == "36.9 ms" and rows[1]["after"] == "73.8 ms"
    assert rows[1]["after/before"] == "2.00x" and rows[1]["verdict"] == "slower"
    assert rows[1]["ratio of ratios"] == "1.00x"  # the change did nothing to vfs's standing
    assert rows[4]["after/before"] == "2.00x" and rows[4]["ratio of ratios"] == "2.00x"
    assert rows[4]["verdict"] == ""  # one sample: no interval, no verdict
    console = Console(file=io.StringIO(), width=80)
    print_compare(before, after, ("a.json", "b.json"), console)
    out = console.file
    assert isinstance(out, io.StringIO)
    text = out.getvalue()
    assert all(len(line) <= 80 for line in text.splitlines()) and "…" not in text
    assert "before a.json" in text and "ratio of ratios" in text
