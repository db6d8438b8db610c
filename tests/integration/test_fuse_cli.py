"""The ``pydock-fuse-overlay`` process: readiness, signals, crashes and bad input."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

import pytest

from .fusemount import (
    COMMAND,
    REPO,
    Layers,
    is_mounted,
    missing_fuse,
    mounted,
    run_cli,
    server_pids,
    unmount,
)

_missing = missing_fuse()
pytestmark = [pytest.mark.fuse, pytest.mark.skipif(_missing is not None, reason=_missing or "")]


@pytest.fixture
def layers(tmp_path: Path) -> Layers:
    return Layers(tmp_path)


# -- the process --------------------------------------------------------------------------------


def test_sigkill_of_the_filesystem_is_detected_and_cleaned_up(layers: Layers) -> None:
    layers.write(layers.bottom, "f", b"x")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        pids = server_pids(mnt)
        assert len(pids) == 1
        os.kill(pids[0], signal.SIGKILL)
        deadline = time.monotonic() + 10
        while os.path.exists(f"/proc/{pids[0]}") and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(OSError) as caught:
            os.stat(mnt / "f")
        assert caught.value.errno == errno.ENOTCONN
        done = run_cli("-o", f"lowerdir={layers.bottom}", str(mnt))
        assert done.returncode == 1
        assert "busy" in done.stderr
    assert not is_mounted(layers.mnt)


def test_sigterm_unmounts(layers: Layers) -> None:
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt) as mnt:
        (pid,) = server_pids(mnt)
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        while is_mounted(mnt) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not is_mounted(mnt)


def test_foreground_mode_serves_until_unmounted(layers: Layers) -> None:
    layers.write(layers.bottom, "f", b"fg")
    process = subprocess.Popen(
        [*COMMAND, "-f", "-o", f"lowerdir={layers.bottom}", str(layers.mnt)],
        cwd=REPO,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while not is_mounted(layers.mnt) and time.monotonic() < deadline:
            assert process.poll() is None
            time.sleep(0.05)
        assert (layers.mnt / "f").read_bytes() == b"fg"
        unmount(layers.mnt)
        assert process.wait(timeout=10) == 0
    finally:
        unmount(layers.mnt)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("lowerdir=/nonexistent/layer", "lower dir /nonexistent/layer does not exist"),
        ("lowerdir={low},squash_to_root", "option squash_to_root is not supported"),
        ("lowerdir={low},upperdir={up}", "upperdir and workdir must be given together"),
    ],
)
def test_bad_input_gives_one_line_and_no_mount(layers: Layers, options: str, message: str) -> None:
    text = options.format(low=layers.bottom, up=layers.upper)
    try:
        done = run_cli("-o", text, str(layers.mnt))
        assert done.returncode == 1
        assert done.stderr.strip() == f"pydock-fuse-overlay: {message}"
        assert not is_mounted(layers.mnt)
    finally:
        unmount(layers.mnt)


def test_busy_mountpoint_is_refused(layers: Layers) -> None:
    with mounted(layers.lowers, None, None, layers.mnt) as mnt:
        done = run_cli("-o", f"lowerdir={layers.bottom}", str(mnt))
        assert done.returncode == 1
        expected = f"pydock-fuse-overlay: mountpoint {mnt} is busy: already a mount point"
        assert done.stderr.strip() == expected
        assert len(server_pids(mnt)) == 1


def test_accepted_fuse_overlayfs_options(layers: Layers) -> None:
    extra = ("allow_other", "default_permissions", "noatime", "fsync=0", "threaded=1", "noacl")
    with mounted(layers.lowers, layers.upper, layers.work, layers.mnt, *extra) as mnt:
        (mnt / "f").write_bytes(b"ok")
        fd = os.open(mnt / "f", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 to mount a ramfs")
@pytest.mark.parametrize("mode", [[], ["-f"], ["-d"]], ids=["daemon", "foreground", "debug"])
def test_upper_without_xattrs_is_refused(layers: Layers, tmp_path: Path, mode: list[str]) -> None:
    # Found only when the filesystem is built, after the cheap checks: in the foreground too
    # it is one line, not a traceback.
    ramfs = tmp_path / "ramfs"
    ramfs.mkdir()
    subprocess.run(["mount", "-t", "ramfs", "ramfs", str(ramfs)], check=True, timeout=30)
    try:
        (ramfs / "upper").mkdir()
        (ramfs / "work").mkdir()
        options = f"lowerdir={layers.bottom},upperdir={ramfs}/upper,workdir={ramfs}/work"
        done = run_cli(*mode, "-o", options, str(layers.mnt))
        assert done.returncode == 1
        expected = f"upper dir {ramfs}/upper is on a filesystem without extended attributes"
        assert done.stderr.strip() == f"pydock-fuse-overlay: {expected}"
        assert not is_mounted(layers.mnt)
    finally:
        unmount(layers.mnt)
        subprocess.run(["umount", "-l", str(ramfs)], timeout=30)


USERNS_SCRIPT = """
set -e
"$@" -o lowerdir={low},upperdir={up},workdir={work} {mnt}
cat {mnt}/d/f > {out}
rm -r {mnt}/d
mkdir {mnt}/d
echo new > {mnt}/d/g
fusermount3 -u {mnt} || umount {mnt}
"""


@pytest.mark.userns
def test_inside_a_user_namespace(layers: Layers, tmp_path: Path) -> None:
    probe = subprocess.run(["unshare", "--user", "--map-root-user", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unprivileged user namespaces are not available")
    layers.write(layers.bottom, "d/f", b"lower")
    out = tmp_path / "out"
    script = USERNS_SCRIPT.format(
        low=layers.bottom, up=layers.upper, work=layers.work, mnt=layers.mnt, out=out
    )
    done = subprocess.run(
        ["unshare", "--user", "--map-root-user", "--mount", "bash", "-c", script, "-", *COMMAND],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert out.read_bytes() == b"lower"
    # trusted.* is refused in a user namespace: the opaque marker uses the user namespace.
    assert os.getxattr(layers.upper / "d", "user.overlay.opaque") == b"y"
    assert (layers.upper / "d" / "g").read_bytes() == b"new\n"


def test_unknown_option_is_a_warning_and_the_mount_is_made(layers: Layers) -> None:
    layers.write(layers.bottom, "f", b"w")
    done = run_cli("-o", f"lowerdir={layers.bottom},bogus=1", str(layers.mnt))
    try:
        assert done.returncode == 0, done.stderr
        warning = "pydock-fuse-overlay: warning: unknown option 'bogus=1' ignored"
        assert done.stderr.strip() == warning
        assert (layers.mnt / "f").read_bytes() == b"w"
    finally:
        unmount(layers.mnt)


def test_a_source_argument_is_taken_and_a_third_path_refused(layers: Layers) -> None:
    done = run_cli("-o", f"lowerdir={layers.bottom}", "a", "b", str(layers.mnt))
    assert done.returncode == 2
    assert "unrecognized arguments: " in done.stderr
    assert not is_mounted(layers.mnt)


def test_version_names_the_installed_distribution() -> None:
    try:
        expected = metadata.version("pydock")
    except metadata.PackageNotFoundError:
        expected = "unknown"
    done = run_cli("--version")
    assert (done.returncode, done.stdout, done.stderr) == (
        0,
        f"pydock-fuse-overlay {expected}\n",
        "",
    )


# -- through mount(8): mount.fuse3 runs "PROGRAM SOURCE MOUNTPOINT -o OPTIONS" --------------------

_INSTALLED = Path(sys.executable).parent / "pydock-fuse-overlay"


def _in_private_namespace(script: str) -> subprocess.CompletedProcess[str]:
    """Run ``script`` under sh in a new mount namespace, with the tree's pydock-fuse-overlay."""
    env = {
        **os.environ,
        "PATH": f"{_INSTALLED.parent}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(REPO),
    }
    return subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-euc", script],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )


_mount_why = None
if os.geteuid() != 0:
    _mount_why = "needs uid 0 for mount(8) in a new mount namespace"
elif not _INSTALLED.exists():
    _mount_why = f"{_INSTALLED} not installed (run scripts/setup)"
elif shutil.which("mount.fuse3") is None:
    _mount_why = "mount.fuse3 not found (install fuse3)"


@pytest.mark.root
@pytest.mark.skipif(_mount_why is not None, reason=_mount_why or "")
@pytest.mark.parametrize("how", ["mount -t", "fstab"])
def test_mount_dash_t_and_fstab(layers: Layers, tmp_path: Path, how: str) -> None:
    layers.write(layers.bottom, "f", b"from the lower layer")
    options = (
        f"rw,lowerdir={layers.bottom},upperdir={layers.upper},workdir={layers.work},"
        "dev,suid,_netdev,noatime"
    )
    if how == "fstab":
        fstab = tmp_path / "fstab"
        fstab.write_text(f"overlay {layers.mnt} fuse.pydock-fuse-overlay {options} 0 0\n")
        mount = f"mount --bind {fstab} /etc/fstab; mount {layers.mnt}"
    else:
        mount = f"mount -t fuse.pydock-fuse-overlay overlay {layers.mnt} -o {options}"
    script = f"""
        {mount}
        trap 'umount {layers.mnt}' EXIT
        grep -q ' {layers.mnt} .* - fuse.pydock-fuse-overlay ' /proc/self/mountinfo
        cat {layers.mnt}/f
        echo written > {layers.mnt}/new
    """
    done = _in_private_namespace(script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "from the lower layer"
    assert (layers.upper / "new").read_text() == "written\n"
    assert not is_mounted(layers.mnt)
