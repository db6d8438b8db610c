"""Driver registry, option parsing and mount reference counting."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path

import pytest

import graphdriver
from graphdriver import InvalidOptionError, NotSupportedError, parse_bool
from graphdriver.counter import RefCounter


class _Broken(graphdriver.Driver):
    name = "broken-test"
    priority = 1000

    @classmethod
    def check_support(cls, home: Path) -> None:
        raise NotSupportedError("needs a kernel feature this host lacks", driver=cls.name)


class _Dummy(_Broken):
    name = "dummy-test"
    priority = -1
    option_parsers: Mapping[str, object] = {"flag": parse_bool}  # type: ignore[assignment]

    @classmethod
    def check_support(cls, home: Path) -> None:
        return None


def test_vfs_found_through_entry_points(tmp_path: Path) -> None:
    assert "vfs" in graphdriver.registered()
    assert "vfs" in graphdriver.available(tmp_path)


def test_unknown_driver_is_not_supported(tmp_path: Path) -> None:
    with pytest.raises(NotSupportedError, match="unknown driver 'nope'"):
        graphdriver.get_driver("nope", tmp_path)


def test_auto_skips_unsupported_drivers_and_reports_why(tmp_path: Path) -> None:
    graphdriver.register(_Broken.name, _Broken)
    try:
        assert graphdriver.probe(_Broken.name, tmp_path) == "needs a kernel feature this host lacks"
        assert _Broken.name not in graphdriver.available(tmp_path)
        assert next(iter(graphdriver.registered())) == _Broken.name
        driver = graphdriver.get_driver(None, tmp_path / "home")
        assert driver.name != _Broken.name
    finally:
        graphdriver.registry._registered.pop(_Broken.name, None)


def test_options_are_validated() -> None:
    assert _Dummy.parse_options({"flag": "yes"}) == {"flag": True}
    assert _Dummy.parse_options({"dummy-test.flag": "0"}) == {"flag": False}
    with pytest.raises(InvalidOptionError, match="unknown option 'size'"):
        _Dummy.parse_options({"size": "10G"})
    with pytest.raises(InvalidOptionError, match="bad value"):
        _Dummy.parse_options({"flag": "maybe"})


def test_refcounter_counts_and_ignores_stray_puts() -> None:
    counter = RefCounter()
    assert counter.decrement("a") is None
    assert counter.increment("a") == 1
    assert counter.increment("a") == 2
    assert counter.decrement("a") == 1
    assert counter.active() == ["a"]
    assert counter.decrement("a") == 0
    assert counter.decrement("a") is None
    assert counter.active() == []


def test_refcounter_lock_serialises_one_layer() -> None:
    counter = RefCounter()
    inside = 0
    peak = 0
    guard = threading.Lock()

    def work() -> None:
        nonlocal inside, peak
        for _ in range(200):
            with counter.locked("layer"):
                with guard:
                    inside += 1
                    peak = max(peak, inside)
                with guard:
                    inside -= 1

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert peak == 1
