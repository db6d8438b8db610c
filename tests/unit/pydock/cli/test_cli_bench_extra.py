"""``pydock bench`` without its extra installed says what to install, in one line."""

from __future__ import annotations

import importlib.util

import pytest

from pydock.cli import main


def test_bench_without_its_extra_says_how_to_get_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    real = importlib.util.find_spec

    def without_matplotlib(name: str, *args: object) -> object:
        return None if name == "matplotlib" else real(name, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(importlib.util, "find_spec", without_matplotlib)
    assert main(["bench", "--quick"]) == 125
    err = capsys.readouterr().err
    assert err == (
        "pydock: benchmarking: matplotlib not installed"
        " (install pydock with its bench extra: pip install 'pydock[bench]')\n"
    )
