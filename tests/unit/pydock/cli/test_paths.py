"""Default roots (DESIGN.md section 3) and the CLI's global options."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import graphdriver
from pydock import paths
from pydock.cli import build_parser, engine_config
from pydock.errors import UsageError


def test_environment_overrides_everything() -> None:
    env = {"PYDOCK_ROOT": "/data/pd", "PYDOCK_RUN_ROOT": "/run/pd"}
    assert paths.default_root(env) == Path("/data/pd")
    assert paths.default_run_root(env) == Path("/run/pd")


def test_system_paths_as_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert paths.default_root({}) == Path("/var/lib/pydock")
    assert paths.default_run_root({}) == Path("/run/pydock")


def test_user_paths_when_rootless(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    env = {"XDG_DATA_HOME": "/home/u/data", "XDG_RUNTIME_DIR": "/run/user/1000"}
    assert paths.default_root(env) == Path("/home/u/data/pydock")
    assert paths.default_run_root(env) == Path("/run/user/1000/pydock")
    monkeypatch.setenv("HOME", str(tmp_path))
    assert paths.default_root({}) == tmp_path / ".local" / "share" / "pydock"


def test_overlay_drivers_share_a_home() -> None:
    # Declared by the drivers themselves (graphdriver.Driver.home_name), not by pydock.
    assert graphdriver.home_name("overlay2") == graphdriver.home_name("fuse") == "overlay"
    assert graphdriver.home_name("vfs") == "vfs"
    assert graphdriver.home_name("not-a-driver") == "not-a-driver"


def test_storage_options_are_collected() -> None:
    args = build_parser().parse_args(
        [
            "--root",
            "/r",
            "--storage",
            "vfs",
            "--storage-opt",
            "vfs.copy=readwrite",
            "--storage-opt",
            "skip_devices=true",
            "images",
        ]
    )
    config = engine_config(args)
    assert config.root == Path("/r") and config.storage == "vfs"
    assert config.storage_options == {"vfs.copy": "readwrite", "skip_devices": "true"}


def test_storage_option_without_equals_is_a_usage_error() -> None:
    args = build_parser().parse_args(["--storage-opt", "novalue", "images"])
    with pytest.raises(UsageError, match="expected KEY=VALUE"):
        engine_config(args)
