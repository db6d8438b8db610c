"""Seccomp profiles without privileges: the default profile's rules per capability, Docker's
JSON format, the ``--security-opt`` parsing, and one filter loaded into a forked child (which
needs only no_new_privs)."""

from __future__ import annotations

import ctypes
import errno
import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from pydock.containers.config import (
    ContainerConfig,
    ImageDefaults,
    RunOptions,
    build_config,
    capabilities_of,
    parse_security_options,
    seccomp_of,
)
from pydock.containers.errors import ContainerConfigError
from runtime import InvalidSpecError, SeccompError, capabilities, linux, seccomp
from runtime.seccomp_default import DEFAULT_PROFILE
from runtime.seccomp_profile import (
    Action,
    Condition,
    Operator,
    Rule,
    applicable,
    parse_docker_json,
)


def allowed(rules: list[Rule], name: str) -> list[Rule]:
    """The rules that mention ``name``."""
    return [rule for rule in rules if name in rule.names]


def holds(condition: Condition, value: int) -> bool:
    """Evaluate one argument condition, as the kernel's filter would."""
    match condition.op:
        case Operator.EQUAL:
            return value == condition.value
        case Operator.NOT_EQUAL:
            return value != condition.value
        case Operator.LESS_THAN:
            return value < condition.value
        case Operator.GREATER_THAN:
            return value > condition.value
        case Operator.MASKED_EQUAL:
            return value & condition.value == condition.value_two
    raise AssertionError(condition)


def permits(rules: list[Rule], name: str, value: int) -> bool:
    """True when an ALLOW rule for ``name`` matches first argument ``value``."""
    return any(
        rule.action is Action.ALLOW and all(holds(c, value) for c in rule.conditions)
        for rule in allowed(rules, name)
    )


def test_default_profile_refuses_what_docker_refuses() -> None:
    rules = applicable(
        DEFAULT_PROFILE, capabilities.DEFAULT_CAPABILITIES, arch="amd64", kernel=(6, 18)
    )
    assert DEFAULT_PROFILE.default is Action.ERRNO
    assert DEFAULT_PROFILE.default_errno == errno.EPERM
    for name in ("unshare", "setns", "mount", "umount2", "bpf", "keyctl", "add_key",
                 "request_key", "userfaultfd", "init_module", "reboot", "acct", "kcmp",
                 "iopl", "settimeofday", "vhangup", "mbind", "syslog", "open_by_handle_at",
                 "perf_event_open", "fsopen"):  # fmt: skip
        assert not allowed(rules, name), name
    for name in ("read", "write", "openat", "execve", "wait4", "capset", "setresuid", "prctl",
                 "chroot", "ptrace", "arch_prctl", "chown32"):  # fmt: skip
        assert allowed(rules, name), name
    # s390 rules and other architectures' syscalls are left out on amd64.
    assert not allowed(rules, "cacheflush")
    assert len(allowed(rules, "clone")) == 1


def test_argument_rules() -> None:
    rules = applicable(
        DEFAULT_PROFILE, capabilities.DEFAULT_CAPABILITIES, arch="amd64", kernel=(6, 18)
    )
    assert permits(rules, "socket", 1) and permits(rules, "socket", 39)
    assert permits(rules, "socket", 2) and permits(rules, "socket", 44)
    assert not permits(rules, "socket", 38) and not permits(rules, "socket", 40)
    for persona in (0, 8, 0x20000, 0x20008, 0xFFFFFFFF):
        assert permits(rules, "personality", persona)
    assert not permits(rules, "personality", 6)
    assert permits(rules, "clone", 0x11 | 0x100)  # SIGCHLD | CLONE_VM
    for flag in (linux.CLONE_NEWUSER, linux.CLONE_NEWNS, linux.CLONE_NEWNET, linux.CLONE_NEWPID):
        assert not permits(rules, "clone", flag | 0x11)
    (clone3,) = allowed(rules, "clone3")
    assert clone3.action is Action.ERRNO and clone3.errno == errno.ENOSYS


def test_capabilities_unlock_groups() -> None:
    def unlocked(cap: str) -> set[str]:
        base = applicable(
            DEFAULT_PROFILE, capabilities.DEFAULT_CAPABILITIES, arch="amd64", kernel=(6, 18)
        )
        more = applicable(
            DEFAULT_PROFILE, capabilities.DEFAULT_CAPABILITIES | {cap}, arch="amd64", kernel=(6, 18)
        )
        before = {n for r in base for n in r.names if r.action is Action.ALLOW and not r.conditions}
        return {
            n for r in more for n in r.names if r.action is Action.ALLOW and not r.conditions
        } - before

    admin = unlocked("CAP_SYS_ADMIN")
    assert {"mount", "umount2", "unshare", "setns", "bpf", "clone", "clone3", "fsopen"} <= admin
    assert not {"keyctl", "userfaultfd", "add_key", "request_key"} & admin
    assert unlocked("CAP_SYS_PTRACE") >= {"kcmp", "pidfd_getfd", "process_madvise"}
    assert unlocked("CAP_SYS_MODULE") == {"init_module", "finit_module", "delete_module"}
    assert unlocked("CAP_SYS_BOOT") == {"reboot"}
    assert unlocked("CAP_SYS_TIME") >= {"settimeofday", "clock_settime"}
    assert unlocked("CAP_SYS_NICE") >= {"mbind", "set_mempolicy"}
    assert unlocked("CAP_SYS_RAWIO") == {"iopl", "ioperm"}
    assert unlocked("CAP_SYSLOG") == {"syslog"}
    assert unlocked("CAP_SYS_PACCT") == {"acct"}
    assert unlocked("CAP_SYS_TTY_CONFIG") == {"vhangup"}
    with_admin = applicable(
        DEFAULT_PROFILE,
        capabilities.DEFAULT_CAPABILITIES | {"CAP_SYS_ADMIN"},
        arch="amd64",
        kernel=(6, 18),
    )
    assert all(r.action is Action.ALLOW for r in allowed(with_admin, "clone3"))


def test_docker_json_profile() -> None:
    text = json.dumps(
        {
            "defaultAction": "SCMP_ACT_ERRNO",
            "defaultErrnoRet": 38,
            "archMap": [
                {"architecture": "SCMP_ARCH_X86_64",
                 "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
                {"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]},
            ],
            "syscalls": [
                {"names": ["read", "write"], "action": "SCMP_ACT_ALLOW", "comment": "io"},
                {"name": "mount", "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["SYS_ADMIN"]}},
                {"names": ["clone"], "action": "SCMP_ACT_ALLOW",
                 "args": [{"index": 0, "value": 2080505856, "valueTwo": 0,
                           "op": "SCMP_CMP_MASKED_EQ"}],
                 "excludes": {"caps": ["CAP_SYS_ADMIN"], "arches": ["s390x"]}},
                {"names": ["ptrace"], "action": "SCMP_ACT_ALLOW",
                 "includes": {"minKernel": "4.8"}},
                {"names": ["mkdir"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            ],
        }
    )  # fmt: skip
    profile = parse_docker_json(text, "test.json")
    assert profile.default is Action.ERRNO and profile.default_errno == 38
    if os.uname().machine == "x86_64":
        assert profile.arches == ("x86", "x32")
    plain = {n for r in applicable(profile, [], arch="amd64", kernel=(6, 18)) for n in r.names}
    assert plain == {"read", "write", "clone", "ptrace", "mkdir"}
    admin = {
        n
        for r in applicable(profile, ["CAP_SYS_ADMIN"], arch="amd64", kernel=(6, 18))
        for n in r.names
    }
    assert admin == {"read", "write", "mount", "ptrace", "mkdir"}
    old = {n for r in applicable(profile, [], arch="amd64", kernel=(4, 4)) for n in r.names}
    assert "ptrace" not in old
    (mkdir,) = [r for r in profile.rules if r.names == ("mkdir",)]
    assert mkdir.errno == 13


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ("{", "not JSON"),
        ("[]", "must be a JSON object"),
        ('{"syscalls": []}', "defaultAction is missing"),
        ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "SCMP_ACT_NOTIFY"),
        ('{"defaultAction": "SCMP_ACT_NOPE"}', "unknown action"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/a"}', "listenerPath"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "flags": ["SECCOMP_FILTER_FLAG_LOG"]}', "flags"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "bogus": 1}', "unknown field 'bogus'"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"action": "SCMP_ACT_ALLOW"}]}',
         "list of names"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],'
         ' "action": "SCMP_ACT_ALLOW", "args": [{"index": 0, "value": 1, "op": "SCMP_CMP_XX"}]}]}',
         "unknown argument operator"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],'
         ' "action": "SCMP_ACT_ALLOW", "args": [{"index": 7, "value": 1, "op": "SCMP_CMP_EQ"}]}]}',
         "argument index 7"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "syscalls": [{"names": ["read"],'
         ' "action": "SCMP_ACT_ALLOW", "includes": {"caps": ["CAP_NOPE"]}}]}',
         "unknown capability"),
    ],
)  # fmt: skip
def test_docker_json_errors(document: str, needle: str) -> None:
    with pytest.raises(InvalidSpecError, match=r"reading seccomp profile x\.json") as caught:
        parse_docker_json(document, "x.json")
    assert needle in str(caught.value)
    assert "\n" not in str(caught.value)


def test_security_options(tmp_path: Path) -> None:
    assert parse_security_options(["seccomp=unconfined"]).seccomp == "unconfined"
    assert parse_security_options(["seccomp:unconfined"]).seccomp == "unconfined"
    path = tmp_path / "p.json"
    path.write_text('{\n  "defaultAction": "SCMP_ACT_ALLOW"\n}\n')
    chosen = parse_security_options([f"seccomp={path}", "no-new-privileges"])
    assert chosen.seccomp == '{"defaultAction":"SCMP_ACT_ALLOW"}'
    assert chosen.no_new_privileges
    with pytest.raises(ContainerConfigError, match="no such file or directory"):
        parse_security_options([f"seccomp={tmp_path / 'missing.json'}"])
    path.write_text('{"defaultAction": "SCMP_ACT_NOTIFY"}')
    with pytest.raises(ContainerConfigError, match="SCMP_ACT_NOTIFY"):
        parse_security_options([f"seccomp={path}"])
    with pytest.raises(ContainerConfigError, match="only no-new-privileges and seccomp"):
        parse_security_options(["apparmor=unconfined"])


def test_config_to_profile_and_capabilities() -> None:
    image = ImageDefaults(cmd=("sh",))
    default = build_config(RunOptions(image="busybox"), image, host_env={})
    assert seccomp_of(default) is DEFAULT_PROFILE
    unconfined = build_config(
        RunOptions(image="busybox", security_opt=("seccomp=unconfined",)), image, host_env={}
    )
    assert seccomp_of(unconfined) is None
    privileged = build_config(
        RunOptions(image="busybox", privileged=True, cap_drop=("ALL",)), image, host_env={}
    )
    assert seccomp_of(privileged) is None
    assert capabilities_of(privileged) == capabilities.bounding()
    again = ContainerConfig.from_json(privileged.to_json())
    assert again.privileged and again == privileged


def _verdicts_in_a_child(load: Callable[[], None]) -> dict[str, str]:
    """What a forked child sees of a few syscalls after ``load()`` under no_new_privs."""
    numbers = {"unshare": 272, "keyctl": 250, "userfaultfd": 323, "clone3": 435, "getppid": 110}
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.close(read_end)
            linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
            load()
            libc = ctypes.CDLL(None, use_errno=True)
            results = {}
            for name, number in numbers.items():
                result = libc.syscall(number, 0, 0, 0, 0, 0)
                results[name] = "ok" if result >= 0 else errno.errorcode[ctypes.get_errno()]
            os.write(write_end, json.dumps(results).encode())
        finally:
            os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        text = pipe.read()
    os.waitpid(pid, 0)
    verdicts: dict[str, str] = json.loads(text)
    return verdicts


DEFAULT_VERDICTS = {
    "unshare": "EPERM",
    "keyctl": "EPERM",
    "userfaultfd": "EPERM",
    "clone3": "ENOSYS",
    "getppid": "ok",
}


def _need_libseccomp_on_x86_64() -> None:
    try:
        seccomp.library()
    except SeccompError as exc:
        pytest.skip(f"libseccomp is not installed: {exc}")
    if os.uname().machine != "x86_64":
        pytest.skip("the syscall numbers in _verdicts_in_a_child are x86_64's")


def test_filter_loaded_in_a_child() -> None:
    """The default filter, loaded by libseccomp in a forked child, refuses and allows."""
    _need_libseccomp_on_x86_64()
    confinement = seccomp.build(DEFAULT_PROFILE, capabilities.DEFAULT_CAPABILITIES)
    try:
        assert _verdicts_in_a_child(confinement.load) == DEFAULT_VERDICTS
    finally:
        confinement.release()


def test_compiled_program_is_libseccomp_filter() -> None:
    """The compiled program is the filter libseccomp exports, made once, and confines alike."""
    _need_libseccomp_on_x86_64()
    caps = capabilities.DEFAULT_CAPABILITIES
    program = seccomp.compile_program(DEFAULT_PROFILE, caps)
    assert seccomp.compile_program(DEFAULT_PROFILE, frozenset(caps)) is program
    confinement = seccomp.build(DEFAULT_PROFILE, caps)
    try:
        assert program.code == confinement.export()
    finally:
        confinement.release()
    assert len(program.code) % 8 == 0
    assert _verdicts_in_a_child(program.load) == DEFAULT_VERDICTS
