"""Runtime pieces added for the container commands that need no privileges: reading a user
namespace's maps, the reaper's exit status, and the exec spec's defaults."""

from __future__ import annotations

import os
import signal

from runtime import capabilities, idmap, reaper
from runtime.execute import NAMESPACES, ExecSpec
from runtime.spec import DEFAULT_PATH


def test_parse_map_and_the_initial_namespace() -> None:
    ranges = idmap.parse_map("         0       1000          1\n         1     165536      65536\n")
    assert ranges == (idmap.IdRange(0, 1000, 1), idmap.IdRange(1, 165536, 65536))
    mapping = idmap.IdMapping(ranges, ranges, use_helpers=False)
    assert not idmap.is_initial(mapping)
    assert mapping.maps_uid(0) and mapping.maps_uid(65536) and not mapping.maps_uid(65537)
    initial = idmap.IdMapping(
        (idmap.IdRange(0, 0, idmap.INITIAL_SIZE),),
        (idmap.IdRange(0, 0, idmap.INITIAL_SIZE),),
        False,
    )
    assert idmap.is_initial(initial)
    assert idmap.parse_map("garbage\n1 2\n") == ()


def test_current_maps_are_readable() -> None:
    mapping = idmap.current()
    assert mapping.uids and mapping.maps_uid(os.geteuid() if idmap.is_initial(mapping) else 0)


def test_reaper_exit_status() -> None:
    assert reaper.exit_status(3 << 8) == 3
    assert reaper.exit_status(signal.SIGTERM) == 128 + signal.SIGTERM


def test_exec_spec_defaults() -> None:
    spec = ExecSpec(container_id="c", target_pid=1, args=("true",))
    assert spec.env == (f"PATH={DEFAULT_PATH}",)
    assert spec.capabilities == capabilities.DEFAULT_CAPABILITIES
    # The user namespace is joined first, the mount namespace last (it changes the root).
    assert NAMESPACES[0][0] == "user" and NAMESPACES[-1][0] == "mnt"
