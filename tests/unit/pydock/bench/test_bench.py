"""The pieces of ``pydock bench`` that need no mounts: data, workload choice, ratios, JSON."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from pydock.bench.data import SIZES, Size, generate
from pydock.bench.results import Cell, Run, WorkloadResult, read_json, write_json
from pydock.bench.workloads import select, workloads

TINY = Size(files=120, big_mib=1, create=10, changed=5, depths=(1, 3))


def _digest(root: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(root.rglob("*")):
        hasher.update(str(path.relative_to(root)).encode())
        if path.is_file():
            hasher.update(oct(path.stat().st_mode).encode())
            hasher.update(path.read_bytes())
    return hasher.hexdigest()


def test_data_is_the_same_for_the_same_seed(tmp_path: Path) -> None:
    first, second = tmp_path / "a", tmp_path / "b"
    first.mkdir()
    second.mkdir()
    paths = generate(first, TINY)
    assert generate(second, TINY) == paths
    assert len(paths) == TINY.files
    assert (first / "big.bin").stat().st_size == 1 << 20
    assert _digest(first) == _digest(second)
    assert len({(first / rel).read_bytes() for rel in paths}) > TINY.files // 2


def test_every_size_has_every_workload_with_a_description() -> None:
    for size in SIZES.values():
        names = [workload.name for workload in workloads(size)]
        assert len(names) == len(set(names))
        assert {"unpack", "snapshot", "start", "read-cold", "read-warm", "walk", "create",
                "copy-up", "diff", "remove"} <= set(names)  # fmt: skip
        assert [name for name in names if name.startswith("mount-")] == [
            f"mount-{depth}" for depth in size.depths
        ]
        for workload in workloads(size):
            assert workload.description and "\n" not in workload.description
            rate = workload.unit in ("MiB/s", "conn/s")
            assert workload.better == ("higher" if rate else "lower")


def test_select_keeps_run_order_and_expands_mount() -> None:
    every = workloads(SIZES["small"])
    chosen = select(every, ["remove", "mount", "unpack"])
    assert [w.name for w in chosen] == ["unpack", "mount-1", "mount-20", "remove"]
    assert select(every, None) == every


def test_select_refuses_an_unknown_workload() -> None:
    with pytest.raises(ValueError, match=r"unknown workload 'compile' \(known: mount, "):
        select(workloads(SIZES["small"]), ["unpack", "compile"])


def test_ratio_is_median_over_the_baselines_median() -> None:
    result = WorkloadResult("unpack", "d", "s", "lower")
    result.cells["a"] = Cell("a", [1.0, 3.0, 2.0])
    result.cells["b"] = Cell("b", [4.0, 5.0, 100.0])
    result.cells["c"] = Cell("c", [], skipped="does not apply")
    assert result.ratio("b", "a") == pytest.approx(2.5)
    assert result.ratio("a", "a") == pytest.approx(1.0)
    assert result.ratio("c", "a") is None
    assert result.ratio("a", "c") is None
    assert result.ratio("a", "missing") is None


def test_results_json_round_trip_keeps_every_sample(tmp_path: Path) -> None:
    run = Run(["pydock", "bench"], "t0", {"kernel": "k"}, {"pydock": "0"},
              {"baseline": "a", "size": "small"}, [{"name": "a"}, {"name": "b"}])  # fmt: skip
    result = WorkloadResult("read-warm", "read", "MiB/s", "higher")
    result.cells["a"] = Cell("a", [100.0, 300.0], warmup=[7.0])
    result.cells["b"] = Cell("b", [50.0], skipped=None)
    run.workloads.append(result)
    run.interrupted = True
    target = tmp_path / "results.json"
    write_json(run.to_json(), target)
    data = read_json(target)
    assert data["interrupted"] is True
    assert data["format"] == "pydock-bench/2"
    cells = {cell["backend"]: cell for cell in data["workloads"][0]["results"]}
    assert cells["a"]["samples"] == [100.0, 300.0]
    assert cells["a"]["warmup"] == [7.0]
    assert cells["a"]["median"] == 200.0
    assert cells["a"]["ci"] == [100.0, 300.0] and cells["a"]["ci_coverage"] == 0.5
    assert cells["b"]["ci"] is None and cells["b"]["verdict"] is None
    assert cells["a"]["min"] == 100.0 and cells["a"]["max"] == 300.0
    assert cells["b"]["ratio"] == 0.25
    assert not (tmp_path / "results.json.part").exists()


def test_read_json_refuses_another_file(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"format": "something/2"}')
    with pytest.raises(ValueError, match="not a pydock bench results file"):
        read_json(other)


def test_the_parser_offers_the_sizes_and_references_the_benchmark_has() -> None:
    import importlib

    from pydock.bench.backends import REFERENCES

    for name in ("pydock.cli.commands", "pydock.cli.bench", "pydock.cli_bench"):
        try:  # where the parser is declares the names (the CLI is being moved into a package)
            parser = importlib.import_module(name)
        except ImportError:
            continue
        if hasattr(parser, "REFERENCE_NAMES"):
            break
    assert tuple(SIZES) == parser.SIZE_NAMES
    assert tuple(REFERENCES) == parser.REFERENCE_NAMES


def test_version_1_results_are_still_read(tmp_path: Path) -> None:
    old = tmp_path / "old.json"
    old.write_text('{"format": "pydock-bench/1", "workloads": []}')
    assert read_json(old)["format"] == "pydock-bench/1"


def test_the_json_keeps_warm_up_intervals_verdicts_and_flags() -> None:
    run = Run(["pydock", "bench"], "t0", {}, {}, {"baseline": "a"}, [{"name": "a"}, {"name": "b"}])
    result = WorkloadResult("snapshot", "d", "s", "lower")
    result.cells["a"] = Cell("a", [1.0, 1.1, 0.9, 1.05, 0.95], warmup=[170.0])
    result.cells["b"] = Cell("b", [2.0, 2.2, 1.9, 2.1, 2.05], warmup=[2.5])
    run.workloads.append(result)
    cells = {c["backend"]: c for c in run.to_json()["workloads"][0]["results"]}
    assert cells["a"]["warmup"] == [170.0] and cells["a"]["median"] == 1.0  # not counted
    assert cells["a"]["ci"] == [0.9, 1.1] and cells["a"]["ci_coverage"] == 0.9375
    assert cells["a"]["verdict"] == "no difference" and cells["a"]["ratio"] == 1.0
    assert cells["b"]["ratio"] == 2.05
    assert cells["b"]["ratio_ci"] == [round(1.9 / 1.1, 4), round(2.2 / 0.9, 4)]
    assert cells["b"]["verdict"] == "slower"
    assert cells["b"]["flags"] == []


# -- statistics ---------------------------------------------------------------------------------


def test_median_interval_from_order_statistics() -> None:
    from pydock.bench.stats import median_interval

    assert median_interval([3.0]) is None
    five = median_interval([5.0, 1.0, 4.0, 2.0, 3.0])
    assert five is not None
    assert (five.low, five.high) == (1.0, 5.0)  # no narrower pair reaches 95% with five
    assert five.coverage == pytest.approx(1 - 2 / 32)
    ten = median_interval([float(v) for v in range(10, 0, -1)])
    assert ten is not None
    assert (ten.low, ten.high) == (2.0, 9.0)  # [x(2), x(9)]: 1 - 2 * 11/1024
    assert ten.coverage == pytest.approx(1 - 22 / 1024)
    assert ten.coverage >= 0.95


def test_verdict_only_where_intervals_do_not_overlap() -> None:
    from pydock.bench.stats import Interval, ratio_interval, verdict

    base, quick, slow, near = (Interval(1.0, 1.2, 0.94), Interval(0.4, 0.5, 0.94),
                               Interval(2.0, 2.5, 0.94), Interval(1.1, 1.4, 0.94))  # fmt: skip
    assert verdict(quick, base, "lower") == "faster"
    assert verdict(slow, base, "lower") == "slower"
    assert verdict(near, base, "lower") == "no difference"
    assert verdict(slow, base, "higher") == "faster"  # MiB/s: more is better
    assert verdict(None, base, "lower") is None
    span = ratio_interval(slow, base)
    assert span is not None
    assert (span.low, span.high) == pytest.approx((2.0 / 1.2, 2.5 / 1.0))
    near_span = ratio_interval(near, base)
    assert near_span is not None and near_span.low < 1 < near_span.high  # overlap <=> 1 inside
    assert ratio_interval(slow, Interval(0.0, 1.0, 0.9)) is None


def test_kendall_trend_is_exact() -> None:
    from pydock.bench.stats import kendall_trend

    tau, p = kendall_trend([1.0, 2.0, 3.0, 4.0, 5.0])
    assert tau == 1.0 and p == pytest.approx(2 / 120)
    tau, p = kendall_trend([5.0, 4.0, 3.0, 2.0, 1.0])
    assert tau == -1.0 and p == pytest.approx(2 / 120)
    tau, p = kendall_trend([1.0, 3.0, 2.0, 4.0, 5.0])  # one swap: 10 permutations as extreme
    assert tau == pytest.approx(0.8) and p == pytest.approx(10 / 120)


def test_drift_and_bimodal_flags_on_seeded_samples() -> None:
    import random

    from pydock.bench.stats import flags

    rng = random.Random(18)
    steady = [1.0 + rng.uniform(-0.05, 0.05) for _ in range(5)]
    assert flags(steady) == []
    growing = [0.28, 0.9, 1.8, 2.1, 2.3]  # unpack on a disk catching up with removed layers
    assert flags(growing) == ["drift"]
    assert flags([1.0, 1.01, 1.02, 1.03, 1.04]) == []  # a trend, but under 10% of the median
    two_groups = [0.6, 170.0, 0.61, 171.0, 0.62]
    assert flags(two_groups) == ["bimodal"]
    assert flags([1.0, 2.0, 3.0]) == []  # too few to say
    assert flags([1.0, 1.2, 5.0, 1.1, 1.3]) == []  # one outlier is not a second mode


# -- the runner ---------------------------------------------------------------------------------


class _FakeBackend:
    name, kind, description = "fake", "reference", "counts"
    operations = frozenset({"start"})

    def __init__(self) -> None:
        self.calls = 0

    def setup(self) -> None:
        pass

    def start(self) -> float:
        self.calls += 1
        return 100.0 if self.calls == 1 else float(self.calls)


class _CountingSettler:
    def __init__(self) -> None:
        self.count = 0

    def settle(self) -> None:
        self.count += 1


def test_the_warm_up_round_is_kept_apart_and_rounds_are_settled(tmp_path: Path) -> None:
    from typing import Any, cast

    from pydock.bench.runner import Plan, execute

    backend = _FakeBackend()
    start = next(w for w in workloads(SIZES["small"]) if w.name == "start")
    settler = _CountingSettler()
    plan = Plan([cast(Any, backend)], [start], 3, tmp_path, settler=cast(Any, settler))
    assert plan.samples() == 4
    run = Run(["pydock", "bench"], "t0", {}, {}, {"baseline": "fake"}, [])
    seen: list[str] = []
    execute(plan, run, lambda what, done: seen.append(what))
    cell = run.workloads[0].cells["fake"]
    assert cell.warmup == [100.0] and cell.samples == [2.0, 3.0, 4.0]
    assert settler.count == 3  # before each counted round, not before the warm-up
    assert "start on fake (warm-up)" in seen and "start on fake (round 3/3)" in seen


MOUNTINFO = """\
22 1 252:0 / / rw,relatime shared:1 - ext4 /dev/vda rw,discard
40 22 0:35 / /tmp/bench\\040fs rw,relatime shared:20 - tmpfs tmpfs rw,size=3145728k
41 40 0:36 / /tmp/bench\\040fs/inner rw shared:21 - xfs /dev/vdb rw,attr2
42 22 0:37 / /var/lib/x rw - overlay overlay rw,lowerdir=/a,upperdir=/b,workdir=/c
43 22 0:38 / /tmp/bench\\040fs rw shared:22 - btrfs /dev/vdc rw,ssd
"""


def test_the_work_directory_s_file_system_is_found_on_every_kind(tmp_path: Path) -> None:
    from pydock.bench.runner import work_mount

    def fstype(path: str) -> str:
        return work_mount(Path(path), MOUNTINFO)["fstype"]

    assert fstype("/home/someone/not-made-yet") == "ext4"
    assert fstype("/tmp/bench fs/inner/work") == "xfs"
    assert fstype("/tmp/bench fs/other") == "btrfs"  # mounted over the tmpfs: the last one wins
    assert fstype("/var/lib/x/merged") == "overlay"
    assert fstype("/tmp/bench fsx") == "ext4"  # a prefix of a name is not a parent
    found = work_mount(Path("/tmp/bench fs/inner"), MOUNTINFO)
    assert found == {"target": "/tmp/bench fs/inner", "fstype": "xfs", "source": "/dev/vdb",
                     "options": "rw,attr2"}  # fmt: skip
    here = work_mount(tmp_path / "missing" / "dir")  # the live table, a path not made yet
    assert here["fstype"] and here["target"]


def test_settling_says_what_it_could_not_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from pydock.bench.settle import Settler

    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    settler = Settler(tmp_path)
    settler.probe()
    assert settler.done == ["sync"]
    assert "fstrim: needs root" in settler.skipped
    assert any(line.startswith("drop caches:") for line in settler.skipped)
    settler.settle()
