"""Running the pydock CLI in tests: in this process (fast) or as a subprocess (exact exit).

Both return ``(status, stdout, stderr)``. Every failure must be exit 125 with exactly one line,
``pydock: ...``, on stderr; :func:`assert_fails` checks that.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from pydock.cli import main

from .containers_support import clean_env


def cli(root: Path, *args: str) -> tuple[int, str, str]:
    """Run ``pydock --root ROOT --storage vfs ARGS`` in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(["--root", str(root), "--storage", "vfs", *args])
        except SystemExit as exc:  # argparse usage errors
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def cli_process(root: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the same command as a subprocess."""
    command = [sys.executable, "-m", "pydock", "--root", str(root), "--storage", "vfs", *args]
    environment = clean_env()
    done = subprocess.run(
        command, capture_output=True, timeout=300, env=environment | (env or {}), check=False
    )
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def ok(root: Path, *args: str) -> str:
    """Run in process; assert success; return stdout."""
    status, out, err = cli(root, *args)
    assert status == 0, err
    assert err == ""
    return out


def assert_fails(result: tuple[int, str, str], *needles: str) -> str:
    """Assert exit 125 with one ``pydock:`` line holding ``needles``; return that line."""
    status, out, err = result
    assert status == 125, (out, err)
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pydock: "), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def ok_process(root: Path, *args: str) -> str:
    """Run as a subprocess (the real command); assert success and a silent stderr; return
    stdout."""
    status, out, err = cli_process(root, *args)
    assert status == 0, err
    assert err == ""
    return out


def snapshot(root: Path) -> dict[str, object]:
    """Everything a failed command must leave as it was: rows, blobs, layer directories."""
    found: dict[str, object] = {}
    database = root / "pydock.db"
    if database.exists():
        with sqlite3.connect(database) as conn:
            for table in ("layers", "layer_cache", "images", "image_tags", "repo_digests"):
                found[table] = sorted(map(tuple, conn.execute(f"SELECT * FROM {table}")))
    blobs = root / "blobs" / "sha256"
    found["blobs"] = sorted(os.listdir(blobs)) if blobs.is_dir() else []
    layers = root / "vfs" / "dir"
    found["dirs"] = sorted(os.listdir(layers)) if layers.is_dir() else []
    scratch = root / "tmp"
    found["scratch"] = sorted(os.listdir(scratch)) if scratch.is_dir() else []
    return found


def layer_path(root: Path, image: str) -> Path:
    """The vfs directory of ``image``'s top layer."""
    import json

    described = json.loads(ok(root, "inspect", image))[0]
    return Path(described["GraphDriver"]["Data"]["Path"])


@contextlib.contextmanager
def another_command(root: Path) -> Iterator[None]:
    """Another pydock process at work on ``root`` (holding its presence lock) for the block.

    Start-up collects leftovers only when no other command runs; this keeps them in place.
    """
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD, str(root / ".presence.lock")],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == b"held\n"
        yield
    finally:
        if holder.stdin is not None:
            holder.stdin.close()
        holder.wait(timeout=30)


_HOLD = """
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o600)
fcntl.lockf(fd, fcntl.LOCK_SH)
print("held", flush=True)
sys.stdin.read()
"""


def inspect(root: Path, name: str) -> dict[str, object]:
    """``inspect NAME`` as one parsed object."""
    document: dict[str, object] = json.loads(ok(root, "inspect", name))[0]
    return document


def diff_ids(root: Path, name: str) -> list[str]:
    """The diff ids of image ``name``, base first."""
    rootfs = inspect(root, name)["RootFS"]
    assert isinstance(rootfs, dict)
    return list(rootfs["Layers"])


def untar(archive: Path, directory: Path) -> Path:
    """Unpack ``archive`` into ``directory`` (made if missing) with GNU tar."""
    directory.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-xf", str(archive), "-C", str(directory)], check=True, timeout=60)
    return directory
