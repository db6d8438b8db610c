"""Rootless containers: an unprivileged user made by the fixture runs them in a user namespace.

The pyenv Python lives under /root (mode 0700), which other users cannot reach, so the user runs
Debian's /usr/bin/python3 with a copy of ``runtime/`` in a world-readable directory.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import runtime

from .runtime_support import build_busybox_rootfs
from .unprivileged import ENV_PYTHON, remove_user

RUNUSER = shutil.which("runuser") or "runuser"

pytestmark = [
    pytest.mark.root,
    pytest.mark.userns,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 to create the unprivileged user"),
    pytest.mark.timeout(60),
]

# Run by the unprivileged user: every check in one process, results as JSON on stdout.
SCRIPT = textwrap.dedent(
    """
    import json, os, sys, tempfile
    from pathlib import Path
    import runtime
    from runtime import idmap

    rootfs = Path(sys.argv[1])
    results = {}

    def run(name, *args, mapping=None, **fields):
        spec = runtime.ContainerSpec(container_id=f"rootless-{name}", rootfs=rootfs,
                                     args=args, **fields)
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            try:
                c = runtime.run(spec, stdout=out.fileno(), stderr=err.fileno(),
                                id_mapping=mapping)
                status = c.wait(timeout=20)
                c.delete()
            except runtime.ExecError as exc:
                status = exc.exit_code
            out.seek(0)
            err.seek(0)
            results[name] = [status, out.read().decode(), err.read().decode()]

    run("ids", "sh", "-c", "id -u; id -g; echo $$; cat /proc/self/uid_map")
    run("status", "cat", "/proc/self/status")
    run("netdev", "cat", "/proc/net/dev")
    run("keys", "sh", "-c", "busybox wc -c < /proc/keys")
    run("procsys", "sh", "-c", "echo x > /proc/sys/kernel/hostname")
    run("missing", "no-such-command")
    run("hostnet", "ls", "/sys/class/net", network=runtime.NetworkMode.HOST)
    run("readonly", "sh", "-c", ": > /x", readonly_rootfs=True)
    run("devnull", "sh", "-c", "echo x > /dev/null && echo ok")
    run("single", "sh", "-c", "cat /proc/self/uid_map /proc/self/setgroups", mapping=idmap.single())
    try:
        run("unmapped", "true", user=runtime.User(1000, 1000), mapping=idmap.single())
    except runtime.InvalidSpecError as exc:
        results["unmapped"] = str(exc)
    if idmap.plan().use_helpers:
        run("subuid", "sh", "-c", "id -u; id -G", user=runtime.User(1000, 1000, (1001,)))
    try:
        run("cgroup", "true", cgroup=runtime.CgroupLimits(pids=8))
    except runtime.CgroupError as exc:
        results["cgroup"] = str(exc)
    print(json.dumps(results))
    """
)


def _python_usable_by_others() -> bool:
    probe = ["runuser", "-u", "nobody", "--", str(ENV_PYTHON), "-c", "pass"]
    return subprocess.run(probe, capture_output=True, cwd="/").returncode == 0


@pytest.fixture(scope="module")
def unprivileged_user() -> Iterator[str]:
    if shutil.which("useradd") is None or shutil.which("runuser") is None:
        pytest.skip("no useradd/runuser to create and switch to an unprivileged user")
    if not _python_usable_by_others():
        pytest.skip(f"other users cannot run {ENV_PYTHON} (run the suite in pydock's environment)")
    if Path("/proc/sys/user/max_user_namespaces").read_text().strip() == "0":
        pytest.skip("user namespaces are disabled (user.max_user_namespaces = 0)")
    name = f"pdrt{os.getpid() % 100000}"
    subprocess.run(["useradd", "--no-create-home", name], check=True, capture_output=True)
    try:
        yield name
    finally:
        remove_user(name)


@pytest.fixture(scope="module")
def results(unprivileged_user: str) -> Iterator[dict[str, Any]]:
    workdir = Path(tempfile.mkdtemp(prefix="pydock-rootless-"))
    try:
        workdir.chmod(0o755)
        shutil.copytree(Path(runtime.__file__).parent, workdir / "runtime")
        (workdir / "check.py").write_text(SCRIPT)
        rootfs = build_busybox_rootfs(workdir / "rootfs")
        for top, dirs, files in os.walk(rootfs):
            for name in (top, *(os.path.join(top, n) for n in dirs + files)):
                os.lchown(name, *_ids(unprivileged_user))
        done = subprocess.run(
            [RUNUSER, "-u", unprivileged_user, "--", str(ENV_PYTHON), "check.py", str(rootfs)],
            cwd=workdir,
            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(workdir), "HOME": str(workdir)},
            capture_output=True,
            text=True,
            timeout=50,
        )
        assert done.returncode == 0, done.stderr
        yield json.loads(done.stdout)
    finally:
        shutil.rmtree(workdir)


def _ids(user: str) -> tuple[int, int]:
    entry = pwd.getpwnam(user)
    return entry.pw_uid, entry.pw_gid


def _field(status: str, name: str) -> str:
    return next(
        line.split(":", 1)[1].strip() for line in status.splitlines() if line.startswith(name + ":")
    )


def test_root_inside_is_the_user_outside(results: dict[str, Any], unprivileged_user: str) -> None:
    status, out, err = results["ids"]
    assert status == 0, err
    uid_inside, gid_inside, pid, *uid_map = out.splitlines()
    assert (uid_inside, gid_inside, pid) == ("0", "0", "1")
    # Container root is the user; with newuidmap, /etc/subuid ranges follow from uid 1.
    assert uid_map[0].split() == ["0", str(_ids(unprivileged_user)[0]), "1"]
    assert all(line.split()[0] == "1" for line in uid_map[1:])


def test_capabilities_inside_the_user_namespace(results: dict[str, Any]) -> None:
    status, out, _ = results["status"]
    assert status == 0
    expected = runtime.capabilities.mask(runtime.DEFAULT_CAPABILITIES)
    assert int(_field(out, "CapEff"), 16) == expected
    assert int(_field(out, "CapBnd"), 16) == expected


def test_network_none_has_only_lo(results: dict[str, Any]) -> None:
    names = [line.split(":")[0].strip() for line in results["netdev"][1].splitlines()[2:]]
    assert names == ["lo"]


def test_host_network_binds_sys(results: dict[str, Any]) -> None:
    status, out, err = results["hostnet"]
    assert status == 0, err
    assert "lo" in out.split()


def test_masked_and_readonly_paths(results: dict[str, Any]) -> None:
    assert results["keys"][1].strip() == "0"
    assert results["procsys"][0] == 1
    assert "Read-only file system" in results["procsys"][2]


def test_readonly_rootfs_and_dev_null(results: dict[str, Any]) -> None:
    assert results["readonly"][0] == 1
    assert results["devnull"][:2] == [0, "ok\n"]


def test_missing_command_is_127(results: dict[str, Any]) -> None:
    assert results["missing"][0] == 127


def test_cgroup_limits_need_privilege(results: dict[str, Any]) -> None:
    outcome = results["cgroup"]
    if isinstance(outcome, list):
        # A delegated cgroup v2 tree: the limits were applied.
        assert outcome[0] == 0
    else:
        assert "cgroup" in outcome and "rootless-cgroup" in outcome


def test_single_id_map(results: dict[str, Any], unprivileged_user: str) -> None:
    status, out, err = results["single"]
    assert status == 0, err
    uid_map, setgroups = out.splitlines()
    assert uid_map.split() == ["0", str(_ids(unprivileged_user)[0]), "1"]
    assert setgroups == "deny"
    assert "user 1000:1000 is not mapped" in results["unmapped"]


def test_subordinate_ids_allow_other_users(results: dict[str, Any]) -> None:
    if "subuid" not in results:
        pytest.skip("no newuidmap/newgidmap with /etc/subuid ranges for the test user")
    status, out, err = results["subuid"]
    assert status == 0, err
    assert out.split() == ["1000", "1000", "1001"]
