"""docker-py (``docker`` on PyPI) against ``pydock system service``: pull, run, exec, commit."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from .api_support import Service, running_service, wait_for_state
from .registry_support import running_registry


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("api-py")) as running:
        yield running


@pytest.fixture
def client(service: Service) -> Iterator[docker.DockerClient]:
    made = docker.DockerClient(base_url=service.uri, timeout=120)
    try:
        yield made
    finally:
        made.close()


def test_the_service_records_an_exit_nobody_waits_for(
    service: Service, client: docker.DockerClient
) -> None:
    """docker-py's detached run sends no wait: the service reaps the monitor and records the
    exit (and --rm) itself; the monitor's `pydock cleanup` stands down while the service lives."""
    removed = client.containers.run("busybox", ["true"], detach=True, auto_remove=True)
    wait_for_state(service, removed.id, None)
    kept = client.containers.run("busybox", ["sh", "-c", "exit 3"], detach=True)
    try:
        wait_for_state(service, kept.id, "exited")
        kept.reload()
        assert kept.attrs["State"]["ExitCode"] == 3
    finally:
        kept.remove(force=True)


def test_version_is_negotiated(client: docker.DockerClient) -> None:
    assert client.api.api_version == "1.41"
    assert client.ping() is True


def test_pull_run_exec_commit(
    service: Service, client: docker.DockerClient, tmp_path: Path
) -> None:
    with running_registry(tmp_path / "registry") as registry:
        name = f"{registry.address}/py/busybox"
        pushed = service.pydock("push", "--tls-verify=false", "busybox", f"{name}:2")
        assert pushed.returncode == 0, pushed.stderr
        image = client.images.pull(name, tag="2")
        assert f"{name}:2" in image.tags
    assert client.containers.run(f"{name}:2", ["echo", "hi"], remove=True) == b"hi\n"
    container = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pyworker")
    try:
        assert client.containers.get("pyworker").status == "running"
        code, output = container.exec_run(["sh", "-c", "echo made > /made; echo ok; exit 2"])
        assert (code, output) == (2, b"ok\n")
        committed = container.commit(repository="pysnap", tag="1")
        assert committed.id.startswith("sha256:")
    finally:
        container.remove(force=True)
    assert client.containers.run("pysnap:1", ["cat", "/made"], remove=True) == b"made\n"
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("pyworker")


def test_an_unknown_image_is_not_found(client: docker.DockerClient) -> None:
    with pytest.raises(docker.errors.ImageNotFound, match="No such image: nosuch"):
        client.images.get("nosuch")


def _tar(name: str, data: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.uid, info.gid = len(data), 0o640, 1234, 1234
        tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def test_stats_top_archives_update(client: docker.DockerClient) -> None:
    container = client.containers.run("busybox", ["sleep", "300"], detach=True, name="pystats")
    try:
        sample = container.stats(stream=False)
        assert (sample["id"], sample["name"]) == (container.id, "/pystats")
        assert sample["pids_stats"]["current"] == 1
        assert sample["memory_stats"]["usage"] > 0
        now, before = sample["cpu_stats"], sample["precpu_stats"]
        assert now["system_cpu_usage"] > before["system_cpu_usage"] > 0  # two readings
        assert sample["preread"] != "0001-01-01T00:00:00Z"
        single = client.api.stats(container.id, stream=False, one_shot=True)
        assert single["preread"] == "0001-01-01T00:00:00Z"
        stream = client.api.stats(container.id, stream=True, decode=True)
        first, second = next(stream), next(stream)
        assert second["preread"] == first["read"]
        assert second["precpu_stats"] == first["cpu_stats"]

        top = container.top(ps_args="-o pid,args")
        assert top["Titles"] == ["PID", "COMMAND"]
        assert [process[1] for process in top["Processes"]] == ["sleep 300"]

        assert container.put_archive("/tmp", _tar("hello.txt", b"hello\n"))
        chunks, facts = container.get_archive("/tmp/hello.txt")
        assert (facts["name"], facts["size"], facts["mode"]) == ("hello.txt", 6, 0o640)
        with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as tar:
            member = tar.extractfile("hello.txt")
            assert member is not None and member.read() == b"hello\n"
            owner = tar.getmember("hello.txt")
            assert (owner.uid, owner.gid) == (0, 0)  # copyUIDGID not asked: root's, as Docker
        with pytest.raises(docker.errors.NotFound):
            container.get_archive("/nosuch")
        with pytest.raises(docker.errors.NotFound):
            container.put_archive("/nosuch", _tar("x", b"x"))

        assert container.update(mem_limit="32m", cpu_shares=512) == {
            "Warnings": ["pydock does not change CpuShares; it was ignored"]
        }
        assert client.api.inspect_container(container.id)["HostConfig"]["Memory"] == 32 << 20
    finally:
        container.remove(force=True)


def test_volumes_networks_and_image_prune(client: docker.DockerClient) -> None:
    volume = client.volumes.create(name="pyvol", labels={"owner": "py"})
    try:
        assert volume.attrs["Labels"] == {"owner": "py"}
        assert [v.name for v in client.volumes.list(filters={"label": "owner=py"})] == ["pyvol"]
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("nosuch")
        with pytest.raises(docker.errors.APIError, match="only the local volume driver"):
            client.volumes.create(name="other", driver="nfs")
    finally:
        volume.remove()
    assert client.volumes.list() == []
    assert sorted(n.name for n in client.networks.list()) == ["bridge", "host", "none"]
    assert client.networks.get("host").attrs["Driver"] == "host"
    with pytest.raises(docker.errors.NotFound):
        client.networks.get("nosuch")
    report = client.images.prune(filters={"dangling": True})
    assert report == {"ImagesDeleted": None, "SpaceReclaimed": 0}
    with pytest.raises(docker.errors.APIError, match="invalid filter 'until'"):
        client.images.prune(filters={"until": "24h"})
