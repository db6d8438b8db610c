"""Docker parity of the container commands, as root, through the real CLI: failed starts kept
with their reason, OOMKilled read from the cgroup, typed-ahead input under ``-t``, and the
lifecycle verbs (restart, rename, pause, top, stats, update, restart policies, info)."""

from __future__ import annotations

import json
from pathlib import Path

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Snapshot,
    Workspace,
    assert_no_leaks,
    container_rows,
    fails,
)

pytestmark = ROOT_CONTAINER_TESTS


def state(ws: Workspace, name: str) -> dict[str, object]:
    """``inspect NAME``'s ``State``."""
    [document] = json.loads(ws.pydock.ok("inspect", name))
    found = document["State"]
    assert isinstance(found, dict)
    return found


def test_a_failed_start_keeps_the_container_with_its_error(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    fails(one.pydock.run("run", "--name", "f1", "busybox", "no-such-command"), status=127)
    seen = state(one, "f1")
    assert seen["Status"] == "exited" and seen["ExitCode"] == 127
    assert "no-such-command" in str(seen["Error"]) and "not found" in str(seen["Error"])
    assert one.pydock.run("logs", "f1").status == 0
    # A set-up failure (before anything ran) leaves it created, with the reason.
    fails(one.pydock.run("run", "--name", "f2", "-u", "nosuchuser", "busybox", "true"))
    seen = state(one, "f2")
    assert seen["Status"] == "created" and "nosuchuser" in str(seen["Error"])
    fails(one.pydock.run("start", "-a", "f2"), "nosuchuser")
    assert "nosuchuser" in str(state(one, "f2")["Error"])
    # With --rm it is gone.
    fails(one.pydock.run("run", "--rm", "--name", "f3", "busybox", "no-such-command"), status=127)
    assert "f3" not in [name for name, _ in container_rows(one.root)]
    assert one.pydock.ok("rm", "f1", "f2") == "f1\nf2\n"
    assert_no_leaks(one.root, before)
