"""docker-py (``docker`` on PyPI) against ``pydock system service``: pull, run, exec, commit."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import docker
import docker.errors
import pytest

from .api_support import Service, running_service
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
