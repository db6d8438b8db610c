"""Docker parity of the container commands, as root, through the real CLI: failed starts kept
with their reason, OOMKilled read from the cgroup, typed-ahead input under ``-t``, and the
lifecycle verbs (restart, rename, pause, top, stats, update, restart policies, info)."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Snapshot,
    Workspace,
    assert_no_leaks,
    clean_env,
    container_rows,
    fails,
)
from .registry_support import running_registry

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


def test_oom_killed_is_read_from_the_cgroup(one: Workspace) -> None:
    before = Snapshot.take(one.root)
    # tail keeps the one endless "line" of /dev/zero in memory until the OOM killer ends it.
    done = one.pydock.run("run", "--name", "oom", "-m", "8m", "busybox", "tail", "/dev/zero")
    assert done.status == 137, done
    seen = state(one, "oom")
    assert (seen["OOMKilled"], seen["ExitCode"]) == (True, 137)
    # A run that ends normally, with or without a limit, was not OOM-killed.
    one.pydock.ok("run", "--name", "fine", "-m", "64m", "busybox", "true")
    assert state(one, "fine")["OOMKilled"] is False
    one.pydock.ok("run", "-d", "--name", "fine2", "busybox", "true")
    assert one.pydock.ok("wait", "fine2") == "0\n"
    assert state(one, "fine2")["OOMKilled"] is False
    one.pydock.ok("rm", "oom", "fine", "fine2")
    assert_no_leaks(one.root, before)


@pytest.mark.skipif(shutil.which("script") is None, reason="needs script (util-linux)")
def test_input_typed_ahead_of_a_terminal_run_reaches_the_container(one: Workspace) -> None:
    # script gives pydock a terminal and writes "exit 7" to it at once, long before pydock
    # switches it to raw mode; then end of input. That line must reach the shell (status 7);
    # when it is flushed away, the shell reads end-of-file and exits 0.
    command = shlex.join(one.pydock.command("run", "--rm", "-it", "busybox", "sh"))
    done = subprocess.run(
        ["script", "-qec", command, "/dev/null"],
        input=b"exit 7\n",
        capture_output=True,
        timeout=60,
        env=clean_env(),
        check=False,
    )
    assert done.returncode == 7, done


def test_run_and_create_pull_a_missing_image(one: Workspace, tmp_path: Path) -> None:
    with running_registry(tmp_path / "registry") as registry:
        name = f"{registry.address}/parity/bb:1"
        one.pydock.ok("tag", "busybox", name)
        # A registry on 127.0.0.1 is insecure by default, as in Docker: no --tls-verify=false.
        one.pydock.ok("push", "-q", name)
        one.pydock.ok("rmi", name)
        fails(one.pydock.run("run", "--rm", "--pull", "never", name, "true"), "no such image")
        done = one.pydock.run("run", "--rm", name, "echo", "pulled")
        assert (done.status, done.out) == (0, "pulled\n"), done
        assert f"Unable to find image '{name}' locally" in done.err
        # Present now: nothing pulled.
        assert one.pydock.run("run", "--rm", name, "true").err == ""
        done = one.pydock.run("create", "--pull", "always", "--name", "pulled", name, "true")
        assert done.status == 0 and "Unable" not in done.err, done
        one.pydock.ok("rm", "pulled")
        fails(
            one.pydock.run("run", "--rm", "--pull", "always", "--tls-verify=true", name, "true"),
            "reaching registry",
        )
        one.pydock.ok("rmi", name)
