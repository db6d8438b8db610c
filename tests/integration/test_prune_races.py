"""What ``ps -s`` and ``system prune`` see of a container that another process removes while
they measure it: an error about that container (prune counts it as removed by the other), not
a missing file inside the layer. overlay2 reads the changes straight from the layer's ``diff``
directory, the walk that can meet a directory going away."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

import graphdriver
from pydock.containers import artifacts
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.errors import DriverError
from pydock.settings import EngineConfig
from pydock.store import current_owner

from .containers_support import Pydock

pytestmark = [
    pytest.mark.overlay,
    pytest.mark.root,
    pytest.mark.skipif(
        "overlay2" not in graphdriver.registered(), reason="overlay2 driver not installed"
    ),
]


@pytest.fixture
def engine_with_container(tmp_path: Path) -> tuple[Engine, str]:
    pydock = Pydock(tmp_path / "root", "overlay2")
    assert pydock.run("import", "builtin:busybox", "busybox").status == 0
    created = pydock.run(
        "run", "-d", "--name", "going", "busybox", "sh", "-c", "mkdir -p /d/e && echo x >/d/e/f"
    )
    assert created.status == 0, created.err
    config = EngineConfig(root=tmp_path / "root", run_root=tmp_path / "run", storage="overlay2")
    engine = Engine(config)
    assert pydock.run("wait", "going").out.strip() == "0"
    return engine, created.out.strip()


def _remove_while_measuring(
    engine: Engine, container_id: str, monkeypatch: pytest.MonkeyPatch, *, claim: bool
) -> None:
    """Make the driver's walk of the layer meet a directory another ``rm`` takes away under it:
    the first time the walk lists ``/d`` in the container's layer, the directory goes (and
    with ``claim`` the row is ``removing`` first, as the other process's rm makes it)."""
    record = engine.store.containers.get(container_id)
    assert record is not None
    storage = engine.containers.storage("overlay2")
    real_scandir = os.scandir
    done: list[str] = []

    def scandir_racing(path: object = ".") -> object:
        text = "" if isinstance(path, int) else os.fsdecode(path)  # type: ignore[arg-type]
        if not done and record.rw_layer in text and text.endswith("/diff/d"):
            done.append(text)
            if claim:
                assert engine.store.containers.update(
                    record.id,
                    expect=(ContainerState.EXITED,),
                    state=ContainerState.REMOVING,
                    owner=current_owner(),
                )
            shutil.rmtree(text)
        return real_scandir(path)  # type: ignore[call-overload]

    assert storage.driver.name == "overlay2"
    monkeypatch.setattr(os, "scandir", scandir_racing)


def test_measuring_a_container_being_removed_is_one_driver_error(
    engine_with_container: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, container_id = engine_with_container
    with engine:
        record = engine.store.containers.get(container_id)
        assert record is not None
        assert artifacts.size(engine.containers, record) >= 0
        _remove_while_measuring(engine, container_id, monkeypatch, claim=True)
        with pytest.raises(DriverError, match="going: it was removed meanwhile"):
            artifacts.size(engine.containers, record)


def test_a_vanishing_file_of_a_container_nobody_removes_is_not_hidden(
    engine_with_container: tuple[Engine, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    engine, container_id = engine_with_container
    with engine:
        record = engine.store.containers.get(container_id)
        assert record is not None
        _remove_while_measuring(engine, container_id, monkeypatch, claim=False)
        with pytest.raises(FileNotFoundError):
            artifacts.size(engine.containers, record)
