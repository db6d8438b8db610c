"""The runtime's value objects: spec validation, capabilities, environment, state table."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from runtime import capabilities, spec, state
from runtime.errors import InvalidSpecError, InvalidTransitionError
from runtime.spec import BindMount, CgroupLimits, ContainerSpec, Rlimit, environment

ROOT = Path("/var/lib/pydock/rootfs")


def make(**fields: object) -> ContainerSpec:
    values: dict[str, object] = {"container_id": "c0ffee" * 4, "rootfs": ROOT, "args": ("sh",)}
    values.update(fields)
    return ContainerSpec(**values)  # type: ignore[arg-type]


def test_default_capabilities_are_dockers_14() -> None:
    assert len(capabilities.DEFAULT_CAPABILITIES) == 14
    assert capabilities.mask(capabilities.DEFAULT_CAPABILITIES) == 0xA80425FB


@pytest.mark.parametrize(
    ("add", "drop", "expected"),
    [
        ((), (), capabilities.DEFAULT_CAPABILITIES),
        (
            ("sys_admin",),
            ("CAP_CHOWN", "net_raw"),
            capabilities.DEFAULT_CAPABILITIES - {"CAP_CHOWN", "CAP_NET_RAW"} | {"CAP_SYS_ADMIN"},
        ),
        (("ALL",), ("mknod",), frozenset(capabilities.CAPABILITY_NUMBERS) - {"CAP_MKNOD"}),
        (("kill",), ("all",), frozenset({"CAP_KILL"})),
        ((), ("ALL",), frozenset()),
    ],
)
def test_cap_add_and_drop(
    add: tuple[str, ...], drop: tuple[str, ...], expected: frozenset[str]
) -> None:
    assert capabilities.resolve(add, drop) == expected


def test_unknown_capability_is_refused() -> None:
    with pytest.raises(InvalidSpecError, match="unknown capability 'CAP_FLY'"):
        capabilities.resolve(add=["CAP_FLY"])


def test_spec_normalises_capabilities() -> None:
    assert make(capabilities=frozenset({"chown"})).capabilities == {"CAP_CHOWN"}
    with pytest.raises(InvalidSpecError, match="resolve ALL"):
        make(capabilities=frozenset({"ALL"}))


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"args": ()}, "no command"),
        ({"rootfs": Path("relative")}, "not absolute"),
        ({"cwd": "work"}, "working directory"),
        ({"env": ("NOEQUALS",)}, "NAME=VALUE"),
        ({"container_id": ""}, "id is empty"),
    ],
)
def test_spec_validation(fields: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidSpecError, match=message):
        make(**fields)


def test_value_objects_validate() -> None:
    with pytest.raises(InvalidSpecError, match="not absolute"):
        BindMount(Path("/src"), "dst")
    with pytest.raises(InvalidSpecError, match="cannot be /"):
        BindMount(Path("/src"), "/")
    with pytest.raises(InvalidSpecError, match="unknown resource"):
        Rlimit("files", 1, 2)
    with pytest.raises(InvalidSpecError, match="exceeds hard"):
        Rlimit("nofile", 3, 2)
    with pytest.raises(InvalidSpecError, match="not positive"):
        CgroupLimits(memory=0)
    assert CgroupLimits().is_empty()


def test_docker_default_paths() -> None:
    assert "/proc/kcore" in spec.DEFAULT_MASKED_PATHS
    assert "/sys/firmware" in spec.DEFAULT_MASKED_PATHS
    assert spec.DEFAULT_READONLY_PATHS == (
        "/proc/bus",
        "/proc/fs",
        "/proc/irq",
        "/proc/sys",
        "/proc/sysrq-trigger",
    )


def test_environment_defaults() -> None:
    env = environment(make(hostname="box", env=("A=1",)), "/root")
    assert env == ["HOSTNAME=box", f"PATH={spec.DEFAULT_PATH}", "A=1", "HOME=/root"]


def test_environment_keeps_what_the_spec_sets() -> None:
    given = ("PATH=/bin", "HOME=/h", "HOSTNAME=x", "TERM=vt100")
    assert environment(make(env=given, tty=True), "/root") == list(given)
    assert "TERM=xterm" in environment(make(tty=True), "/")


def test_hostname_defaults_to_short_id() -> None:
    assert make().effective_hostname == "c0ffeec0ffee"


def test_state_table() -> None:
    s = state.transition(state.State.CREATED, state.Event.START)
    assert s is state.State.RUNNING
    assert state.transition(s, state.Event.EXIT) is state.State.STOPPED
    assert state.allows(state.State.STOPPED, state.Event.DELETE)
    assert not state.allows(state.State.RUNNING, state.Event.DELETE)
    with pytest.raises(InvalidTransitionError, match="cannot start container x in state stopped"):
        state.transition(state.State.STOPPED, state.Event.START, container_id="x")


def test_every_state_is_reachable_and_deleted_is_final() -> None:
    reached = {target for target in state.TRANSITIONS.values()} | {state.State.CREATED}
    assert reached == set(state.State)
    assert not any(source is state.State.DELETED for source, _ in state.TRANSITIONS)


def test_device_cgroup_rule_takes_the_missing_permissions() -> None:
    # /dev/null is character device 1:3 on every Linux.
    assert spec.Device(Path("/dev/null"), "/dev/n", "r").cgroup_deny() == "c 1:3 wm"
    assert spec.Device(Path("/dev/null"), "/dev/n", "rw").cgroup_deny() == "c 1:3 m"
    assert spec.Device(Path("/dev/null"), "/dev/n").cgroup_deny() is None
    with pytest.raises(InvalidSpecError, match="permissions 'rx'"):
        spec.Device(Path("/dev/null"), "/dev/n", "rx")
    with pytest.raises(InvalidSpecError, match="absolute"):
        spec.Device(Path("/dev/null"), "dev/n")


def test_rlimit_infinity_is_above_every_number() -> None:
    Rlimit("nofile", 1024, -1)  # soft 1024, hard unlimited
    with pytest.raises(InvalidSpecError, match="exceeds"):
        Rlimit("nofile", -1, 1024)


def test_host_namespaces_are_checked() -> None:
    assert make(host_namespaces=frozenset({"uts"})).effective_hostname == os.uname().nodename
    with pytest.raises(InvalidSpecError, match="can be the host's"):
        make(host_namespaces=frozenset({"net"}))
    with pytest.raises(InvalidSpecError, match="private UTS namespace"):
        make(host_namespaces=frozenset({"uts"}), domainname="example.org")


def test_swap_needs_a_memory_limit_below_it() -> None:
    CgroupLimits(memory=64 << 20, memory_swap=-1)
    with pytest.raises(InvalidSpecError, match="below the memory limit"):
        CgroupLimits(memory=64 << 20, memory_swap=32 << 20)
    with pytest.raises(InvalidSpecError, match="below the memory limit"):
        CgroupLimits(memory_swap=32 << 20)
    assert not CgroupLimits(cpuset_cpus="0").is_empty()
