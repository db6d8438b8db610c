"""``changes``: the list ``docker diff`` would print for a known set of modifications."""

from __future__ import annotations

import io
import os
import random
import shutil

import pytest

import graphdriver
from graphdriver import Change, ChangeKind

from .helpers import make_dir, mounted, write
from .scenario import ChangeScenario
from .trees import populate_base
from .treesnap import assert_same_tree, paths, snapshot, without_mtimes

A, C, D = ChangeKind.ADD, ChangeKind.MODIFY, ChangeKind.DELETE


def test_changes_exact(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    assert sorted(driver.changes("upper", "base")) == scenario.expected


def test_changes_are_values(driver: graphdriver.Driver, scenario: ChangeScenario) -> None:
    for change in driver.changes("upper", "base"):
        assert isinstance(change, Change)
        assert isinstance(change.kind, ChangeKind)
        assert change.path.startswith("/") and not change.path.endswith("/")


def test_changes_of_base_are_all_added(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        populate_base(root, seed=2)
        every = paths(snapshot(root))
    assert sorted(driver.changes("base", None)) == sorted(Change(p, A) for p in every)


def test_no_changes(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        populate_base(root, seed=2)
    driver.create("same", "base")
    assert driver.changes("same", "base") == []
    assert driver.diff_size("same", "base") == 0


def test_same_size_rewrite_found_by_mtime(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "f", b"aaaa")
        os.utime(root / "f", ns=(10**18, 10**18))
    driver.create("upper", "base")
    with mounted(driver, "upper") as root:
        write(root / "f", b"bbbb")
        os.utime(root / "f", ns=(10**18 + 1, 10**18 + 1))
    assert driver.changes("upper", "base") == [Change("/f", C)]


def test_mode_only_change(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        make_dir(root / "d")
        write(root / "d" / "f", b"x", 0o644)
    driver.create("upper", "base")
    with mounted(driver, "upper") as root:
        os.chmod(root / "d" / "f", 0o4644)
    assert sorted(driver.changes("upper", "base")) == [Change("/d", C), Change("/d/f", C)]


def _nested_paths(depth: int) -> list[str]:
    out, current = [], ""
    for level in range(1, depth + 1):
        current += f"/subdir{level}"
        out.append(current)
    return out


@pytest.mark.parametrize("level", range(6))
def test_echo_delete_and_recreate(driver: graphdriver.Driver, level: int) -> None:
    """Delete ``/subdir1/.../subdirN`` at some level and make it again in the same layer.

    The recreated entry and its ancestors are changes; what was inside the old directory and
    was not made again is deleted, reported at its top. The same list comes out of a layer
    rebuilt from the diff.
    """
    chain = _nested_paths(6)
    leaf = chain[-1] + "/file"
    rng = random.Random(level)
    driver.create("base", None)
    with mounted(driver, "base") as root:
        for rel in chain:
            make_dir(root / rel.lstrip("/"), 0o700)
        write(root / leaf.lstrip("/"), rng.randbytes(128), 0o600)
    assert sorted(driver.changes("base", None)) == sorted(Change(p, A) for p in [*chain, leaf])

    target = chain[level]
    driver.create("second", "base")
    with mounted(driver, "second") as root:
        shutil.rmtree(root / target.lstrip("/"))
        make_dir(root / target.lstrip("/"), 0o700)
    below = chain[level + 1] if level + 1 < len(chain) else leaf
    expected = sorted([*(Change(p, C) for p in chain[: level + 1]), Change(below, D)])
    assert sorted(driver.changes("second", "base")) == expected

    with driver.diff("second", "base") as stream:
        data = stream.read()
    driver.create("rebuilt", "base")
    driver.apply_diff("rebuilt", "base", io.BytesIO(data))
    with mounted(driver, "second") as a, mounted(driver, "rebuilt") as b:
        # Directory mtimes here are the test's own clock; only the shape must match.
        assert_same_tree(without_mtimes(snapshot(a)), without_mtimes(snapshot(b)), "rebuilt")
    assert sorted(driver.changes("rebuilt", "base")) == expected


def test_recreated_file_echo(driver: graphdriver.Driver) -> None:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "echo", b"first version")
        os.utime(root / "echo", (1_500_000_000, 1_500_000_000))
    driver.create("second", "base")
    with mounted(driver, "second") as root:
        (root / "echo").unlink()
        write(root / "echo", b"second version")
        os.utime(root / "echo", (1_600_000_000, 1_600_000_000))
    assert driver.changes("second", "base") == [Change("/echo", C)]
    with driver.diff("second", "base") as stream:
        data = stream.read()
    driver.create("rebuilt", "base")
    driver.apply_diff("rebuilt", "base", io.BytesIO(data))
    with mounted(driver, "rebuilt") as root:
        assert (root / "echo").read_bytes() == b"second version"
        assert os.lstat(root / "echo").st_mtime == 1_600_000_000
    assert driver.changes("rebuilt", "base") == [Change("/echo", C)]
