"""Pieces of the runtime that need no privileges: cgroup layout parsing, id maps, the channel,
command lookup, exit statuses, and the syscall wrappers' errors."""

from __future__ import annotations

import errno
import os
import signal
from pathlib import Path

import pytest

from runtime import cgroups, channel, idmap, init, linux, monitor, reaper
from runtime.errors import InvalidSpecError
from runtime.spec import CgroupLimits

HYBRID = """\
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""
SELF_CGROUP = "4:memory:/session/7\n3:cpu,cpuacct:/\n0::/user.slice\n"


def test_mountinfo_parsing() -> None:
    found = cgroups.mounted_hierarchies(HYBRID)
    assert [(str(h.mountpoint), h.version) for h in found] == [
        ("/sys/fs/cgroup/cpu,cpuacct", 1),
        ("/sys/fs/cgroup/memory", 1),
        ("/sys/fs/cgroup/pids", 1),
        ("/sys/fs/cgroup/unified", 2),
    ]
    assert found[0].controllers == {"cpu", "cpuacct"}


def test_own_cgroups() -> None:
    assert cgroups.own_cgroups(SELF_CGROUP) == {
        "memory": "/session/7",
        "cpu": "/",
        "cpuacct": "/",
        "": "/user.slice",
    }


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            2,
            [
                ("memory", "memory.max", "1048576"),
                ("cpu", "cpu.max", "150000 100000"),
                ("pids", "pids.max", "9"),
            ],
        ),
        (
            1,
            [
                ("memory", "memory.limit_in_bytes", "1048576"),
                ("cpu", "cpu.cfs_period_us", "100000"),
                ("cpu", "cpu.cfs_quota_us", "150000"),
                ("pids", "pids.max", "9"),
            ],
        ),
    ],
)
def test_limit_files(version: int, expected: list[tuple[str, str, str]]) -> None:
    limits = CgroupLimits(memory=1 << 20, cpus=1.5, pids=9)
    assert cgroups._settings(limits, version) == expected


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        (
            2,
            [
                ("memory", "memory.max", "67108864"),
                ("memory", "memory.low", "33554432"),
                ("memory", "memory.swap.max", "67108864"),
                ("cpu", "cpu.weight", "20"),
                ("cpuset", "cpuset.cpus", "0-1"),
            ],
        ),
        (
            1,
            [
                ("memory", "memory.limit_in_bytes", "67108864"),
                ("memory", "memory.soft_limit_in_bytes", "33554432"),
                ("memory", "memory.memsw.limit_in_bytes", "134217728"),
                ("cpu", "cpu.shares", "512"),
                ("cpuset", "cpuset.cpus", "0-1"),
                ("devices", "devices.deny", "c 1:3 wm"),
            ],
        ),
    ],
)
def test_more_limit_files(version: int, expected: list[tuple[str, str, str]]) -> None:
    limits = CgroupLimits(
        memory=64 << 20,
        memory_swap=128 << 20,
        memory_reservation=32 << 20,
        cpu_shares=512,
        cpuset_cpus="0-1",
        device_denies=("c 1:3 wm",) if version == 1 else (),
    )
    assert cgroups._settings(limits, version) == expected


def test_unlimited_swap_and_weights() -> None:
    limits = CgroupLimits(memory=64 << 20, memory_swap=-1)
    assert ("memory", "memory.swap.max", "max") in cgroups._settings(limits, 2)
    assert ("memory", "memory.memsw.limit_in_bytes", "-1") in cgroups._settings(limits, 1)
    # runc's mapping of cpu.shares onto cpu.weight: the ends and the default.
    assert [cgroups.cpu_weight(n) for n in (2, 1024, 262144, 1)] == [1, 39, 10000, 1]


def test_device_permissions_need_v1() -> None:
    limits = CgroupLimits(device_denies=("c 1:3 w",))
    with pytest.raises(cgroups.CgroupError, match="eBPF"):
        cgroups._settings(limits, 2)


def test_missing_controller_is_named() -> None:
    hierarchies = cgroups.mounted_hierarchies(HYBRID)
    with pytest.raises(cgroups.CgroupError, match="no cgroup v1 hierarchy with the blkio"):
        cgroups._hierarchy_for("blkio", hierarchies, "c1")


def test_subid_parsing() -> None:
    text = "alice:100000:65536\nbob:x:1\n1001:200000:1000\n"
    assert idmap.parse_subid(text, "alice", 1000) == idmap.IdRange(1, 100000, 65536)
    assert idmap.parse_subid(text, "carol", 1001) == idmap.IdRange(1, 200000, 1000)
    assert idmap.parse_subid(text, "bob", 1002) is None


def test_single_map() -> None:
    mapping = idmap.single(1000, 1000)
    assert mapping.maps_uid(0) and not mapping.maps_uid(1)
    assert not mapping.allows_setgroups
    assert mapping.uids[0].line() == "0 1000 1"


def test_channel_carries_fields_and_a_descriptor(tmp_path: Path) -> None:
    ours, theirs = channel.pair()
    with ours, theirs, open(tmp_path / "f", "w+") as f:
        f.write("shared")
        f.flush()
        channel.send(theirs, "console", {"n": 1}, fd=f.fileno())
        message = channel.receive(ours)
        assert message is not None and message.kind == "console"
        assert message.number("n") == 1 and message.fd is not None
        assert os.pread(message.fd, 6, 0) == b"shared"
        os.close(message.fd)
        theirs.close()
        assert channel.receive(ours) is None


def test_find_command(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    (tmp_path / "a" / "tool").write_text("")
    (tmp_path / "b" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "b" / "tool").chmod(0o755)
    search = f"{tmp_path / 'a'}:{tmp_path / 'b'}"
    assert init.find_command("tool", search) == str(tmp_path / "b" / "tool")
    (tmp_path / "b" / "tool").unlink()
    assert init.find_command("tool", search) == str(tmp_path / "a" / "tool")
    assert init.find_command("/abs/x", search) == "/abs/x"
    with pytest.raises(init.ExecFailure, match="not found in \\$PATH") as info:
        init.find_command("absent", search)
    assert info.value.errno == errno.ENOENT


def test_docker_status() -> None:
    assert reaper.exit_status(3 << 8) == 3
    assert reaper.exit_status(signal.SIGKILL) == 137


def test_exit_file(tmp_path: Path) -> None:
    path = tmp_path / "exit"
    assert monitor.read_exit_file(path) is None
    monitor.write_exit_file(path, 42)
    assert monitor.read_exit_file(path) == 42
    assert [p.name for p in tmp_path.iterdir()] == ["exit"]


def test_syscall_errors_name_the_call_and_path(tmp_path: Path) -> None:
    with pytest.raises(OSError) as info:
        linux.umount2(tmp_path / "absent")
    assert info.value.strerror.startswith("umount2: ")
    assert info.value.filename == str(tmp_path / "absent")
    with pytest.raises(OSError, match="unshare: Invalid argument"):
        linux.unshare(0x1)  # CSIGNAL bits are not namespace flags


def test_capget_and_prctl() -> None:
    caps = linux.capget()
    assert caps.effective & ~caps.permitted == 0
    assert linux.prctl(linux.PR_CAPBSET_READ, 0) in (0, 1)


@pytest.mark.parametrize(
    ("period", "quota", "version", "expected"),
    [
        (50000, 25000, 1, [("cpu.cfs_period_us", "50000"), ("cpu.cfs_quota_us", "25000")]),
        (None, 25000, 1, [("cpu.cfs_quota_us", "25000")]),
        (50000, None, 1, [("cpu.cfs_period_us", "50000")]),
        (None, -1, 1, [("cpu.cfs_quota_us", "-1")]),
        (50000, 25000, 2, [("cpu.max", "25000 50000")]),
        (None, 25000, 2, [("cpu.max", "25000 100000")]),
        (50000, None, 2, [("cpu.max", "max 50000")]),
        (None, -1, 2, [("cpu.max", "max 100000")]),
    ],
)
def test_cfs_period_and_quota_files(
    period: int | None, quota: int | None, version: int, expected: list[tuple[str, str]]
) -> None:
    limits = CgroupLimits(cpu_period=period, cpu_quota=quota, cpuset_mems="0")
    writes = cgroups._settings(limits, version)
    assert writes == [("cpu", *item) for item in expected] + [("cpuset", "cpuset.mems", "0")]
    assert {"cpu", "cpuset"} <= set(cgroups._needed(limits))


def test_cfs_is_exclusive_with_cpus() -> None:
    with pytest.raises(InvalidSpecError, match="cpus and a cfs period or quota"):
        CgroupLimits(cpus=1.0, cpu_quota=50000)
