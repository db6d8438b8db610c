"""The pydock CLI end to end, as a subprocess, on the vfs driver.

Each test has its own root. Failures must exit 125 with exactly one ``pydock: ...`` line on
stderr, never a traceback, and must leave the store as it was.
"""

from __future__ import annotations

import argparse
import bz2
import gzip
import hashlib
import io
import json
import lzma
import os
import random
import re
import sqlite3
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import zstandard

import graphdriver

from .containers_support import clean_env

pytestmark = pytest.mark.skipif(
    "vfs" not in graphdriver.registered(), reason="vfs driver not installed"
)

IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
SEEDED_FILES = 6


def seeded_rootfs(seed: int = 42) -> bytes:
    """A small root filesystem tar with seeded random file contents."""
    rng = random.Random(seed)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, mode in (("etc", 0o755), ("tmp", 0o1777), ("usr", 0o755), ("usr/bin", 0o755)):
            info = tarfile.TarInfo(name)
            info.type, info.mode = tarfile.DIRTYPE, mode
            tar.addfile(info)
        for index in range(SEEDED_FILES):
            data = rng.randbytes(rng.randrange(100, 40_000))
            info = tarfile.TarInfo(f"usr/bin/tool{index}")
            info.size, info.mode = len(data), 0o755
            tar.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("etc/link")
        link.type, link.linkname = tarfile.SYMTYPE, "../usr/bin/tool0"
        tar.addfile(link)
    return out.getvalue()


def content_bytes(data: bytes) -> int:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return sum(member.size for member in tar.getmembers() if member.isreg())


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def pydock_command(root: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "pydock", "--root", str(root), "--storage", "vfs", *args]


def run(
    root: Path, *args: str, stdin: bytes | None = None, raw: bool = False
) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "pydock", *args] if raw else pydock_command(root, *args)
    done = subprocess.run(
        command, input=stdin, capture_output=True, timeout=300, env=clean_env(), check=False
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def ok(root: Path, *args: str, stdin: bytes | None = None) -> str:
    done = run(root, *args, stdin=stdin)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
    return done.stdout


def fails(done: subprocess.CompletedProcess[str], *needles: str) -> str:
    """Assert a pydock failure: exit 125, one ``pydock:`` line on stderr; return that line."""
    assert done.returncode == 125, (done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("pydock: ")
    assert "Traceback" not in done.stderr
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def layer_rows(root: Path) -> list[tuple[str, int]]:
    with sqlite3.connect(root / "pydock.db") as conn:
        return list(conn.execute("SELECT chain_id, complete FROM layers"))


def layer_dirs(root: Path) -> list[str]:
    directory = root / "vfs" / "dir"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def blobs(root: Path) -> list[str]:
    directory = root / "blobs" / "sha256"
    return sorted(os.listdir(directory)) if directory.is_dir() else []


def assert_store_empty(root: Path) -> None:
    assert layer_rows(root) == []
    assert layer_dirs(root) == []
    assert blobs(root) == []


@pytest.fixture
def root(tmp_path: Path) -> Path:
    return tmp_path / "root"


@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(seeded_rootfs())
    return path


# -- import, images, inspect, rmi ---------------------------------------------------------------


def test_import_then_images_inspect_rmi(root: Path, rootfs: Path) -> None:
    data = rootfs.read_bytes()
    image_id = ok(root, "import", str(rootfs), "test/seeded:v1").strip()
    assert IMAGE_ID.fullmatch(image_id)

    listing = ok(root, "images").splitlines()
    assert re.split(r"\s{2,}", listing[0]) == ["REPOSITORY", "TAG", "IMAGE ID", "CREATED", "SIZE"]
    assert len(listing) == 2
    repository, tag, short, created, size = re.split(r"\s{2,}", listing[1])
    assert (repository, tag, short) == ("test/seeded", "v1", image_id[7:19])
    assert created.endswith("ago") and re.fullmatch(r"\d+(\.\d+)?kB", size)
    assert ok(root, "images", "-q").split() == [image_id[7:19]]

    [described] = json.loads(ok(root, "inspect", "test/seeded:v1"))
    assert described["Id"] == image_id
    assert described["RepoTags"] == ["test/seeded:v1"]
    assert described["RootFS"] == {"Type": "layers", "Layers": [sha256(data)]}
    assert described["Size"] == content_bytes(data)
    assert described["Architecture"] and described["Os"] == "linux"
    layer = Path(described["GraphDriver"]["Data"]["Path"])
    assert (layer / "usr" / "bin" / "tool0").read_bytes()[:100] == _member(data, "usr/bin/tool0")
    assert (layer / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert os.readlink(layer / "etc" / "link") == "../usr/bin/tool0"
    # The image id is the digest of the stored config, which lists the layer's diff id.
    config = (root / "blobs" / "sha256" / image_id[7:]).read_bytes()
    assert sha256(config) == image_id
    assert json.loads(config)["rootfs"]["diff_ids"] == [sha256(data)]

    removed = ok(root, "rmi", "test/seeded:v1").splitlines()
    assert removed[0] == "Untagged: test/seeded:v1"
    assert f"Deleted: {image_id}" in removed
    assert ok(root, "images", "-q") == ""
    assert_store_empty(root)


def _member(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        stream = tar.extractfile(name)
        assert stream is not None
        return stream.read(100)


def test_compressed_and_stdin_imports_share_one_layer(root: Path, tmp_path: Path) -> None:
    data = seeded_rootfs()
    packed = {"plain.tar": data, "layer.tgz": gzip.compress(data)}
    packed["layer.tar.zst"] = zstandard.ZstdCompressor().compress(data)
    ids = []
    for index, (name, blob) in enumerate(packed.items()):
        (tmp_path / name).write_bytes(blob)
        ids.append(ok(root, "import", str(tmp_path / name), f"img{index}").strip())
    ids.append(ok(root, "import", "-", "fromstdin", stdin=gzip.compress(data)).strip())
    assert len(set(ids)) == 4
    assert layer_rows(root) == [(sha256(data), 1)]
    assert len(layer_dirs(root)) == 1
    layers = {
        json.loads(ok(root, "inspect", name))[0]["RootFS"]["Layers"][0]
        for name in ("img0", "img1", "img2", "fromstdin")
    }
    assert layers == {sha256(data)}
    comment = json.loads(ok(root, "inspect", "fromstdin"))[0]["Comment"]
    assert comment == "Imported from -"


def test_names_are_normalised_and_untagged_images_listed(root: Path, rootfs: Path) -> None:
    ok(root, "import", str(rootfs), "busybox")
    ok(root, "import", str(rootfs), "localhost:5000/team/app:1.0")
    untagged = ok(root, "import", str(rootfs)).strip()
    with sqlite3.connect(root / "pydock.db") as conn:
        names = sorted(row[0] for row in conn.execute("SELECT name FROM image_tags"))
    assert names == ["docker.io/library/busybox:latest", "localhost:5000/team/app:1.0"]
    rows = [re.split(r"\s{2,}", line)[:3] for line in ok(root, "images").splitlines()[1:]]
    assert ["busybox", "latest"] in [row[:2] for row in rows]
    assert ["localhost:5000/team/app", "1.0"] in [row[:2] for row in rows]
    assert ["<none>", "<none>", untagged[7:19]] in rows
    assert ok(root, "inspect", "docker.io/library/busybox:latest") == ok(root, "inspect", "busybox")


def test_retagging_moves_the_tag_and_shared_layers_stay(root: Path, rootfs: Path) -> None:
    first = ok(root, "import", str(rootfs), "app").strip()
    second = ok(root, "import", str(rootfs), "app").strip()
    assert first != second
    assert json.loads(ok(root, "inspect", first))[0]["RepoTags"] == []
    assert json.loads(ok(root, "inspect", "app"))[0]["Id"] == second
    assert ok(root, "rmi", first[7:19]).splitlines() == [f"Deleted: {first}"]
    assert len(layer_dirs(root)) == 1  # still used by the second image
    lines = ok(root, "rmi", "app").splitlines()
    assert lines[:2] == ["Untagged: app:latest", f"Deleted: {second}"]
    assert lines[2:] == [f"Deleted: {sha256(rootfs.read_bytes())}"]
    assert_store_empty(root)


def test_rmi_by_id_of_an_image_with_two_tags(root: Path, rootfs: Path) -> None:
    image_id = ok(root, "import", str(rootfs), "one").strip()
    with sqlite3.connect(root / "pydock.db") as conn:
        conn.execute(
            "INSERT INTO image_tags (name, image_id, created) VALUES (?, ?, ?)",
            ("docker.io/library/two:latest", image_id, "2024-01-01T00:00:00Z"),
        )
    fails(run(root, "rmi", image_id[7:19]), "must be forced", "multiple repositories")
    assert ok(root, "images", "-q").split() == [image_id[7:19]]
    lines = ok(root, "rmi", "-f", image_id).splitlines()
    assert {"Untagged: one:latest", "Untagged: two:latest", f"Deleted: {image_id}"} <= set(lines)
    assert_store_empty(root)


# -- the built-in busybox image -----------------------------------------------------------------


@pytest.mark.skipif(not Path("/bin/busybox").is_file(), reason="install busybox-static")
def test_builtin_busybox(root: Path) -> None:
    image_id = ok(root, "import", "builtin:busybox", "busybox").strip()
    assert IMAGE_ID.fullmatch(image_id)
    [described] = json.loads(ok(root, "inspect", "busybox"))
    layer = Path(described["GraphDriver"]["Data"]["Path"])
    binary = layer / "bin" / "busybox"
    assert binary.is_file() and not binary.is_symlink()
    assert binary.read_bytes() == Path("/bin/busybox").read_bytes()
    assert os.readlink(layer / "bin" / "sh") == "/bin/busybox"
    assert (layer / "tmp").stat().st_mode & 0o7777 == 0o1777
    assert (layer / "etc" / "passwd").read_text().startswith("root:x:0:0:")
    echoed = subprocess.run([binary, "echo", "hello"], capture_output=True, check=True)
    assert echoed.stdout == b"hello\n"
    # Importing it again reuses the layer.
    ok(root, "import", "builtin:busybox", "busybox:again")
    assert len(layer_dirs(root)) == 1


# -- failures -----------------------------------------------------------------------------------


def test_unknown_image(root: Path) -> None:
    fails(run(root, "rmi", "nosuch"), "removing image nosuch: no such image")
    done = run(root, "inspect", "nosuch:1")
    fails(done, "no such image")
    assert json.loads(done.stdout) == []


@pytest.mark.parametrize(
    ("name", "mangle", "needle"),
    [
        ("truncated.tar", lambda data: data[: len(data) // 2 + 100], "truncated"),
        ("corrupt.tar", lambda data: data[:600] + b"\xff" * 4 + data[604:], "corrupt tar header"),
        ("truncated.tgz", lambda data: gzip.compress(data)[:-2000], "importing"),
        ("garbage.bin", lambda data: random.Random(5).randbytes(4000), "not a tar archive"),
        ("empty.tar", lambda data: b"", "empty"),
    ],
)
def test_bad_archive_leaves_store_unchanged(
    root: Path, tmp_path: Path, name: str, mangle: object, needle: str
) -> None:
    assert callable(mangle)
    data = seeded_rootfs()
    path = tmp_path / name
    path.write_bytes(mangle(data))
    line = fails(run(root, "import", str(path), "broken"), needle)
    assert line.startswith(f"pydock: importing {path}: ")
    assert_store_empty(root)
    assert ok(root, "images", "-q") == ""


@pytest.mark.parametrize("packer", [lzma.compress, bz2.compress], ids=["xz", "bzip2"])
def test_unknown_compression(root: Path, tmp_path: Path, packer: object) -> None:
    assert callable(packer)
    path = tmp_path / "layer.packed"
    path.write_bytes(packer(seeded_rootfs()))
    fails(run(root, "import", str(path), "x"), "unsupported layer compression")
    assert_store_empty(root)


@pytest.mark.parametrize("name", ["Upper", "bad:-tag", "a//b", "x@sha256:" + "a" * 64])
def test_bad_reference(root: Path, rootfs: Path, name: str) -> None:
    fails(run(root, "import", str(rootfs), name))
    assert_store_empty(root)


def test_missing_input_file(root: Path, tmp_path: Path) -> None:
    fails(run(root, "import", str(tmp_path / "nope.tar"), "x"), "no such file or directory")


def test_unknown_driver(root: Path) -> None:
    done = run(root, "--storage", "nosuch", "images", raw=True)
    fails(done, "starting storage driver nosuch", "unknown driver")


@pytest.mark.parametrize(
    ("option", "needle"),
    [("nonsense", "expected KEY=VALUE"), ("=x", "expected KEY=VALUE"), ("bogus=1", "bogus")],
)
def test_bad_storage_opt(root: Path, option: str, needle: str) -> None:
    fails(run(root, "--storage-opt", option, "images"), needle)


def test_store_file_that_is_not_sqlite(root: Path) -> None:
    root.mkdir()
    (root / "pydock.db").write_text("definitely not sqlite\n" * 50)
    fails(run(root, "images"), f"opening store {root / 'pydock.db'}: file is not a database")


def test_usage_errors_are_one_line_and_125(root: Path) -> None:
    fails(run(root, "frobnicate"), "is not a pydock command")
    fails(run(root, "import"), "required")


# -- concurrency and crash recovery -------------------------------------------------------------


def test_two_concurrent_imports(root: Path, tmp_path: Path) -> None:
    tars = {}
    for seed in (1, 2):
        tars[seed] = tmp_path / f"rootfs{seed}.tar"
        tars[seed].write_bytes(seeded_rootfs(seed))
    jobs = [  # two different layers and two imports of the same one, all at once
        (tars[1], "one"),
        (tars[2], "two"),
        (tars[1], "one-again"),
        (tars[1], "one-third"),
    ]
    processes = [
        subprocess.Popen(
            pydock_command(root, "import", str(path), name),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=clean_env(),
        )
        for path, name in jobs
    ]
    results = [process.communicate(timeout=300) for process in processes]
    for process, (out, err) in zip(processes, results, strict=True):
        assert process.returncode == 0, err.decode()
        assert IMAGE_ID.fullmatch(out.decode().strip())
    assert len(ok(root, "images", "-q").split()) == 4
    assert sorted(layer_rows(root)) == sorted((sha256(seeded_rootfs(seed)), 1) for seed in (1, 2))
    assert len(layer_dirs(root)) == 2


def test_start_up_recovers_an_interrupted_import(root: Path, rootfs: Path) -> None:
    ok(root, "import", str(rootfs), "kept")
    kept_dirs = layer_dirs(root)
    # Leave what a kill -9 during an import leaves: an incomplete row of a dead process with
    # its half-filled directory, a directory no row knows of, and a partial blob.
    (root / "vfs" / "dir" / "deadbeef").mkdir()
    (root / "vfs" / "dir" / "deadbeef" / "half").write_text("x")
    (root / "vfs" / "dir" / "orphan").mkdir()
    (root / "blobs" / "sha256" / ".tmp-999999999-x").write_bytes(b"partial")
    chain = "sha256:" + "e" * 64
    with sqlite3.connect(root / "pydock.db") as conn:
        conn.execute(
            "INSERT INTO layers (chain_id, diff_id, size, complete, owner, created)"
            " VALUES (?, ?, 0, 0, '999999999:1', '2024-01-01T00:00:00Z')",
            (chain, chain),
        )
        conn.execute(
            "INSERT INTO layer_cache (chain_id, driver, cache_id, complete, owner, created)"
            " VALUES (?, 'vfs', 'deadbeef', 0, '999999999:1', '2024-01-01T00:00:00Z')",
            (chain,),
        )
    assert len(ok(root, "images", "-q").split()) == 1
    assert layer_dirs(root) == kept_dirs
    assert [row[0] for row in layer_rows(root)] == [sha256(rootfs.read_bytes())]
    assert not any(name.startswith(".tmp-") for name in blobs(root))


# -- help and entry points ----------------------------------------------------------------------


def test_every_command_has_help(root: Path) -> None:
    from pydock.cli import build_parser

    parser = build_parser()
    [commands] = [
        action for action in parser._actions if isinstance(action, argparse._SubParsersAction)
    ]
    choices = commands.choices
    assert {"info", "import", "images", "rmi", "inspect"} <= set(choices)
    helps = {action.dest: action.help for action in commands._get_subactions()}
    # ``cleanup`` is run by a container's monitor, not by people: it exists but is not listed.
    assert "cleanup" in choices and "cleanup" not in helps
    assert "cleanup" not in run(root, "--help", raw=True).stdout
    for name in choices:
        assert name == "cleanup" or helps.get(name), f"command {name} has no help"
        done = run(root, name, "--help", raw=True)
        assert done.returncode == 0 and "usage: pydock " + name in done.stdout


def test_info_lists_drivers_and_paths(root: Path) -> None:
    facts = json.loads(ok(root, "info", "--format", "json"))
    assert facts["Driver"] == "vfs"
    assert facts["RootDir"] == str(root) and facts["Store"] == str(root / "pydock.db")
    assert {"Name": "vfs", "Supported": True, "Reason": ""} in facts["Drivers"]
    assert facts["Rootless"] is (os.geteuid() != 0)
    text = ok(root, "info")
    assert "Storage Driver: vfs" in text and f"Root Dir: {root}" in text


def test_root_from_environment(tmp_path: Path) -> None:
    env = clean_env() | {"PYDOCK_ROOT": str(tmp_path / "envroot")}
    done = subprocess.run(
        [sys.executable, "-m", "pydock", "--storage", "vfs", "images", "-q"],
        capture_output=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "envroot" / "pydock.db").is_file()


def test_version(root: Path) -> None:
    done = run(root, "--version", raw=True)
    assert done.returncode == 0 and done.stdout.startswith("pydock ")


def test_the_builtin_busybox_is_reproducible_and_runs_sh(tmp_path: Path) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    ids = {ok(first, "import", "builtin:busybox", "a").strip()}
    ids.add(ok(second, "import", "builtin:busybox", "b").strip())
    assert len(ids) == 1  # the same busybox-static gives the same image on every store
    described = json.loads(ok(first, "inspect", "a"))[0]
    assert described["Config"]["Cmd"] == ["sh"]
    assert described["Created"] == json.loads(ok(second, "inspect", "b"))[0]["Created"]
