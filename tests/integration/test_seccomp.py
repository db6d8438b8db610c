"""Seccomp end to end, as root: the default filter, ``seccomp=unconfined``, a JSON profile,
capabilities that unlock syscalls, ``exec``, and ``--privileged``.

Busybox cannot make most of the syscalls in question, so a small static C program (compiled
here with ``gcc -static``, bound into the container read-only) makes each one and prints
``name=ok`` or ``name=ERRNO``.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
from pathlib import Path

import pytest

from runtime import capabilities

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Workspace,
    fails,
)

pytestmark = ROOT_CONTAINER_TESTS

PROBE_C = r"""
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void report(const char *name, long result) {
    printf("%s=%s\n", name, result < 0 ? strerrorname_np(errno) : "ok");
}

int main(void) {
    /* Arguments chosen so that, without a filter, the kernel answers something other than
       EPERM for a container's root with Docker's default capabilities. */
    report("unshare", syscall(SYS_unshare, 0));
    report("keyctl", syscall(SYS_keyctl, 9999, 0, 0, 0, 0));
    report("add_key", syscall(SYS_add_key, "user", NULL, NULL, 0, 0));
    report("request_key", syscall(SYS_request_key, "user", "pydock-test", NULL, 0));
    report("bpf", syscall(SYS_bpf, 9999, NULL, 0));
    report("userfaultfd", syscall(SYS_userfaultfd, 1));
    report("clone3", syscall(SYS_clone3, NULL, 0));
    report("personality_query", syscall(SYS_personality, 0xffffffffUL));
    report("socket_vsock", syscall(SYS_socket, 40, 1, 0));
    report("socket_alg", syscall(SYS_socket, 38, 5, 0));
    report("socket_unix", syscall(SYS_socket, 1, 1, 0));
    report("kcmp", syscall(SYS_kcmp, getpid(), getpid(), 0, 0, 0));
    report("getpid", syscall(SYS_getpid));
    /* Last: it changes the persona of this process. */
    report("personality_bsd", syscall(SYS_personality, 6));
    return 0;
}
"""

REFUSED_BY_DEFAULT = (
    "unshare", "keyctl", "add_key", "request_key", "bpf", "userfaultfd", "personality_bsd",
    "socket_vsock", "socket_alg", "kcmp",
)  # fmt: skip


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory holding the static ``probe`` program."""
    gcc = shutil.which("gcc")
    if gcc is None:
        pytest.skip("gcc is not installed (needed to build the static syscall probe)")
    directory = tmp_path_factory.mktemp("probe")
    (directory / "probe.c").write_text(PROBE_C)
    done = subprocess.run(
        [gcc, "-static", "-O", "-o", str(directory / "probe"), str(directory / "probe.c")],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"gcc -static cannot build the probe (static libc missing?): {done.stderr}")
    directory.chmod(0o755)
    return directory


def seen(out: str) -> dict[str, str]:
    """``key=value`` lines (or ``Key:\\tvalue`` lines of /proc/PID/status) as a dict."""
    pairs = (line.replace(":\t", "=", 1) for line in out.splitlines())
    return dict(pair.split("=", 1) for pair in pairs if "=" in pair)


def run_probe(one: Workspace, probe: Path, *flags: str) -> dict[str, str]:
    out = one.pydock.ok(
        "run", "--rm", *flags, "-v", f"{probe}:/probe:ro", "busybox", "/probe/probe"
    )
    return seen(out)


def test_default_filter_is_loaded(one: Workspace) -> None:
    # As root, as another user (loaded before the capabilities go) and with no-new-privileges
    # (loaded after no_new_privs is set).
    for flags in ((), ("-u", "daemon"), ("--security-opt", "no-new-privileges", "-u", "daemon")):
        out = one.pydock.ok(
            "run", "--rm", *flags, "busybox", "grep", "Seccomp", "/proc/self/status"
        )
        assert seen(out)["Seccomp"] == "2", (flags, out)
    out = one.pydock.ok(
        "run", "--rm", "--security-opt", "seccomp=unconfined",
        "busybox", "grep", "Seccomp", "/proc/self/status",
    )  # fmt: skip
    assert seen(out)["Seccomp"] == "0"


def test_busybox_unshare_refused_by_default(one: Workspace) -> None:
    done = one.pydock.run("run", "--rm", "busybox", "unshare", "-Urm", "true")
    assert done.status == 1 and "Operation not permitted" in done.err, done
    one.pydock.ok(
        "run", "--rm", "--security-opt", "seccomp=unconfined", "busybox", "unshare", "-Urm", "true"
    )


def test_default_profile_refuses_and_unconfined_allows(one: Workspace, probe: Path) -> None:
    confined = run_probe(one, probe)
    for name in REFUSED_BY_DEFAULT:
        assert confined[name] == "EPERM", (name, confined)
    # clone3 answers ENOSYS so the C library falls back to clone.
    assert confined["clone3"] == "ENOSYS"
    for name in ("getpid", "socket_unix", "personality_query"):
        assert confined[name] == "ok", (name, confined)
    free = run_probe(one, probe, "--security-opt", "seccomp=unconfined")
    for name in REFUSED_BY_DEFAULT:
        assert free[name] != "EPERM", (name, free)
    assert free["clone3"] != "ENOSYS"


def test_capabilities_unlock_their_syscalls(one: Workspace, probe: Path) -> None:
    admin = run_probe(one, probe, "--cap-add", "SYS_ADMIN")
    assert admin["unshare"] == "ok"
    assert admin["clone3"] == "EINVAL"  # the kernel's own answer to a NULL argument
    # CAP_SYS_ADMIN does not unlock what Docker keeps refused.
    for name in ("keyctl", "userfaultfd", "socket_vsock"):
        assert admin[name] == "EPERM", (name, admin)
    ptrace = run_probe(one, probe, "--cap-add", "SYS_PTRACE")
    assert ptrace["kcmp"] == "ok" and ptrace["unshare"] == "EPERM"


def test_exec_is_confined_as_the_container(one: Workspace) -> None:
    for flags, expected in (((), "2"), (("--security-opt", "seccomp=unconfined"), "0")):
        cid = one.pydock.ok("run", "-d", *flags, "busybox", "sleep", "60").strip()
        try:
            out = one.pydock.ok("exec", cid, "grep", "Seccomp", "/proc/self/status")
            assert seen(out)["Seccomp"] == expected, (flags, out)
        finally:
            one.pydock.run("rm", "-f", cid)


def test_custom_json_profile(one: Workspace, tmp_path: Path) -> None:
    profile = {
        "defaultAction": "SCMP_ACT_ALLOW",
        "syscalls": [
            {"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 13},
            # Only for containers without CAP_CHOWN: this one has it, so the rule is left out.
            {"names": ["fchownat", "chown"], "action": "SCMP_ACT_ERRNO",
             "excludes": {"caps": ["CAP_CHOWN"]}},
        ],
    }  # fmt: skip
    path = tmp_path / "profile.json"
    path.write_text(json.dumps(profile, indent=2))
    script = "mkdir /made 2>&1; echo mkdir=$?; touch /f; chown 1 /f && echo chown=ok"
    done = one.pydock.run(
        "run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "sh", "-c", script
    )
    assert done.status == 0, done
    assert "Permission denied" in done.out and "mkdir=1" in done.out, done
    assert "chown=ok" in done.out, done
    cid = one.pydock.ok("create", "--security-opt", f"seccomp={path}", "busybox", "true").strip()
    try:
        host_config = json.loads(one.pydock.ok("inspect", cid))[0]["HostConfig"]
        (option,) = host_config["SecurityOpt"]
        assert option.startswith("seccomp=") and json.loads(option[8:]) == profile
        assert host_config["Privileged"] is False
    finally:
        one.pydock.run("rm", "-f", cid)


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        ('{"defaultAction": "SCMP_ACT_NOTIFY"}', "SCMP_ACT_NOTIFY"),
        ('{"defaultAction": "SCMP_ACT_ERRNO", "listenerPath": "/run/agent.sock"}', "listenerPath"),
        ('{"syscalls": []}', "defaultAction is missing"),
        ("not json", "not JSON"),
    ],
)
def test_unsupported_profile_is_one_line_error(
    one: Workspace, tmp_path: Path, document: str, needle: str
) -> None:
    path = tmp_path / "bad.json"
    path.write_text(document)
    done = one.pydock.run("run", "--rm", "--security-opt", f"seccomp={path}", "busybox", "true")
    fails(done, "reading seccomp profile", needle)


def _host_device() -> str | None:
    """A character device of the host's /dev that a default container does not have."""
    for name in ("kmsg", "mem", "loop-control", "vcs", "tty0", "ttyS0"):
        path = Path("/dev") / name
        if path.exists() and stat.S_ISCHR(os.stat(path).st_mode):
            return name
    return None


def test_privileged(one: Workspace) -> None:
    device = _host_device()
    script = (
        "grep -E '^(Seccomp|CapEff):' /proc/self/status;"
        "grep -c ' /proc/kcore ' /proc/self/mountinfo;"
        "grep ' /sys ' /proc/self/mountinfo | cut -d' ' -f6;"
        f"ls /dev/{device or 'null'} >/dev/null 2>&1 && echo device=yes || echo device=no"
    )
    out = one.pydock.run("run", "--rm", "--privileged", "busybox", "sh", "-c", script).out
    facts = seen(out)
    assert facts["Seccomp"] == "0", out
    assert int(facts["CapEff"], 16) == capabilities.mask(capabilities.bounding()), out
    assert "\n0\n" in out  # /proc/kcore is not masked
    assert "rw," in out  # /sys is writable
    assert facts["device"] == "yes", out
    default = one.pydock.ok("run", "--rm", "busybox", "sh", "-c", script)
    assert seen(default)["Seccomp"] == "2"
    assert "ro," in default
    if device is not None:
        assert seen(default)["device"] == "no"
    cid = one.pydock.ok("create", "--privileged", "busybox", "true").strip()
    try:
        host_config = json.loads(one.pydock.ok("inspect", cid))[0]["HostConfig"]
        assert host_config["Privileged"] is True
    finally:
        one.pydock.run("rm", "-f", cid)
