"""The overlay layout's sweep: leftovers of dead processes go, work in progress stays."""

from __future__ import annotations

import multiprocessing
import os
import random
import time
from pathlib import Path

import pytest

from graphdriver.overlay import OverlayLayout

pytestmark = pytest.mark.timeout(60)


def test_sweep_leaves_a_live_create_alone(tmp_path: Path) -> None:
    layout = OverlayLayout(tmp_path)
    staging = tmp_path / ".creating-abc-1234"
    with layout.in_progress():  # as a create in another process holds it
        staging.mkdir()
        (staging / "diff").mkdir()
        assert OverlayLayout(tmp_path).sweep() is False
        assert staging.is_dir() and (staging / "diff").is_dir()
    assert OverlayLayout(tmp_path).sweep() is True  # its owner is gone: now it is a leftover
    assert not staging.exists()


def test_sweep_removes_leftovers_and_half_made_layers(tmp_path: Path) -> None:
    layout = OverlayLayout(tmp_path)
    layout.create("kept", None)
    (tmp_path / ".removing-old-1").mkdir()
    (tmp_path / "halfmade" / "diff").mkdir(parents=True)  # a layer dir without its link file
    os.symlink("../gone/diff", tmp_path / "l" / "DANGLING")
    assert layout.sweep() is True
    assert sorted(os.listdir(tmp_path)) == [".sweep.lock", "kept", "l"]
    assert os.listdir(tmp_path / "l") == [layout.short_name("kept")]


def _churn(home: str, seed: int, seconds: float, errors: multiprocessing.Queue[str]) -> None:
    layout = OverlayLayout(Path(home))
    rng = random.Random(seed)
    deadline = time.monotonic() + seconds
    count = 0
    try:
        while time.monotonic() < deadline:
            name = f"p{seed}-{count}"
            count += 1
            layout.create(name, None)
            child = layout.create(f"{name}-c", name)
            assert (child / ".." / "link").is_file()
            if rng.random() < 0.5:
                layout.remove(f"{name}-c")
                layout.remove(name)
    except BaseException as exc:  # reported to the test, which fails on any
        errors.put(f"{type(exc).__name__}: {exc}")


def _sweeper(home: str, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        OverlayLayout(Path(home)).sweep()


def test_concurrent_sweeps_never_break_creates_and_removes(tmp_path: Path) -> None:
    context = multiprocessing.get_context("fork")
    errors: multiprocessing.Queue[str] = context.Queue()
    workers = [context.Process(target=_churn, args=(str(tmp_path), n, 2.0, errors)) for n in (1, 2)]
    workers += [context.Process(target=_sweeper, args=(str(tmp_path), 2.0)) for _ in range(2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    found = []
    while not errors.empty():
        found.append(errors.get())
    assert found == []
    layout = OverlayLayout(tmp_path)
    assert layout.sweep() is True
    for layer in layout.list_layers():
        assert (layout.layer_dir(layer) / "diff").is_dir()
    leftovers = [n for n in os.listdir(tmp_path) if n.startswith(".") and n != ".sweep.lock"]
    assert leftovers == []
