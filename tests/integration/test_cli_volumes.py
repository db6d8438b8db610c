"""Named and anonymous volumes, ``--mount`` and ``--tmpfs`` through the real CLI on every driver:
made on first use, filled from the image on first use only, kept across containers, listed,
inspected, refused while in use, removed with ``rm -v`` and pruned."""

from __future__ import annotations

import json
from pathlib import Path

from .containers_support import ROOT_CONTAINER_TESTS, Workspace, fails

pytestmark = ROOT_CONTAINER_TESTS


def test_named_volume_lifecycle(ws: Workspace) -> None:
    pydock = ws.pydock
    assert pydock.ok("volume", "create", "-l", "team=a", "data") == "data\n"
    assert pydock.ok("volume", "create", "data") == "data\n"  # exists: as it is, as Docker
    try:
        pydock.ok("run", "--rm", "-v", "data:/data", "busybox", "sh", "-c", "echo 1 > /data/f")
        # A second container sees what the first wrote; read-only mounts refuse writes.
        script = "cat /data/f; touch /data/g 2>/dev/null && echo rw || echo ro"
        out = pydock.ok("run", "--rm", "-v", "data:/data:ro", "busybox", "sh", "-c", script)
        assert out == "1\nro\n"
        mount = "type=volume,source=data,target=/m"
        assert pydock.ok("run", "--rm", "--mount", mount, "busybox", "cat", "/m/f") == "1\n"

        listed = pydock.ok("volume", "ls").splitlines()
        assert listed[0].split() == ["DRIVER", "VOLUME", "NAME"]
        assert ["local", "data"] in [line.split() for line in listed[1:]]
        assert pydock.ok("volume", "ls", "-q", "-f", "label=team=a") == "data\n"
        assert pydock.ok("volume", "ls", "--format", '{{.Name}} {{.Label "team"}}') == ("data a\n")
        document = json.loads(pydock.ok("volume", "inspect", "data"))[0]
        assert document["Name"] == "data" and document["Driver"] == "local"
        assert document["Labels"] == {"team": "a"}
        data_dir = Path(document["Mountpoint"])
        assert data_dir == ws.root / "volumes" / "data" / "_data"
        assert (data_dir / "f").read_text() == "1\n"
        assert pydock.ok("volume", "inspect", "-f", "{{.Mountpoint}}", "data") == f"{data_dir}\n"

        pydock.ok("create", "--name", "user", "-v", "data:/data", "busybox", "true")
        fails(pydock.run("volume", "rm", "data"), "removing volume data", "in use")
        assert pydock.ok("ps", "-a", "-f", "volume=data", "--format", "{{.Names}}") == "user\n"
        assert pydock.ok("ps", "-a", "-f", "volume=/data", "--format", "{{.LocalVolumes}}") == (
            "1\n"
        )
        assert pydock.ok("volume", "ls", "-q", "-f", "dangling=false") == "data\n"
        inspected = json.loads(pydock.ok("inspect", "user"))[0]
        assert inspected["Mounts"][0]["Type"] == "volume"
        assert inspected["Mounts"][0]["Name"] == "data"
        assert inspected["Mounts"][0]["Source"] == str(data_dir)
        assert inspected["HostConfig"]["Binds"] == ["data:/data"]
        pydock.ok("rm", "user")
        assert pydock.ok("volume", "rm", "data") == "data\n"
        assert not data_dir.parent.exists()
    finally:
        pydock.run("rm", "-f", "user")
        pydock.run("volume", "rm", "-f", "data")
    fails(pydock.run("volume", "inspect", "data"), "no such volume")
    fails(pydock.run("volume", "rm", "data"), "no such volume")
    fails(pydock.run("volume", "create", "bad/name"), "volume name")
    fails(pydock.run("run", "--rm", "-v", "x:/d", "busybox", "true"), "volume name")


def test_a_new_volume_is_filled_from_the_image_once(ws: Workspace) -> None:
    pydock = ws.pydock
    try:
        # /etc of busybox holds passwd and group: a new volume there starts with them.
        out = pydock.ok("run", "--rm", "-v", "etcvol:/etc", "busybox", "sh", "-c",
                        "ls /etc; rm /etc/group; echo mine > /etc/new")  # fmt: skip
        assert out.split() == ["group", "passwd"]
        # Not copied again on the next use: the deletion and the new file stay.
        out = pydock.ok("run", "--rm", "-v", "etcvol:/etc", "busybox", "ls", "/etc")
        assert out.split() == ["new", "passwd"]
        # A volume created empty beforehand is filled too on its first mount, as Docker does.
        pydock.ok("volume", "create", "early")
        assert pydock.ok("run", "--rm", "-v", "early:/etc", "busybox", "ls", "/etc").split() == [
            "group",
            "passwd",
        ]
    finally:
        pydock.run("volume", "rm", "-f", "etcvol", "early")


def test_anonymous_volumes_tmpfs_and_pruning(ws: Workspace, tmp_path: Path) -> None:
    pydock = ws.pydock
    before = set(pydock.ok("volume", "ls", "-q").split())
    script = (
        "echo a > /anon/f; grep -E ' /(tt|t2) ' /proc/mounts | cut -d' ' -f2-4 | sort;"
        " echo x > /tt/file && cat /tt/file"
    )
    out = pydock.ok(
        "run", "--name", "anon", "-v", "/anon", "--tmpfs", "/tt:size=1m",
        "--mount", "type=tmpfs,target=/t2,tmpfs-size=2m,readonly",
        "busybox", "sh", "-c", script,
    )  # fmt: skip
    lines = out.splitlines()
    assert lines[0].startswith("/t2 tmpfs ro,nosuid,nodev") and "size=2048k" in lines[0]
    assert lines[1].startswith("/tt tmpfs rw,nosuid,nodev") and "size=1024k" in lines[1]
    assert lines[2] == "x"
    anonymous = set(pydock.ok("volume", "ls", "-q").split()) - before
    assert len(anonymous) == 1 and len(next(iter(anonymous))) == 64
    mounts = {m["Destination"]: m for m in json.loads(pydock.ok("inspect", "anon"))[0]["Mounts"]}
    assert mounts["/anon"]["Type"] == "volume" and mounts["/tt"]["Type"] == "tmpfs"
    assert json.loads(pydock.ok("inspect", "anon"))[0]["HostConfig"]["Tmpfs"] == {
        "/t2": f"ro,size={2 << 20}",
        "/tt": "size=1m",
    }
    pydock.ok("rm", "-v", "anon")  # takes its anonymous volume along
    assert set(pydock.ok("volume", "ls", "-q").split()) == before

    # run --rm always removes anonymous volumes; named ones stay.
    pydock.ok("run", "--rm", "-v", "/a", "-v", "kept:/k", "busybox", "true")
    assert set(pydock.ok("volume", "ls", "-q").split()) == before | {"kept"}

    pydock.ok("create", "--name", "holder", "-v", "/held", "busybox", "true")
    pydock.ok("rm", "holder")  # without -v the anonymous volume stays, unused
    left = set(pydock.ok("volume", "ls", "-q").split()) - before - {"kept"}
    assert len(left) == 1
    fails(pydock.run("volume", "prune"), "pruning volumes", "use -f")
    out = pydock.ok("volume", "prune", "-f")
    assert out.startswith(f"Deleted Volumes:\n{left.pop()}\n")  # anonymous only, as Docker 23+
    assert "kept" in pydock.ok("volume", "ls", "-q").split()
    assert "kept\n" in pydock.ok("volume", "prune", "-a", "-f")
    assert set(pydock.ok("volume", "ls", "-q").split()) == before

    fails(pydock.run("run", "--rm", "--tmpfs", "/t:bogus", "busybox", "true"), "unknown option")
    fails(pydock.run("run", "--rm", "--mount", "type=bind,source=/nonexistent,target=/x",
                     "busybox", "true"), "does not exist")  # fmt: skip
    fails(pydock.run("run", "--rm", "-v", "/x", "--tmpfs", "/x", "busybox", "true"), "duplicate")
    bind = f"type=bind,source={tmp_path},target=/b,readonly"
    (tmp_path / "f").write_text("host\n")
    assert pydock.ok("run", "--rm", "--mount", bind, "busybox", "cat", "/b/f") == "host\n"
