"""The cgroup v2 path of runtime/cgroups.py on a host that mounts v1 (hybrid or legacy).

A child process enters a private mount namespace, detaches the v1 layout there and mounts
only the unified hierarchy (cgroup2) on /sys/fs/cgroup, then drives the real code: the layout
is read as v2, ``_enable_v2`` enables a controller in every ancestor below the mount, refuses
(EBUSY, with the reason) in a cgroup that holds a process, and ``create`` names the controller
v2 lacks. Only the controllers no v1 hierarchy holds are in v2 (here: hugetlb), so a container
with --memory/--cpus/--pids limits cannot run on v2 on this host; the module says so in its
skip when even hugetlb is taken. Every cgroup made is removed, and the root's
``cgroup.subtree_control`` is restored, even when the child fails.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

from .unprivileged import REPO

pytestmark = [
    pytest.mark.root,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 to mount cgroup2"),
    pytest.mark.timeout(120),
]

# Runs in the private mount namespace: only cgroup2 on /sys/fs/cgroup.
MOUNT = 'umount -l /sys/fs/cgroup 2>/dev/null; mount -t cgroup2 none /sys/fs/cgroup && exec "$@"'

CHECKS = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from runtime import cgroups
    from runtime.errors import CgroupError
    from runtime.spec import CgroupLimits

    root, name = Path("/sys/fs/cgroup"), sys.argv[1]
    out = {}
    layout = cgroups.mounted_hierarchies(Path("/proc/self/mountinfo").read_text())
    out["layout"] = [[str(h.mountpoint), h.version] for h in layout]
    out["available"] = (root / "cgroup.controllers").read_text().split()
    if "hugetlb" in out["available"]:
        top = root / name
        cgroups._enable_v2(root, top / "inner" / "ctr", ["hugetlb"], "ctr")
        out["enabled"] = [
            (p / "cgroup.subtree_control").read_text().split()
            for p in (root, top, top / "inner")
        ]
        out["made_container_dir"] = (top / "inner" / "ctr").exists()
        busy = top / "busy"
        busy.mkdir()
        child = subprocess.Popen(["sleep", "300"])
        try:
            (busy / "cgroup.procs").write_text(str(child.pid))
            cgroups._enable_v2(root, busy / "ctr", ["hugetlb"], "ctr")
            out["busy"] = None
        except CgroupError as exc:
            out["busy"] = str(exc)
        finally:
            child.kill()
            child.wait()
    missing = next(c for c in ("memory", "pids", "cpu") if c not in out["available"])
    limits = {"memory": CgroupLimits(memory=64 << 20), "pids": CgroupLimits(pids=10),
              "cpu": CgroupLimits(cpus=0.5)}[missing]
    try:
        cgroups.create("v2probe", limits)
        out["create"] = None
    except CgroupError as exc:
        out["create"] = [missing, str(exc)]
    print(json.dumps(out))
    """
)

CLEANUP = textwrap.dedent(
    """
    import os, sys, time
    from pathlib import Path
    root, name, restore = Path("/sys/fs/cgroup"), sys.argv[1], sys.argv[2] == "1"
    top = root / name
    if top.exists():
        for here, dirs, _ in sorted(os.walk(top), key=lambda w: -w[0].count("/")):
            for attempt in range(200):  # a killed member may take a moment to leave
                try:
                    os.rmdir(here)
                    break
                except OSError:
                    time.sleep(0.01)
    if restore and "hugetlb" in (root / "cgroup.subtree_control").read_text().split():
        (root / "cgroup.subtree_control").write_text("-hugetlb")
    print("clean" if not top.exists() else "left")
    """
)


def in_cgroup2_namespace(*argv: str) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` in a private mount namespace that mounts only cgroup2 on /sys/fs/cgroup."""
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", MOUNT, "sh", *argv],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip


def test_the_v2_path_in_a_namespace_with_only_cgroup2() -> None:
    name = f"pydock-test-v2-{os.getpid()}"
    looked = in_cgroup2_namespace(
        sys.executable, "-c", "print(open('/sys/fs/cgroup/cgroup.subtree_control').read())"
    )
    if looked.returncode != 0:
        pytest.skip(f"cannot mount cgroup2 in a mount namespace: {looked.stderr.strip()}")
    had_hugetlb = "hugetlb" in looked.stdout.split()
    try:
        done = in_cgroup2_namespace(sys.executable, "-c", CHECKS, name)
        assert done.returncode == 0, done.stderr
    finally:
        cleaned = in_cgroup2_namespace(
            sys.executable, "-c", CLEANUP, name, "0" if had_hugetlb else "1"
        )
        assert cleaned.stdout.strip() == "clean", cleaned.stderr
    out = json.loads(done.stdout)
    assert out["layout"] == [["/sys/fs/cgroup", 2]]  # nothing but the unified hierarchy
    missing, message = out["create"]
    assert message == (
        f"setting limits for container v2probe: the {missing} controller is not enabled in "
        "/sys/fs/cgroup/cgroup.controllers"
    )
    if "hugetlb" not in out["available"]:
        pytest.skip("no controller is free for v2 here: every one is bound to a v1 hierarchy")
    # Enabled in every ancestor of the container's cgroup below the mount, not in it.
    assert all("hugetlb" in enabled for enabled in out["enabled"]), out["enabled"]
    assert out["made_container_dir"] is False  # _enable_v2 makes ancestors; create makes it
    assert out["busy"] == (
        f"enabling hugetlb in /sys/fs/cgroup/{name}/busy for container ctr: it holds processes "
        "itself; use a delegated cgroup as the parent"
    )
