"""Where rootless networks look for their namespace, and which processes they may stop."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from pydock import rootless
from pydock.network import rootlessnet
from pydock.network.errors import NetworkError


def test_as_root_the_bridges_live_in_the_callers_own_namespace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(rootlessnet, "is_rootless", lambda: False)
    assert rootlessnet.holder() is None
    assert rootlessnet.entering(None) is None


def test_rootless_without_a_pause_process_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(rootlessnet, "is_rootless", lambda: True)
    monkeypatch.setattr(rootless, "_session", None)
    with pytest.raises(NetworkError, match="pause process is not running"):
        rootlessnet.holder()


def test_a_pause_process_sharing_the_callers_namespace_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    sharing = subprocess.Popen(["sleep", "60"])  # same network namespace as this test
    try:
        monkeypatch.setattr(rootlessnet, "is_rootless", lambda: True)
        monkeypatch.setattr(rootless, "_session", rootless.Session(tmp_path, sharing.pid))
        with pytest.raises(NetworkError, match="no network namespace of its own"):
            rootlessnet.holder()
    finally:
        sharing.kill()
        sharing.wait(timeout=30)


def test_only_a_live_process_of_this_user_with_the_word_is_stopped(tmp_path: Path) -> None:
    other = subprocess.Popen(["sleep", "60"])
    try:
        deadline = time.monotonic() + 10
        while not rootlessnet._is_ours(other.pid, "sleep") and time.monotonic() < deadline:
            time.sleep(0.01)  # until the child has run exec
        assert rootlessnet._is_ours(other.pid, "sleep")
        assert not rootlessnet._is_ours(other.pid, "pasta")
        rootlessnet._stop(other.pid, "pasta")  # not pasta: left alone
        assert other.poll() is None
        rootlessnet._stop(other.pid, "sleep")  # waits (bounded) until it is gone
        assert not rootlessnet._is_ours(other.pid, "sleep")
    finally:
        other.kill()
        other.wait(timeout=30)
    (tmp_path / "pasta.pid").write_text("12 34\n")
    assert rootlessnet._pasta_record(tmp_path) == (12, 34)
    (tmp_path / "pasta.pid").write_text("garbage\n")
    assert rootlessnet._pasta_record(tmp_path) is None
