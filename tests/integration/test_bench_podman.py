"""pydock/bench/podman.py: the private podman store of the benchmark, with the real podman.

The store must hold the built-in busybox, run it, say what failed in one line, and leave no
mount and no run root behind; on a hybrid cgroup host the cgroup2 tree is hidden from the
benchmark only (simulated here in a mount namespace of its own).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from graphdriver.mountutil import detach, mounts_under
from pydock.bench.podman import IMAGE, PodmanError, PodmanStore

from .unprivileged import REPO

pytestmark = [
    pytest.mark.root,
    pytest.mark.slow,
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 (podman's rootful store)"),
    pytest.mark.skipif(shutil.which("podman") is None, reason="podman is not installed"),
    pytest.mark.timeout(300),
]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[PodmanStore]:
    """A store under the test's directory; whatever it mounted is detached at the end."""
    work = tmp_path / "work"
    podman = PodmanStore(work)
    try:
        yield podman
    finally:
        podman.close()
        for point in [*mounts_under(work), *mounts_under(podman.run_root)]:
            detach(Path(point))
        shutil.rmtree(podman.run_root, ignore_errors=True)


STORE = textwrap.dedent(
    """
    import json, subprocess, sys
    from pathlib import Path
    from graphdriver.mountutil import mounts_under
    from pydock.bench.podman import IMAGE, PodmanStore, hide_hybrid_cgroup2

    out = {"note": hide_hybrid_cgroup2()}  # as pydock bench does before podman runs
    store = PodmanStore(Path(sys.argv[1]))
    print(store.run_root, flush=True)  # for the test's clean-up, should this process die
    try:
        command = store.prepare()
        out["prefix_ok"] = command[: len(store.prefix)] == store.prefix
        out["timed"] = command[len(store.prefix) :]
        out["store_root"] = store.prefix[store.prefix.index("--root") + 1]
        done = subprocess.run(store.run_argv("sh", "-c", "echo hi; ls /sys/class/net"),
                              capture_output=True, timeout=120)
        out["run"] = [done.returncode, done.stdout.decode(), done.stderr.decode()[-500:]]
    finally:
        store.close()
    out["mounts_left"] = mounts_under(store.work) + mounts_under(store.run_root)
    out["run_root_left"] = store.run_root.exists()
    print(json.dumps(out))
    """
)


def test_the_store_runs_busybox_and_close_leaves_nothing(tmp_path: Path) -> None:
    """In a mount namespace of its own, as the benchmark runs (hide_hybrid_cgroup2 moves the
    calling process into one), so this test's process keeps the host's view."""
    work = tmp_path / "work"
    process = subprocess.Popen(
        ["unshare", "--mount", "--propagation", "private",
         sys.executable, "-c", STORE, str(work)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    try:
        out, err = process.communicate(timeout=240)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    lines = out.splitlines()
    if lines:
        shutil.rmtree(lines[0], ignore_errors=True)
    assert process.returncode == 0, err[-3000:]
    result = json.loads(lines[-1])
    unified = Path("/sys/fs/cgroup/unified/cgroup.controllers")
    if unified.exists() and unified.read_text().split():
        assert result["note"].startswith("/sys/fs/cgroup/unified (hybrid cgroup2")
    else:
        assert result["note"] == ""
    assert result["prefix_ok"] and result["timed"][-2:] == [IMAGE, "/bin/true"]
    assert result["store_root"] == str(work / "podman-root")  # never the host's store
    # --network none: the container has only lo.
    assert result["run"][:2] == [0, "hi\nlo\n"], result["run"]
    assert result["mounts_left"] == [] and result["run_root_left"] is False
    assert not Path(lines[0]).exists()


def test_a_podman_failure_is_one_line(store: PodmanStore) -> None:
    store.work.mkdir(parents=True)
    with pytest.raises(PodmanError) as caught:
        store._run("image", "inspect", "localhost/pydock-no-such-image:1")
    message = str(caught.value)
    assert message.startswith("podman image failed: ") and "\n" not in message
    assert "pydock-no-such-image" in message


HYBRID = textwrap.dedent(
    """
    import json
    from pathlib import Path
    from pydock.bench.podman import hide_hybrid_cgroup2
    unified = Path("/sys/fs/cgroup/unified")
    before = (unified / "cgroup.controllers").read_text().split()
    note = hide_hybrid_cgroup2()
    print(json.dumps([before, note, (unified / "cgroup.controllers").exists()]))
    """
)


def test_hide_hybrid_cgroup2_hides_a_unified_tree_with_controllers() -> None:
    """A hybrid host's layout, made in a private mount namespace: cgroup2 with hugetlb at
    /sys/fs/cgroup/unified (over a tmpfs of the namespace's own)."""
    mount = (
        "mount -t tmpfs tmpfs /sys/fs/cgroup && mkdir /sys/fs/cgroup/unified"
        " && mount -t cgroup2 none /sys/fs/cgroup/unified"
        ' && if grep -qw hugetlb /sys/fs/cgroup/unified/cgroup.controllers; then exec "$@"; fi;'
        " echo no-free-controller"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", mount, "sh",
         sys.executable, "-c", HYBRID],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    if done.stdout.strip() == "no-free-controller":
        pytest.skip("every cgroup controller is bound to a v1 hierarchy here")
    before, note, still_there = json.loads(done.stdout)
    assert "hugetlb" in before
    assert note == (
        "/sys/fs/cgroup/unified (hybrid cgroup2 with controllers) hidden in the benchmark's"
        " mount namespace"
    )
    assert still_there is False


def test_hide_hybrid_cgroup2_does_nothing_without_a_unified_tree() -> None:
    check = (
        "from pydock.bench.podman import hide_hybrid_cgroup2; print(repr(hide_hybrid_cgroup2()))"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c",
         'mount -t tmpfs tmpfs /sys/fs/cgroup && exec "$@"', "sh", sys.executable, "-c", check],
        capture_output=True, text=True, timeout=60, cwd=REPO, check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert (done.returncode, done.stdout) == (0, "''\n"), done.stderr
