"""``pydock cp`` on every driver: both ways, tar streams, stopped and running containers, and
symlinks in the container that point at the host's root."""

from __future__ import annotations

import hashlib
import io
import os
import random
import subprocess
import tarfile
from pathlib import Path

from .containers_support import (
    ROOT_CONTAINER_TESTS,
    Snapshot,
    Workspace,
    assert_no_leaks,
    fails,
    mounts_under,
)

pytestmark = ROOT_CONTAINER_TESTS


def _tree(base: Path, seed: int) -> bytes:
    """A small host tree under ``base/in``; returns the seeded content of its big file."""
    data = random.Random(seed).randbytes(70_000)
    (base / "in" / "sub").mkdir(parents=True)
    (base / "in" / "a.txt").write_text("hello\n")
    (base / "in" / "sub" / "big").write_bytes(data)
    os.symlink("a.txt", base / "in" / "link")
    return data


def test_copy_both_ways_on_a_stopped_container(ws: Workspace, tmp_path: Path) -> None:
    pydock = ws.pydock
    data = _tree(tmp_path, 14)
    script = "cat /data/a.txt /tmp/a.txt; md5sum /etc/sub/big; readlink /data/link; echo x > /made"
    before = Snapshot.take(ws.root)
    pydock.ok("create", "--name", "cp1", "busybox", "sh", "-c", script)
    try:
        pydock.ok("cp", str(tmp_path / "in" / "a.txt"), "cp1:/tmp/")  # into a directory
        pydock.ok("cp", str(tmp_path / "in"), "cp1:/data")  # a new directory
        pydock.ok("cp", f"{tmp_path / 'in'}/.", "cp1:/etc")  # the contents
        assert mounts_under(ws.root) == []  # a stopped container's root is mounted only to copy
        out = pydock.ok("start", "-a", "cp1")
        digest = hashlib.md5(data).hexdigest()
        assert out.splitlines() == ["hello", "hello", f"{digest}  /etc/sub/big", "a.txt"]

        pydock.ok("cp", "cp1:/made", str(tmp_path / "made"))
        assert (tmp_path / "made").read_text() == "x\n"
        pydock.ok("cp", "cp1:/data", str(tmp_path / "back"))
        assert (tmp_path / "back" / "sub" / "big").read_bytes() == data
        assert os.readlink(tmp_path / "back" / "link") == "a.txt"
        (tmp_path / "into").mkdir()
        pydock.ok("cp", "cp1:/data/sub", str(tmp_path / "into"))
        assert (tmp_path / "into" / "sub" / "big").read_bytes() == data

        stream = subprocess.run(
            pydock.command("cp", "cp1:/data", "-"), capture_output=True, timeout=60, check=True
        ).stdout
        with tarfile.open(fileobj=io.BytesIO(stream)) as tar:
            names = sorted(tar.getnames())
            assert names == ["data", "data/a.txt", "data/link", "data/sub", "data/sub/big"]
            member = tar.extractfile("data/sub/big")
            assert member is not None and member.read() == data

        upload = io.BytesIO()
        with tarfile.open(fileobj=upload, mode="w") as tar:
            info = tarfile.TarInfo("streamed/file")
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        pydock.ok("cp", "-", "cp1:/tmp", stdin=upload.getvalue())
        pydock.ok("cp", "cp1:/tmp/streamed/file", str(tmp_path / "streamed"))
        assert (tmp_path / "streamed").read_bytes() == b"abc"

        fails(pydock.run("cp", "cp1:/nope", str(tmp_path)), "no such file or directory")
        fails(pydock.run("cp", "cp1:/data", str(tmp_path / "made")), "directory to a file")
        fails(pydock.run("cp", str(tmp_path / "made"), "cp1:/no/dir/x"), "no such directory")
        fails(pydock.run("cp", "cp1:/made", "cp1:/other"), "between containers")
        fails(pydock.run("cp", str(tmp_path / "made"), str(tmp_path / "x")), "CONTAINER:PATH")
        fails(pydock.run("cp", "-", "cp1:/made"), "must be a directory")
    finally:
        pydock.run("rm", "-f", "cp1")
    assert_no_leaks(ws.root, before)


def test_symlinks_in_the_container_stay_in_the_container(ws: Workspace, tmp_path: Path) -> None:
    pydock = ws.pydock
    marker = f"pydock-cp-{random.Random(7).getrandbits(48):012x}"
    script = "ln -s / /esc; ln -s ../../../../.. /up; echo mine > /etc/motd"
    pydock.ok("run", "--name", "cp2", "busybox", "sh", "-c", script)
    host_tmp = Path("/tmp") / marker
    try:
        (tmp_path / "f").write_text("inside\n")
        pydock.ok("cp", str(tmp_path / "f"), f"cp2:/esc/tmp/{marker}")
        pydock.ok("cp", str(tmp_path / "f"), f"cp2:/up/tmp/{marker}.up")
        assert not host_tmp.exists() and not Path(f"{host_tmp}.up").exists()
        pydock.ok("cp", f"cp2:/tmp/{marker}.up", str(tmp_path / "seen"))
        assert (tmp_path / "seen").read_text() == "inside\n"

        pydock.ok("cp", "cp2:/esc/etc/motd", str(tmp_path / "motd"))
        assert (tmp_path / "motd").read_text() == "mine\n"  # the container's, not the host's
        pydock.ok("cp", "cp2:/up/etc/passwd", str(tmp_path / "passwd"))
        assert (tmp_path / "passwd").read_bytes() != Path("/etc/passwd").read_bytes()
        pydock.ok("cp", "cp2:/esc", str(tmp_path / "esc"))  # the link itself, not followed
        assert os.readlink(tmp_path / "esc") == "/"
    finally:
        pydock.run("rm", "-f", "cp2")
        host_tmp.unlink(missing_ok=True)
        Path(f"{host_tmp}.up").unlink(missing_ok=True)


def test_copy_into_a_running_container(ws: Workspace, tmp_path: Path) -> None:
    pydock = ws.pydock
    (tmp_path / "f").write_text("live\n")
    pydock.ok("run", "-d", "--name", "cp3", "busybox", "sleep", "60")
    try:
        pydock.ok("cp", str(tmp_path / "f"), "cp3:/tmp/f")
        assert pydock.ok("exec", "cp3", "cat", "/tmp/f") == "live\n"
        pydock.ok("exec", "cp3", "sh", "-c", "echo from-exec > /tmp/g")
        pydock.ok("cp", "cp3:/tmp/g", str(tmp_path / "g"))
        assert (tmp_path / "g").read_text() == "from-exec\n"
        assert pydock.ok("ps", "-f", "name=cp3", "--format", "{{.State}}") == "running\n"
    finally:
        pydock.run("rm", "-f", "cp3")
