"""The kernel-facing ``run`` flags as parsed: accepted forms and Docker's reasons for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydock.containers import hostopts
from pydock.containers.config import ContainerConfig, ImageDefaults, RunOptions, build_config
from pydock.containers.errors import ContainerConfigError


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("nofile=1024", "nofile=1024:1024"),
        ("nofile=1024:2048", "nofile=1024:2048"),
        ("core=-1", "core=-1:-1"),
        ("nproc=10:-1", "nproc=10:-1"),
    ],
)
def test_ulimit_forms(text: str, expected: str) -> None:
    assert hostopts.parse_ulimit(text) == expected


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("nofile", "invalid ulimit argument: nofile"),
        ("foo=1", "invalid ulimit type: foo"),
        ("nofile=abc", 'parsing "abc": invalid syntax'),
        ("nofile=1:2:3", "too many limit value arguments"),
        ("nofile=10:5", "ulimit soft limit must be less than or equal to hard limit: 10 > 5"),
        ("nofile=-1:5", "ulimit soft limit must be less than or equal to hard limit: -1 > 5"),
    ],
)
def test_bad_ulimits(text: str, why: str) -> None:
    with pytest.raises(ContainerConfigError, match=why):
        hostopts.parse_ulimit(text)


def test_a_later_ulimit_of_the_same_name_wins() -> None:
    found = hostopts.ulimits_of(["nofile=1", "nproc=5", "nofile=2:3"])
    assert found == ("nofile=2:3", "nproc=5:5")
    assert hostopts.ulimit_parts("nofile=2:-1") == ("nofile", 2, -1)


@pytest.mark.parametrize(
    ("text", "expected"), [("64m", 64 << 20), ("1g", 1 << 30), ("512", 512), ("2MiB", 2 << 20)]
)
def test_sizes(text: str, expected: int) -> None:
    assert hostopts.parse_shm_size(text) == expected


def test_bad_sizes() -> None:
    with pytest.raises(ContainerConfigError, match="invalid size: 'abc'"):
        hostopts.parse_shm_size("abc")
    with pytest.raises(ContainerConfigError, match="greater than 0"):
        hostopts.parse_shm_size("0")


def test_sysctls_namespaced_only() -> None:
    found = hostopts.parse_sysctls(
        ["net.ipv4.ip_forward=1", "kernel.shmmax=4096", "fs.mqueue.msg_max=20"],
        network="none",
        ipc_mode="",
    )
    assert found == ("net.ipv4.ip_forward=1", "kernel.shmmax=4096", "fs.mqueue.msg_max=20")
    with pytest.raises(ContainerConfigError, match=r"sysctl 'kernel\.hostname=x' is not allowed"):
        hostopts.parse_sysctls(["kernel.hostname=x"], network="none", ipc_mode="")
    with pytest.raises(ContainerConfigError, match="host's network namespace"):
        hostopts.parse_sysctls(["net.ipv4.ip_forward=1"], network="host", ipc_mode="")
    with pytest.raises(ContainerConfigError, match="host's ipc namespace"):
        hostopts.parse_sysctls(["kernel.sem=1 2 3 4"], network="none", ipc_mode="host")


def test_expose_ports_and_ranges() -> None:
    assert hostopts.parse_expose(["80", "53/udp", "8000-8002/tcp"]) == [
        "80/tcp",
        "53/udp",
        "8000/tcp",
        "8001/tcp",
        "8002/tcp",
    ]
    with pytest.raises(ContainerConfigError, match="invalid range format for --expose: abc"):
        hostopts.parse_expose(["abc"])
    with pytest.raises(ContainerConfigError, match="invalid proto: sctp"):
        hostopts.parse_expose(["80/sctp"])


def test_devices(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostopts.os, "geteuid", lambda: 0)
    assert hostopts.parse_device("/dev/null") == "/dev/null:/dev/null:rwm"
    assert hostopts.parse_device("/dev/null:r") == "/dev/null:/dev/null:r"
    assert hostopts.parse_device("/dev/null:/dev/n:rw") == "/dev/null:/dev/n:rw"
    assert hostopts.device_parts("/dev/null:/dev/n:rw") == ("/dev/null", "/dev/n", "rw")
    with pytest.raises(ContainerConfigError, match="bad mode specified: q"):
        hostopts.parse_device("/dev/null:/dev/n:q")
    with pytest.raises(ContainerConfigError, match="rel is not an absolute path"):
        hostopts.parse_device("/dev/null:rel")
    with pytest.raises(ContainerConfigError, match="not a device node"):
        hostopts.parse_device("/")
    with pytest.raises(ContainerConfigError, match="no such file or directory"):
        hostopts.parse_device("/nonexistent-device")


def test_devices_need_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hostopts.os, "geteuid", lambda: 1000)
    with pytest.raises(ContainerConfigError, match="needs root"):
        hostopts.parse_device("/dev/null")
    with pytest.raises(ContainerConfigError, match="needs root"):
        hostopts.parse_namespace_mode("pid", "host")


def test_cpusets() -> None:
    assert hostopts.parse_cpuset("0-1,3", available=[0, 1, 2, 3]) == "0-1,3"
    with pytest.raises(ContainerConfigError, match="Invalid value 1-x for cpuset cpus"):
        hostopts.parse_cpuset("1-x", available=[0, 1])
    with pytest.raises(ContainerConfigError, match="requested 5, available: 0-2,4"):
        hostopts.parse_cpuset("5", available=[0, 1, 2, 4])


def test_memory_swap_and_reservation() -> None:
    memory = 64 << 20
    assert hostopts.parse_memory_swap("128m", memory) == 128 << 20
    assert hostopts.parse_memory_swap("-1", memory) == -1
    assert hostopts.parse_memory_swap("0", memory) is None
    assert hostopts.parse_memory_swap("-1", None) == -1
    with pytest.raises(ContainerConfigError, match="always set the Memory limit"):
        hostopts.parse_memory_swap("128m", None)
    with pytest.raises(ContainerConfigError, match="larger than memory limit"):
        hostopts.parse_memory_swap("32m", memory)
    assert hostopts.parse_memory_reservation("32m", memory) == 32 << 20
    with pytest.raises(ContainerConfigError, match="allowed is 6MB"):
        hostopts.parse_memory_reservation("1m", memory)
    with pytest.raises(ContainerConfigError, match="less than memory reservation limit"):
        hostopts.parse_memory_reservation("128m", memory)


def test_namespace_modes() -> None:
    assert hostopts.parse_namespace_mode("ipc", None) == ""
    assert hostopts.parse_namespace_mode("ipc", "private") == ""
    with pytest.raises(ContainerConfigError, match="invalid PID mode"):
        hostopts.parse_namespace_mode("pid", "private")


def test_label_files_come_before_labels(tmp_path: Path) -> None:
    labels = tmp_path / "labels"
    labels.write_text("# comment\n\na=1\nb=from-file\nempty\n")
    options = RunOptions(
        image="busybox",
        command=("true",),
        label_files=(str(labels),),
        labels=("b=from-flag",),
        expose=("8080",),
    )
    config = build_config(options, ImageDefaults(exposed=("80/tcp",)), host_env={})
    assert config.label_map == {"a": "1", "b": "from-flag", "empty": ""}
    assert config.exposed == ("80/tcp", "8080/tcp")
    with pytest.raises(ContainerConfigError, match="no such file or directory"):
        hostopts.read_label_files([str(tmp_path / "missing")])


def test_new_fields_survive_the_store() -> None:
    config = ContainerConfig(
        image_name="busybox",
        ulimits=("nofile=1:2",),
        sysctls=("net.ipv4.ip_forward=1",),
        group_add=("audio",),
        devices=("/dev/null:/dev/n:r",),
        shm_size=1 << 20,
        pid_mode="host",
        memory_swap=-1,
    )
    assert ContainerConfig.from_json(config.to_json()) == config


def test_oom_score_adj_bounds() -> None:
    assert [hostopts.parse_oom_score_adj(v) for v in (None, 0, -1000, 1000)] == [
        None,
        None,
        -1000,
        1000,
    ]
    with pytest.raises(ContainerConfigError, match=r"range for oom score adj is \[-1000, 1000\]"):
        hostopts.parse_oom_score_adj(-1001)


def test_cfs_period_and_quota() -> None:
    assert hostopts.parse_cfs(50000, 25000, cpus=False) == (50000, 25000)
    assert hostopts.parse_cfs(0, 0, cpus=True) == (None, None)
    assert hostopts.parse_cfs(None, -5, cpus=False) == (None, -1)
    with pytest.raises(ContainerConfigError, match="Nano CPUs and CPU Period cannot both"):
        hostopts.parse_cfs(50000, None, cpus=True)
    with pytest.raises(ContainerConfigError, match="Nano CPUs and CPU Quota cannot both"):
        hostopts.parse_cfs(None, 50000, cpus=True)
    with pytest.raises(ContainerConfigError, match="cfs period can not be less than 1ms"):
        hostopts.parse_cfs(1_000_001, None, cpus=False)
    with pytest.raises(ContainerConfigError, match="cfs quota can not be less than 1ms"):
        hostopts.parse_cfs(None, 999, cpus=False)


def test_cpuset_mems_cgroupns_and_volumes_from() -> None:
    assert hostopts.parse_cpuset_mems("0-1", available=[0, 1]) == "0-1"
    with pytest.raises(ContainerConfigError, match="requested 2, available: 0-1"):
        hostopts.parse_cpuset_mems("2", available=[0, 1])
    assert [hostopts.parse_cgroupns(t) for t in (None, "host", "private")] == [
        "private",
        "host",
        "private",
    ]
    with pytest.raises(ContainerConfigError, match="invalid CGROUP mode"):
        hostopts.parse_cgroupns("container:x")
    assert hostopts.parse_volumes_from("db:ro") == ("db", "ro")
    assert hostopts.parse_volumes_from("db") == ("db", "")
    with pytest.raises(ContainerConfigError, match="invalid mode: z"):
        hostopts.parse_volumes_from("db:z")


def test_detach_keys() -> None:
    assert hostopts.parse_detach_keys(None) is None
    assert hostopts.parse_detach_keys("ctrl-p,ctrl-q") == b"\x10\x11"
    assert hostopts.parse_detach_keys("ctrl-@,ctrl-\\,x") == b"\x00\x1cx"
    for bad in ("ctrl-1", "ctrl-pq", "ab", "ctrl-p,"):
        with pytest.raises(ContainerConfigError, match=r"Invalid detach keys \(.*\) provided"):
            hostopts.parse_detach_keys(bad)
