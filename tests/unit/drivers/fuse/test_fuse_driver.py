"""The fuse graph driver's options."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.fuse.driver import FuseDriver, _escape
from graphdriver import InvalidOptionError


def test_options_are_parsed_and_a_relative_run_root_is_refused() -> None:
    parsed = FuseDriver.parse_options(
        {"fuse.run_root": "/run/x", "fsync": "false", "mount_server": "true"}
    )
    assert parsed == {"run_root": Path("/run/x"), "fsync": False, "mount_server": True}
    with pytest.raises(InvalidOptionError) as caught:
        FuseDriver.parse_options({"run_root": "run"})
    expected = "bad value for option 'run_root' of driver fuse: not an absolute path: 'run'"
    assert str(caught.value) == expected


def test_layer_paths_are_escaped_for_the_lowerdir_option() -> None:
    assert _escape(Path("/a:b,c\\d")) == "/a\\:b\\,c\\\\d"
