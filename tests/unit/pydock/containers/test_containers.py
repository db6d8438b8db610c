"""Container pieces that need no privileges: option parsing, the config merge, the state table,
the container rows, names, and the ``ps``/``inspect`` views."""

from __future__ import annotations

import datetime as dt
import random
from pathlib import Path

import pytest

from pydock.containers import names, views
from pydock.containers.config import (
    MIN_MEMORY,
    ContainerConfig,
    ImageDefaults,
    RunOptions,
    Volume,
    build_config,
    check_name,
    merge_env,
    parse_cpus,
    parse_memory,
    parse_mount,
    parse_mounts,
    parse_security_opts,
    parse_tmpfs,
    parse_volume,
)
from pydock.containers.errors import ContainerConfigError, ContainerConflictError
from pydock.containers.state import TRANSITIONS, Action, ContainerState, allows, transition
from pydock.store import ContainerRecord, Store

NOW = dt.datetime(2024, 5, 1, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [("512m", 512 << 20), ("1g", 1 << 30), ("1.5GB", 3 << 29), ("7000000", 7_000_000)],
)
def test_memory_sizes(text: str, expected: int) -> None:
    assert parse_memory(text) == expected


@pytest.mark.parametrize("text", ["1k", "6m1", "lots", "-5m"])
def test_bad_memory_sizes(text: str) -> None:
    with pytest.raises(ContainerConfigError, match="--memory"):
        parse_memory(text)
    assert parse_memory("6m") == MIN_MEMORY


def test_cpus_range() -> None:
    assert parse_cpus("0.5", available=2) == 0.5
    for text in ("0", "3", "x"):
        with pytest.raises(ContainerConfigError, match="--cpus"):
            parse_cpus(text, available=2)


def test_volumes(tmp_path: Path) -> None:
    assert parse_volume(f"{tmp_path}:/data") == Volume(str(tmp_path), "/data", False)
    assert parse_volume(f"{tmp_path}:/data:ro").readonly
    assert parse_volume("data:/x") == Volume("", "/x", False, kind="volume", name="data")
    assert parse_volume("/anon/") == Volume("", "/anon", False, kind="volume")
    assert parse_volume("/anon:ro").readonly
    for text, needle in [
        ("./relative:/x", "volume name"),
        ("a:/x", "volume name"),
        (f"{tmp_path}:relative", "absolute path other than /"),
        (f"{tmp_path}:/", "absolute path other than /"),
        (f"{tmp_path}:/x:zz", "SRC:DST"),
        (f"{tmp_path}/absent:/x", "does not exist"),
    ]:
        with pytest.raises(ContainerConfigError, match=needle):
            parse_volume(text)


def test_mounts_and_tmpfs(tmp_path: Path) -> None:
    assert parse_mount(f"type=bind,src={tmp_path},dst=/b,readonly") == Volume(
        str(tmp_path), "/b", True
    )
    assert parse_mount("type=volume,source=v1,target=/v") == Volume(
        "", "/v", False, kind="volume", name="v1"
    )
    assert parse_mount("target=/anon").kind == "volume"
    tmpfs = parse_mount("type=tmpfs,target=/t,tmpfs-size=1m,tmpfs-mode=1770")
    assert (tmpfs.kind, tmpfs.options) == ("tmpfs", f"size={1 << 20},mode=1770")
    assert parse_tmpfs("/run:noexec,size=64m") == Volume(
        "", "/run", False, kind="tmpfs", options="noexec,size=64m"
    )
    for bad, needle in [
        ("type=bind,target=/x", "absolute"),
        ("type=nfs,target=/x", "type must be"),
        ("type=volume,source=vol", "target is required"),
        ("type=tmpfs,source=x,target=/t", "no source"),
        ("type=volume,source=vol,target=/v,colour=red", "unsupported field"),
    ]:
        with pytest.raises(ContainerConfigError, match=needle):
            parse_mount(bad)
    with pytest.raises(ContainerConfigError, match="unknown option"):
        parse_tmpfs("/t:hugepages")
    options = RunOptions("busybox", volumes=("vol:/x",), tmpfs=("/x",))
    with pytest.raises(ContainerConfigError, match="duplicate mount point: /x"):
        parse_mounts(options)


def test_security_opts_and_names() -> None:
    assert parse_security_opts(["no-new-privileges"])
    assert parse_security_opts(["no-new-privileges:true"])
    assert not parse_security_opts(["no-new-privileges=false"])
    with pytest.raises(ContainerConfigError, match="only no-new-privileges"):
        parse_security_opts(["apparmor=unconfined"])
    assert check_name("web-1.a_b") == "web-1.a_b"
    with pytest.raises(ContainerConfigError):
        check_name("-bad")


def test_env_merge() -> None:
    merged = merge_env(["A=1", "B=2"], ["B=3", "C", "D"], {"C": "host"})
    assert merged == ("A=1", "B=3", "C=host")


def test_config_merge_follows_docker() -> None:
    image = ImageDefaults(entrypoint=("/entry",), cmd=("default",), env=("X=1",), workdir="/w")
    config = build_config(RunOptions(image="img"), image, host_env={})
    assert config.args == ("/entry", "default") and config.workdir == "/w"
    config = build_config(RunOptions(image="img", command=("other",)), image, host_env={})
    assert config.args == ("/entry", "other")
    # A new entrypoint drops the image's command, as Docker does.
    config = build_config(RunOptions(image="img", entrypoint="sh"), image, host_env={})
    assert config.args == ("sh",)
    with pytest.raises(ContainerConfigError, match="no command specified"):
        build_config(RunOptions(image="img", entrypoint=""), image, host_env={})
    with pytest.raises(ContainerConfigError, match="absolute"):
        build_config(RunOptions(image="img", workdir="rel"), image, host_env={})
    assert build_config(RunOptions(image="i", pids_limit=-1), image, host_env={}).pids_limit is None


def test_config_json_round_trip() -> None:
    config = ContainerConfig(
        image_name="busybox",
        cmd=("echo", "hi"),
        env=("A=1",),
        volumes=(Volume("/src", "/dst", True),),
        memory=1 << 30,
        cpus=0.5,
        cap_add=("NET_ADMIN",),
        init=True,
    )
    assert ContainerConfig.from_json(config.to_json()) == config


def test_state_table() -> None:
    assert transition("created", Action.START, name="c") is ContainerState.RUNNING
    assert transition("exited", Action.START, name="c") is ContainerState.RUNNING
    assert transition("running", Action.EXIT, name="c") is ContainerState.EXITED
    assert transition("running", Action.FORCE_REMOVE, name="c") is ContainerState.REMOVING
    with pytest.raises(ContainerConflictError, match="stop it first or use rm -f"):
        transition("running", Action.REMOVE, name="c")
    with pytest.raises(ContainerConflictError, match="is not running"):
        transition("exited", Action.EXEC, name="c")
    # Nothing may happen to a container in the middle of being created or removed.
    busy = (ContainerState.CREATING, ContainerState.REMOVING)
    assert all(state not in busy or action is Action.FINISH_CREATE for state, action in TRANSITIONS)
    assert not allows("removing", Action.START)


def test_container_rows_compare_and_set() -> None:
    with Store.in_memory() as store:
        store.db.execute("PRAGMA foreign_keys = OFF")
        record = ContainerRecord("c" * 64, "one", "sha256:" + "0" * 64, "rw", "vfs", "created", "t")
        assert store.containers.add(record)
        assert not store.containers.add(
            ContainerRecord("d" * 64, "one", "i", "rw2", "vfs", "x", "t")
        )
        assert store.containers.update(record.id, expect=("created",), state="running", pid=7)
        assert not store.containers.update(record.id, expect=("created",), state="exited")
        current = store.containers.get(record.id)
        assert current is not None and (current.state, current.pid) == ("running", 7)
        assert store.containers.by_name("one") == current
        assert store.containers.by_prefix("ccc") == [current]
        with pytest.raises(ValueError, match="bad fields"):
            store.containers.update(record.id, nonsense=1)
        store.containers.remove(record.id)
        assert store.containers.list_containers() == []


def test_generated_names() -> None:
    taken = {"amber_badger"}
    name = names.generate(lambda n: n in taken, random.Random(1))
    assert "_" in name and name not in taken


def _record(state: str, **fields: object) -> ContainerRecord:
    config = ContainerConfig(image_name="busybox", cmd=("sh", "-c", "echo hello; sleep 100"))
    values: dict[str, object] = {
        "id": "a" * 64,
        "name": "web",
        "image": "sha256:" + "b" * 64,
        "rw_layer": "rw",
        "storage": "vfs",
        "state": state,
        "created": "2024-05-01T11:58:00Z",
        "config": config.to_json(),
    }
    values.update(fields)
    return ContainerRecord(**values)  # type: ignore[arg-type]


def test_ps_columns() -> None:
    row = views.ps_row(_record("running", started="2024-05-01T11:59:57Z"), NOW)
    assert row == ["a" * 12, "busybox", '"sh -c echo hello; s\u2026"', "2 minutes ago",
                   "Up 3 seconds", "", "web"]  # fmt: skip
    exited = _record("exited", exit_code=3, finished="2024-05-01T11:59:00Z")
    assert views.status_text(exited, NOW) == "Exited (3) About a minute ago"
    assert views.status_text(_record("created"), NOW) == "Created"
    assert views.ps_json(exited, NOW)["State"] == "exited"


def test_inspect_document() -> None:
    document = views.inspect_document(
        _record("exited", exit_code=0), {"Name": "vfs", "Data": {}}, log_path="/x"
    )
    assert document["Name"] == "/web" and document["Path"] == "sh"
    assert document["Args"] == ["-c", "echo hello; sleep 100"]
    state = document["State"]
    assert isinstance(state, dict) and state["Running"] is False and state["Pid"] == 0


def test_diff_leaves_out_the_etc_mount_stubs() -> None:
    from graphdriver import Change, ChangeKind
    from pydock.containers.artifacts import without_mount_stubs

    def changes(*lines: str) -> list[Change]:
        return [Change(line[2:], ChangeKind(line[0])) for line in lines]

    stubs = changes("A /etc", "A /etc/hostname", "A /etc/hosts", "A /etc/resolv.conf")
    assert without_mount_stubs(stubs + changes("A /new")) == changes("A /new")
    mixed = changes("C /etc", "A /etc/hosts", "D /etc/group", "C /etc/resolv.conf")
    assert without_mount_stubs(mixed) == changes("C /etc", "D /etc/group")
    untouched = changes("C /etc", "C /etc/passwd")
    assert without_mount_stubs(untouched) == untouched
