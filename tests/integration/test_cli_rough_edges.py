"""Rough edges a Docker user hits in the first hour, each through the real command: a closed
pipe, ``save -o -``, error lines that name what the user typed (once), bad references,
unknown flags and the commands ``--help`` lists."""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from .containers_support import clean_env
from .pydockrun import assert_fails, cli, cli_process, ok
from .registry_support import running_registry

SOURCE_TREE = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A root holding the built-in busybox."""
    made = tmp_path_factory.mktemp("edges") / "root"
    ok(made, "import", "builtin:busybox", "busybox")
    return made


def pydock_argv(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pydock", "--root", str(root), "--storage", "vfs", *args]


def test_save_into_a_pipe_closed_early_ends_quietly(root: Path) -> None:
    saver = subprocess.Popen(
        pydock_argv(root, "save", "busybox"),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=clean_env({"PYTHONPATH": str(SOURCE_TREE)}),
    )
    try:
        assert saver.stdout is not None and saver.stderr is not None
        assert len(saver.stdout.read(100)) == 100
        saver.stdout.close()  # as ``| head -c 100`` does
        err = saver.stderr.read()
        assert saver.wait(timeout=60) == 0
    finally:
        if saver.poll() is None:
            saver.kill()
            saver.wait(timeout=30)
    assert err == b""


def test_save_dash_o_dash_writes_standard_output(root: Path, tmp_path: Path) -> None:
    done = subprocess.run(
        pydock_argv(root, "save", "-o", "-", "busybox"),
        capture_output=True,
        cwd=tmp_path,
        env=clean_env({"PYTHONPATH": str(SOURCE_TREE)}),
        timeout=120,
        check=False,
    )
    assert (done.returncode, done.stderr) == (0, b"")
    with tarfile.open(fileobj=io.BytesIO(done.stdout)) as tar:
        assert "manifest.json" in tar.getnames()
    assert os.listdir(tmp_path) == []  # no file named "-"


def test_save_errors_name_the_path_given(root: Path, tmp_path: Path) -> None:
    target = tmp_path / "no-such-dir" / "out.tar"
    line = assert_fails(cli(root, "save", "-o", str(target), "busybox"), f"{target}: no such file")
    assert ".out.tar." not in line


def test_a_failed_login_says_what_failed_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker-config"))
    with running_registry(tmp_path / "reg", credentials=("tester", "s3cret")) as registry:
        result = cli(
            tmp_path / "root", "login", "--tls-verify=false", "-u", "tester", "-p", "wrong",
            registry.address,
        )  # fmt: skip
    line = assert_fails(result, f"logging in to {registry.address}", "401")
    assert line.count("logging in") == 1, line


def test_an_upper_case_image_name_is_an_invalid_reference(root: Path) -> None:
    for verb in ("run", "create"):
        assert_fails(cli(root, verb, "UPPER"), "invalid reference format", "lowercase")


def test_an_unknown_flag_points_at_the_help_of_its_command(root: Path) -> None:
    assert_fails(cli(root, "run", "--bogus", "busybox"), "--bogus", "'pydock run --help'")
    assert_fails(cli(root, "system", "df", "--bogus"), "'pydock system df --help'")
    assert_fails(cli(root, "images", "--bogus"), "'pydock images --help'")
    assert_fails(cli(root, "nosuch"), "'nosuch' is not a pydock command", "'pydock --help'")


def test_internal_commands_are_not_listed(root: Path) -> None:
    status, out, _ = cli_process(root, "--help")
    assert status == 0 and "run" in out and "cleanup" not in out
    line = assert_fails(cli_process(root, "nosuch"))
    assert "cleanup" not in line


@pytest.fixture
def container_root(tmp_path: Path) -> Iterator[Path]:
    made = tmp_path / "root"
    ok(made, "import", "builtin:busybox", "busybox")
    yield made
    ids = cli(made, "ps", "-a", "-q")[1].split()
    if ids:
        cli(made, "rm", "-f", *ids)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 (runs a container)")
@pytest.mark.timeout(180)
def test_a_volume_onto_a_symlink_is_one_clear_line(container_root: Path, tmp_path: Path) -> None:
    source = tmp_path / "dir"
    source.mkdir()
    line = assert_fails(
        cli_process(container_root, "run", "--rm", "-v", f"{source}:/bin/sh", "busybox", "true"),
        "/bin/sh",
        "/bin/busybox",
        "a directory cannot be mounted on a file",
    )
    assert "Errno" not in line and str(container_root) not in line
