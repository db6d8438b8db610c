"""Which recorded pause process pydock's rootless mode trusts to hold its namespace."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from pydock.rootless import PAUSE_MARK, live_pause


def test_live_pause_needs_a_live_process_of_this_user_named_as_the_pause(tmp_path: Path) -> None:
    assert live_pause(tmp_path) is None  # no record
    (tmp_path / "pause.pid").write_text("not a pid\n")
    assert live_pause(tmp_path) is None
    (tmp_path / "pause.pid").write_text(f"{os.getpid()}\n")  # alive, but not a pause process
    assert live_pause(tmp_path) is None

    pause = subprocess.Popen([PAUSE_MARK, "60"], executable="sleep")
    try:
        (tmp_path / "pause.pid").write_text(f"{pause.pid}\n")
        assert live_pause(tmp_path) == pause.pid
    finally:
        pause.kill()
        pause.wait(timeout=30)
    assert live_pause(tmp_path) is None  # the pid is gone
