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
            assert workload.better == ("higher" if workload.unit == "MiB/s" else "lower")


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
    result.cells["a"] = Cell("a", [100.0, 300.0])
    result.cells["b"] = Cell("b", [50.0], skipped=None)
    run.workloads.append(result)
    run.interrupted = True
    target = tmp_path / "results.json"
    write_json(run.to_json(), target)
    data = read_json(target)
    assert data["interrupted"] is True
    cells = {cell["backend"]: cell for cell in data["workloads"][0]["results"]}
    assert cells["a"]["samples"] == [100.0, 300.0]
    assert cells["a"]["median"] == 200.0
    assert cells["a"]["min"] == 100.0 and cells["a"]["max"] == 300.0
    assert cells["b"]["ratio"] == 0.25
    assert not (tmp_path / "results.json.part").exists()


def test_read_json_refuses_another_file(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text('{"format": "something/2"}')
    with pytest.raises(ValueError, match="not a pydock bench results file"):
        read_json(other)


def test_the_parser_offers_the_sizes_and_references_the_benchmark_has() -> None:
    from pydock.bench.backends import REFERENCES
    from pydock.cli_bench import REFERENCE_NAMES, SIZE_NAMES

    assert tuple(SIZES) == SIZE_NAMES
    assert tuple(REFERENCES) == REFERENCE_NAMES
