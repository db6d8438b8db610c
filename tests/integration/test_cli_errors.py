"""The top-level failure paths of ``pydock`` (pydock/cli/app.py), through the real command.

Each case has a real trigger, no hook: Ctrl-C on a following command, a reader that goes away,
a full output device, a read-only root, a store another process holds locked, a file that is
not a store, and a store row no code path could have written (an internal error). Every one
ends as Docker's do: one ``pydock: ...`` line (or, for a closed pipe, none), no traceback.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import graphdriver
from pydock.store.db import BUSY_TIMEOUT_SECONDS

from .containers_support import Workspace, clean_env
from .pydockrun import another_command, assert_fails, cli_process, ok, snapshot

pytestmark = pytest.mark.skipif(
    "vfs" not in graphdriver.registered(), reason="vfs driver not installed"
)

READ_TIMEOUT_SECONDS = 60.0


@pytest.fixture
def root(tmp_path: Path) -> Path:
    """A vfs root holding busybox."""
    path = tmp_path / "root"
    ok(path, "import", "builtin:busybox", "busybox")
    return path


def command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pydock", "--root", str(root), "--storage", "vfs", *args]


def read_line(process: subprocess.Popen[bytes]) -> bytes:
    """The first line ``process`` writes, waiting at most READ_TIMEOUT_SECONDS for it."""
    assert process.stdout is not None
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        assert selector.select(READ_TIMEOUT_SECONDS), "no output in time"
    return process.stdout.readline()


def read_then_hang_up(argv: list[str], nbytes: int) -> tuple[int, bytes, str]:
    """Run ``argv``, read ``nbytes`` of its output and close the pipe (as ``| head -c``)."""
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None and process.stderr is not None
        head = process.stdout.read(nbytes)
        process.stdout.close()
        err = process.stderr.read().decode()
        return process.wait(timeout=READ_TIMEOUT_SECONDS), head, err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


# -- Ctrl-C -------------------------------------------------------------------------------------


@pytest.fixture
def following(one: Workspace) -> Iterator[str]:
    """A running container that has written ``ready``; force-removed at the end."""
    cid = one.pydock.ok("run", "-d", "busybox", "sh", "-c", "echo ready; exec sleep 300").strip()
    try:
        yield cid
    finally:
        one.pydock.run("rm", "-f", cid)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 (the rootless run is its own test)")
def test_ctrl_c_ends_a_following_command_with_130_and_one_line(
    one: Workspace, following: str
) -> None:
    process = subprocess.Popen(
        one.pydock.command("logs", "-f", following),
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        env=clean_env(),
    )  # fmt: skip
    try:
        # The container's line has come through: the command is inside its follow loop.
        assert read_line(process) == b"ready\n"
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=READ_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
    assert process.returncode == 130, err
    assert err == b"pydock: interrupted\n"
    assert out == b""
    # Only the command stopped: the container runs on.
    assert one.pydock.ok("ps", "-q").split() == [following[:12]]


# -- a reader that goes away --------------------------------------------------------------------


def test_save_into_a_closed_pipe_is_quiet(root: Path) -> None:
    """``pydock save busybox | head -c 100``: the archive (MiBs) outgrows the pipe."""
    status, head, err = read_then_hang_up(command(root, "save", "busybox"), 100)
    assert len(head) == 100
    assert err == ""
    assert status == 0


def test_images_into_a_closed_pipe_is_quiet(root: Path) -> None:
    """``pydock images | head -1`` with more rows than a pipe holds (64 KiB).

    The 3000 tags are written as ``tag`` writes them, in one transaction (3000 ``tag``
    commands would take minutes)."""
    with sqlite3.connect(root / "pydock.db") as conn:
        columns = [row[1] for row in conn.execute("PRAGMA table_info(image_tags)")]
        assert columns == ["name", "image_id", "created"], columns
        image_id, created = conn.execute("SELECT id, created FROM images").fetchone()
        conn.executemany(
            "INSERT INTO image_tags VALUES (?, ?, ?)",
            [(f"docker.io/many/repository-{n:04d}:tag", image_id, created) for n in range(3000)],
        )
    assert len(ok(root, "images")) > 3 * 65536  # more than the pipe holds, by far
    status, head, err = read_then_hang_up(command(root, "images"), 100)
    assert head.startswith(b"REPOSITORY")
    assert err == ""
    assert status == 0


# -- the operating system refuses -----------------------------------------------------------------


def test_output_to_a_full_device_is_one_line(root: Path) -> None:
    with open("/dev/full", "wb") as full:
        done = subprocess.run(
            command(root, "images"), stdout=full, stderr=subprocess.PIPE, env=clean_env(),
            timeout=READ_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
    assert done.returncode == 125
    assert done.stderr.decode() == "pydock: listing images: no space left on device\n"


@pytest.mark.root
def test_a_read_only_root_is_one_line(root: Path) -> None:
    """The root bind-mounted read-only in a mount namespace of the command's own."""
    if os.geteuid() != 0:
        pytest.skip("needs uid 0 to bind-mount the root read-only")
    before = sorted(os.listdir(root))
    script = (
        'mount --bind "$1" "$1" && mount -o remount,bind,ro "$1" && shift && exec "$@"'
    )  # fmt: skip
    argv = ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh"]
    for verb in (("images",), ("tag", "busybox", "other:1")):
        done = subprocess.run(
            [*argv, str(root), *command(root, *verb)],
            capture_output=True, env=clean_env(), timeout=READ_TIMEOUT_SECONDS, check=False,
        )  # fmt: skip
        line = assert_fails((done.returncode, done.stdout.decode(), done.stderr.decode()))
        assert line.startswith(f"pydock: opening store {root / 'pydock.db'}: "), line
    assert sorted(os.listdir(root)) == before
    assert "other" not in ok(root, "images")


# -- the store -------------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_locked_store_waits_then_fails_in_one_line(root: Path) -> None:
    """Another process holds the write lock past the busy timeout: reading still works, a
    write waits its bounded time, then fails with one line and changes nothing."""
    holder = sqlite3.connect(root / "pydock.db", isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        # Another command at work: start-up leaves recovery (a write) to it.
        with another_command(root):
            status, out, err = cli_process(root, "images")
            assert (status, err) == (0, ""), err
            assert out.splitlines()[1].split()[:2] == ["busybox", "latest"]
            line = assert_fails(cli_process(root, "tag", "busybox", "other:1"))
            assert line == (
                "pydock: tagging busybox as other:1: starting a store transaction:"
                " database is locked"
            )
    finally:
        holder.close()
    assert "other" not in ok(root, "images")
    assert BUSY_TIMEOUT_SECONDS <= 60  # what the subprocess timeout (300 s) leaves room for


def test_a_file_that_is_not_a_store_is_one_line_and_left_alone(tmp_path: Path) -> None:
    root = tmp_path / "root"
    root.mkdir()
    garbage = bytes(range(256)) * 64
    database = root / "pydock.db"
    database.write_bytes(garbage)
    before = database.stat()
    assert_fails(cli_process(root, "images"), f"opening store {database}: file is not a database")
    assert_fails(cli_process(root, "import", "builtin:busybox", "b"), "file is not a database")
    assert database.read_bytes() == garbage
    after = database.stat()
    assert (after.st_mtime_ns, after.st_size) == (before.st_mtime_ns, before.st_size)
    assert sorted(os.listdir(root)) == ["pydock.db"]


def test_an_internal_error_is_one_line_and_debug_shows_the_traceback(root: Path) -> None:
    """A row no pydock wrote (an edited store): ``images`` fails in code that trusted it."""
    with sqlite3.connect(root / "pydock.db") as conn:
        conn.execute("UPDATE images SET created = 'not a time'")
    line = assert_fails(cli_process(root, "images"))
    assert line.startswith("pydock: listing images: internal error: ValueError: "), line
    assert line.endswith(" (PYDOCK_DEBUG=1 shows more)")
    status, _, err = cli_process(root, "images", env={"PYDOCK_DEBUG": "1"})
    assert status == 1
    assert err.startswith("Traceback (most recent call last):")
    assert err.splitlines()[-1].startswith("ValueError: ")
    # Commands that do not read the broken field still work.
    assert json.loads(ok(root, "inspect", "busybox"))[0]["RepoTags"] == ["busybox:latest"]


# -- import rolls back -------------------------------------------------------------------------


def refuse_new_images(root: Path) -> None:
    """Make the store refuse any new image row (a trigger), as a failing write would."""
    with sqlite3.connect(root / "pydock.db") as conn:
        conn.execute(
            "CREATE TRIGGER refuse BEFORE INSERT ON images"
            " BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
        )


def test_an_import_that_fails_to_record_its_image_leaves_nothing(tmp_path: Path) -> None:
    """The layer is unpacked, then recording the image fails: the layer's rows, its directory
    and the blobs written go again; only what was there before stays."""
    root = tmp_path / "root"
    ok(root, "images")
    before = snapshot(root)
    refuse_new_images(root)
    line = assert_fails(cli_process(root, "import", "builtin:busybox", "busybox"))
    assert line == "pydock: importing an image: store: refused by the test", line
    assert snapshot(root) == before
    with sqlite3.connect(root / "pydock.db") as conn:
        conn.execute("DROP TRIGGER refuse")
    # The same import works afterwards, unpacking the layer afresh.
    ok(root, "import", "builtin:busybox", "busybox")
    assert len(snapshot(root)["dirs"]) == 1  # type: ignore[arg-type]


def test_a_failed_import_keeps_a_layer_another_image_uses(root: Path) -> None:
    """The same content imported again (another message: another image) reuses busybox's
    layer: failing, it must not take it."""
    before = snapshot(root)
    refuse_new_images(root)
    again = cli_process(root, "import", "-m", "again", "builtin:busybox", "again")
    assert_fails(again, "refused by the test")
    assert snapshot(root) == before
    assert cli_process(root, "run", "--rm", "busybox", "echo", "intact") == (0, "intact\n", "")
