"""Fixtures the container tests share: a workspace per container driver, and one on the best.

Each test module gets its own workspaces (module scope), named after the module.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from .containers_support import Workspace, container_drivers, driver_params, workspace


def _prefix(request: pytest.FixtureRequest) -> str:
    return request.module.__name__.rpartition(".")[2].removeprefix("test_")


@pytest.fixture(scope="module", params=driver_params())
def ws(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    """A workspace with busybox on each container driver."""
    root = tmp_path_factory.mktemp(f"{_prefix(request)}-{request.param}") / "root"
    yield from workspace(root, request.param)


@pytest.fixture(scope="module")
def one(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Workspace]:
    """One workspace on the best driver, for what does not depend on storage."""
    root = tmp_path_factory.mktemp(f"{_prefix(request)}-one") / "root"
    yield from workspace(root, container_drivers()[0])
