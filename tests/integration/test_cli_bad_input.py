"""Bad input to the container commands, as root: one ``pydock:`` line, the right exit status,
and nothing left behind — no mounts, cgroups, processes, container rows or layer directories."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Snapshot,
    Workspace,
    assert_no_leaks,
    container_drivers,
    driver_params,
    fails,
    workspace,
)

pytestmark = ROOT_CONTAINER_TESTS


def symlink_image(link: str) -> bytes:
    """A busybox image whose ``/<link>`` is a symlink to ``/``."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for name in ("bin", "etc"):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        data = Path("/bin/busybox").read_bytes()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode = len(data), 0o755
        tar.addfile(info, io.BytesIO(data))
        for name, target in (("bin/sh", "busybox"), (link, "/")):
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return out.getvalue()


def prepared(root: Path, driver: str) -> Iterator[Workspace]:
    """A workspace with the symlink images and a running container named ``taken``."""
    for ready in workspace(root, driver):
        for link in ("proc", "dev"):
            ready.pydock.ok("import", "-", f"link-{link}", stdin=symlink_image(link))
        ready.pydock.ok("run", "-d", "--name", "taken", "busybox", "sleep", "120")
        yield ready


@pytest.fixture(scope="module", params=driver_params())
def ws(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    yield from prepared(tmp_path_factory.mktemp(f"bad-{request.param}") / "root", request.param)


@pytest.fixture(scope="module")
def one(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Workspace]:
    drivers = container_drivers()
    if not drivers:
        pytest.skip("no storage driver works here")
    yield from prepared(tmp_path_factory.mktemp("bad-one") / "root", drivers[0])


# Failures after the root file system was mounted: checked on every driver.
STORAGE_CASES = [
    pytest.param(["run", "--rm", "busybox", "no-such-command"], 127, "not found", id="missing"),
    pytest.param(
        ["run", "--rm", "busybox", "/etc/passwd"], 126, "ermission denied", id="not-executable"
    ),
    pytest.param(
        ["run", "--rm", "-u", "nosuchuser", "busybox", "true"], 125, "nosuchuser", id="user"
    ),
    pytest.param(["run", "--rm", "link-proc", "/bin/sh", "-c", "true"], 125, "symlink", id="proc"),
    pytest.param(["run", "--rm", "link-dev", "/bin/sh", "-c", "true"], 125, "symlink", id="dev"),
]
# Failures found before any storage is touched.
CASES = [
    pytest.param(
        ["run", "--rm", "--pull", "never", "no-such-image", "true"],
        125,
        "no such image",
        id="image",
    ),
    pytest.param(["run", "--name", "taken", "busybox", "true"], 125, "already in use", id="name"),
    pytest.param(["rm", "taken"], 125, "is running", id="rm-running"),
    pytest.param(
        ["run", "--rm", "-v", "/no/such/dir:/x", "busybox", "true"],
        125,
        "does not exist",
        id="bind",
    ),
    pytest.param(["run", "--rm", "--memory", "1k", "busybox", "true"], 125, "6MB", id="memory"),
    pytest.param(["run", "--rm", "--cpus", "1000", "busybox", "true"], 125, "CPUs", id="cpus"),
    pytest.param(["run", "--rm", "--cap-add", "NOPE", "busybox", "true"], 125, "NOPE", id="cap"),
    pytest.param(
        ["run", "--rm", "--security-opt", "apparmor=x", "busybox", "true"],
        125,
        "only",
        id="secopt",
    ),
    pytest.param(
        ["run", "--rm", "--security-opt", "seccomp=/no/such.json", "busybox", "true"],
        125,
        "reading seccomp profile /no/such.json: no such file or directory",
        id="seccomp-file",
    ),
    pytest.param(["run", "--rm", "-w", "rel", "busybox", "true"], 125, "absolute", id="workdir"),
    pytest.param(
        ["run", "--rm", "-it", "busybox", "cat"], 125, "the input device is not a TTY", id="it-run"
    ),
    pytest.param(
        ["exec", "-it", "taken", "cat"], 125, "the input device is not a TTY", id="it-exec"
    ),
    pytest.param(["start", "nosuch"], 125, "no such container", id="start-unknown"),
    pytest.param(["exec", "nosuch", "true"], 125, "no such container", id="exec-unknown"),
    pytest.param(["kill", "-s", "NOPE", "taken"], 125, "no such signal", id="signal"),
    pytest.param(["logs", "nosuch"], 125, "no such container", id="logs-unknown"),
]


@pytest.mark.parametrize(("args", "status", "needle"), STORAGE_CASES)
def test_failed_start_leaves_nothing(
    ws: Workspace, args: list[str], status: int, needle: str
) -> None:
    before = Snapshot.take(ws.root)
    fails(ws.pydock.run(*args), needle, status=status)
    assert_no_leaks(ws.root, before)


@pytest.mark.parametrize(("args", "status", "needle"), CASES)
def test_bad_input_leaves_nothing(
    one: Workspace, args: list[str], status: int, needle: str
) -> None:
    before = Snapshot.take(one.root)
    fails(one.pydock.run(*args), needle, status=status)
    assert_no_leaks(one.root, before)
