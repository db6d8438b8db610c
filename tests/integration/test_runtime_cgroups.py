"""Cgroup limits as root, on whichever layout this host has (v2, or v1/hybrid)."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

import runtime
from runtime import cgroups

from .containers_support import left_cgroups
from .runtime_support import Runner, build_busybox_rootfs

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 to create cgroups"),
    pytest.mark.timeout(60),
]

MIB = 1024 * 1024


@pytest.fixture
def runner(tmp_path: Path) -> Iterator[Runner]:
    runner = Runner(build_busybox_rootfs(tmp_path / "rootfs"))
    yield runner
    runner.cleanup()


def pydock_cgroups() -> set[str]:
    """Every cgroup directory below a ``pydock`` parent, in every mounted hierarchy."""
    found = set()
    for hierarchy in cgroups.mounted_hierarchies(Path("/proc/self/mountinfo").read_text()):
        for top, dirs, _files in os.walk(hierarchy.mountpoint):
            if os.path.basename(top) == "pydock":
                found.update(os.path.join(top, d) for d in dirs)
                dirs.clear()
    return found


def test_limits_are_applied_and_removed(runner: Runner) -> None:
    limits = runtime.CgroupLimits(memory=64 * MIB, cpus=0.5, pids=32)
    spec = runner.spec("sh", "-c", "cat /proc/self/cgroup; sleep 30", cgroup=limits)
    container = runner.create(spec)
    cgroup = container.cgroup
    assert cgroup is not None
    if cgroup.version == 2:
        assert cgroup.read("memory", "memory.max") == str(64 * MIB)
        assert cgroup.read("cpu", "cpu.max") == "50000 100000"
    else:
        assert cgroup.read("memory", "memory.limit_in_bytes") == str(64 * MIB)
        assert cgroup.read("cpu", "cpu.cfs_quota_us") == "50000"
        assert cgroup.read("cpu", "cpu.cfs_period_us") == "100000"
    assert cgroup.read("pids", "pids.max") == "32"
    container.start()
    procs = (cgroup.directories["pids"] / "cgroup.procs").read_text().split()
    assert str(container.pid) in procs
    container.kill(signal.SIGKILL)
    assert container.wait(timeout=10) == 137
    assert not any(d.exists() for d in cgroup.directories.values())
    assert str(cgroup.directories["pids"]) not in pydock_cgroups()


def test_container_sees_its_cgroup_as_root(runner: Runner) -> None:
    result = runner.run("cat", "/proc/self/cgroup", cgroup=runtime.CgroupLimits(pids=16))
    paths = {line.split(":", 2)[2] for line in result.out.splitlines()}
    # The cgroup namespace is made after the move into the cgroup, so it is "/" inside.
    assert "/" in paths
    assert not any(p.endswith("/pydock") or "/pydock/" in p for p in paths)


def test_pids_limit_is_enforced(runner: Runner) -> None:
    script = "i=0; while [ $i -lt 12 ]; do sleep 5 & i=$((i+1)); done; echo spawned"
    result = runner.run("sh", "-c", script, cgroup=runtime.CgroupLimits(pids=4))
    assert "can't fork" in result.err


def test_failed_setup_leaves_no_cgroup(runner: Runner) -> None:
    before = pydock_cgroups()
    (runner.rootfs / "proc").symlink_to("/")
    with pytest.raises(runtime.SetupError, match="/proc is a symlink in the image"):
        runner.run("true", cgroup=runtime.CgroupLimits(memory=64 * MIB, pids=8))
    assert left_cgroups(sorted(before), sorted(pydock_cgroups())) == []


def test_setup_failure_during_the_cgroup_move_is_reported(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """init sets up while the caller moves it into its cgroup: when init has already failed
    and is gone by the time of the move, its own report is raised, not the failed move."""
    before = pydock_cgroups()
    (runner.rootfs / "proc").symlink_to("/")
    move = cgroups.Cgroup.add

    def late_move(cgroup: cgroups.Cgroup, pid: int) -> None:
        deadline = time.monotonic() + 10
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.01)  # until the monitor has reaped the failed init
        move(cgroup, pid)

    monkeypatch.setattr(cgroups.Cgroup, "add", late_move)
    # On v1 init moves itself in; here the caller moves it, as on v2.
    monkeypatch.setattr(cgroups.Cgroup, "join_handles", lambda cgroup: ())
    with pytest.raises(runtime.SetupError, match="/proc is a symlink in the image"):
        runner.run("true", cgroup=runtime.CgroupLimits(pids=8))
    assert left_cgroups(sorted(before), sorted(pydock_cgroups())) == []


def _v1_only() -> None:
    probe = cgroups.create_tracked(f"probe-{os.getpid()}", runtime.CgroupLimits(pids=8))
    assert probe is not None
    probe.remove()
    if probe.version != 1:
        pytest.skip("a cgroup v2 host: the caller moves init, by pid")


def test_on_v1_init_moves_itself_into_every_hierarchy(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    """On v1 init joins through the ``tasks`` files the caller opened (a move by pid waits a
    grace period of the kernel): the caller never moves it, and it is in each directory."""
    _v1_only()

    def no_move(cgroup: cgroups.Cgroup, pid: int) -> None:
        raise AssertionError(f"the caller moved {pid} by pid")

    monkeypatch.setattr(cgroups.Cgroup, "add", no_move)
    spec = runner.spec("sleep", "30", cgroup=runtime.CgroupLimits(memory=64 * MIB, pids=16))
    container = runner.create(spec)
    cgroup = container.cgroup
    assert cgroup is not None and cgroup.version == 1
    try:
        for directory in set(cgroup.directories.values()):
            assert (directory / "cgroup.procs").read_text().split() == [str(container.pid)]
        container.start()
    finally:
        container.kill(signal.SIGKILL)
        container.wait(timeout=10)
    assert not any(d.exists() for d in cgroup.directories.values())


def test_a_cgroup_init_cannot_join_is_reported_and_removed(
    runner: Runner, monkeypatch: pytest.MonkeyPatch
) -> None:
    _v1_only()
    before = pydock_cgroups()

    def unwritable(cgroup: cgroups.Cgroup) -> tuple[int, ...]:
        directory = sorted(set(cgroup.directories.values()))[0]
        return (os.open(directory / "tasks", os.O_RDONLY | os.O_CLOEXEC),)

    monkeypatch.setattr(cgroups.Cgroup, "join_handles", unwritable)
    with pytest.raises(runtime.SetupError, match="joining the container's cgroup: Bad file"):
        runner.run("true", cgroup=runtime.CgroupLimits(pids=8))
    assert left_cgroups(sorted(before), sorted(pydock_cgroups())) == []
