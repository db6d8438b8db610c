"""``load``, ``save``, ``tag``, ``history``, ``system prune|df`` end to end on the vfs driver.

Archives come from three sources: this test's own writer (:mod:`imagebuild`), pydock's
``save``, and tools we did not write (skopeo, umoci); each is read back by the others.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

import graphdriver

from .containers_support import clean_env
from .imagebuild import (
    layer_tar,
    seeded_layers,
    sha256,
    tar_directory,
    write_docker_archive,
    write_oci_layout,
)
from .pydockrun import (
    another_command,
    assert_fails,
    cli,
    cli_process,
    diff_ids,
    inspect,
    layer_path,
    ok,
    snapshot,
    untar,
)
from .registry_support import require

pytestmark = pytest.mark.skipif(
    "vfs" not in graphdriver.registered(), reason="vfs driver not installed"
)


def run_tool(*command: str) -> str:
    done = subprocess.run(command, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout.decode()


# -- load ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_load_docker_archive(tmp_path: Path, compression: str) -> None:
    root = tmp_path / "root"
    layers = seeded_layers(1)
    archive = tmp_path / "image.tar"
    image = write_docker_archive(archive, layers, tags=["test/img:1"], compression=compression)
    assert ok(root, "load", "-i", str(archive)) == "Loaded image: test/img:1\n"
    described = inspect(root, "test/img:1")
    assert described["Id"] == image.config
    assert diff_ids(root, "test/img:1") == list(image.diff_ids)
    top = layer_path(root, "test/img:1")
    assert (top / "layer2" / "file0").is_file()
    assert not (top / "layer0" / "file1").exists()  # deleted by the last layer's whiteout
    assert (top / "layer0" / "file0").is_file()


def test_load_oci_layout_directory_tar_and_gzipped_tar(tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    layers = seeded_layers(2)
    image = write_oci_layout(layout, layers, compression=["gzip", "zstd", "none"], name="x/y:2")
    as_tar = tar_directory(layout, tmp_path / "layout.tar")
    as_tgz = tmp_path / "layout.tgz"
    as_tgz.write_bytes(gzip.compress(as_tar.read_bytes()))
    for index, source in enumerate((layout, as_tar, as_tgz)):
        root = tmp_path / f"root{index}"
        assert ok(root, "load", "-i", str(source)) == "Loaded image: x/y:2\n"
        assert inspect(root, "x/y:2")["Id"] == image.config
        # The original blobs are kept as they came, so save can give them back.
        stored = set((root / "blobs" / "sha256").iterdir())
        assert {root / "blobs" / "sha256" / d.partition(":")[2] for d in image.blobs} <= stored


def test_loading_twice_and_sharing_layers(tmp_path: Path) -> None:
    root = tmp_path / "root"
    layers = seeded_layers(3)
    write_docker_archive(tmp_path / "a.tar", layers, tags=["a:1"])
    write_docker_archive(tmp_path / "b.tar", layers[:2], tags=["b:1"], seed=9)
    ok(root, "load", "-i", str(tmp_path / "a.tar"))
    ok(root, "load", "-i", str(tmp_path / "a.tar"))
    ok(root, "load", "-i", str(tmp_path / "b.tar"))
    assert len((root / "vfs" / "dir").iterdir().__class__.__name__) > 0
    assert len(list((root / "vfs" / "dir").iterdir())) == 3  # b's two layers are a's first two
    assert (
        set(ok(root, "images", "-q").split())
        == {
            inspect(root, "a:1")["Id"][7:19],  # type: ignore[index]
            inspect(root, "b:1")["Id"][7:19],  # type: ignore[index]
        }
    )


# -- save ------------------------------------------------------------------------------------------


def test_save_and_load_round_trip_in_both_formats(tmp_path: Path) -> None:
    source = tmp_path / "source"
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, seeded_layers(4), compression=["gzip", "zstd", "gzip"])
    ok(source, "load", "-i", str(layout))
    ok(source, "tag", image.config, "round/trip:v1")
    docker = tmp_path / "docker.tar"
    oci = tmp_path / "oci.tar"
    ok(source, "save", "-o", str(docker), "round/trip:v1")
    ok(source, "save", "--format", "oci-archive", "-o", str(oci), "round/trip:v1")
    with tarfile.open(docker) as tar:
        manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
    assert manifest[0]["RepoTags"] == ["round/trip:v1"]
    with tarfile.open(oci) as tar:
        index = json.load(tar.extractfile("index.json"))  # type: ignore[arg-type]
    # The OCI archive carries the very manifest the image was loaded with.
    assert index["manifests"][0]["digest"] == image.manifest
    for name, archive in (("docker", docker), ("oci", oci)):
        target = tmp_path / f"target-{name}"
        assert ok(target, "load", "-i", str(archive)) == "Loaded image: round/trip:v1\n"
        assert inspect(target, "round/trip:v1")["Id"] == image.config
        assert diff_ids(target, "round/trip:v1") == list(image.diff_ids)
    # Saving again gives the same bytes (sorted members, time 0).
    again = tmp_path / "again.tar"
    ok(
        tmp_path / "target-oci",
        "save",
        "--format",
        "oci-archive",
        "-o",
        str(again),
        "round/trip:v1",
    )
    assert again.read_bytes() == oci.read_bytes()

    # Through standard output and standard input, as the real command: the same bytes.
    piped = tmp_path / "piped.tar"
    env = clean_env()
    with piped.open("wb") as out:
        saved = subprocess.run(
            [sys.executable, "-m", "pydock", "--root", str(source), "--storage", "vfs",
             "save", "round/trip:v1"],
            stdout=out, stderr=subprocess.PIPE, env=env, timeout=300, check=False,
        )  # fmt: skip
    assert (saved.returncode, saved.stderr) == (0, b"")
    assert piped.read_bytes() == docker.read_bytes()
    target = tmp_path / "target-stdin"
    with piped.open("rb") as source_file:
        loaded = subprocess.run(
            [sys.executable, "-m", "pydock", "--root", str(target), "--storage", "vfs", "load"],
            stdin=source_file, capture_output=True, env=env, timeout=300, check=False,
        )  # fmt: skip
    assert (loaded.returncode, loaded.stdout, loaded.stderr) == (
        0,
        b"Loaded image: round/trip:v1\n",
        b"",
    )
    assert inspect(target, "round/trip:v1")["Id"] == image.config


def test_skopeo_reads_what_pydock_saves(tmp_path: Path) -> None:
    require("skopeo")
    root = tmp_path / "root"
    image = write_docker_archive(tmp_path / "in.tar", seeded_layers(5), tags=["sk/img:3"])
    ok(root, "load", "-i", str(tmp_path / "in.tar"))
    for kind in ("docker-archive", "oci-archive"):
        path = tmp_path / f"{kind}.tar"
        ok(root, "save", "--format", kind, "-o", str(path), "sk/img:3")
        facts = json.loads(run_tool("skopeo", "inspect", f"{kind}:{path}"))
        config = json.loads(run_tool("skopeo", "inspect", "--config", f"{kind}:{path}"))
        assert config["rootfs"]["diff_ids"] == list(image.diff_ids)
        assert facts["Architecture"] == "amd64"
        # And skopeo can copy it on (it rewrites the config as OCI's): the layers survive.
        out = tmp_path / f"copied-{kind}"
        run_tool("skopeo", "copy", f"{kind}:{path}", f"oci:{out}:copied")
        target = tmp_path / f"target-{kind}"
        ok(target, "load", "-i", str(out))
        [copied] = ok(target, "images", "-q").split()
        assert diff_ids(target, copied) == list(image.diff_ids)


@pytest.mark.parametrize("kind", ["docker-archive", "oci-archive"])
def test_pydock_loads_what_skopeo_writes(tmp_path: Path, kind: str) -> None:
    require("skopeo")
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, seeded_layers(6), compression=["gzip", "gzip", "gzip"])
    target = tmp_path / "from-skopeo.tar"
    run_tool("skopeo", "copy", f"oci:{layout}", f"{kind}:{target}:made/by/skopeo:1")
    root = tmp_path / "root"
    assert ok(root, "load", "-i", str(target)) == "Loaded image: made/by/skopeo:1\n"
    assert inspect(root, "made/by/skopeo:1")["Id"] == image.config


def test_umoci_unpacks_what_pydock_saves_and_pydock_loads_umoci_images(tmp_path: Path) -> None:
    require("umoci")
    root = tmp_path / "root"
    layers = seeded_layers(7)
    write_docker_archive(tmp_path / "in.tar", layers, tags=["um/img:1"])
    ok(root, "load", "-i", str(tmp_path / "in.tar"))
    archive = tmp_path / "saved.tar"
    ok(root, "save", "--format", "oci-archive", "-o", str(archive), "um/img:1")
    layout = untar(archive, tmp_path / "saved")
    bundle = tmp_path / "bundle"
    run_tool("umoci", "unpack", "--image", f"{layout}:1", str(bundle))
    unpacked = bundle / "rootfs"
    top = layer_path(root, "um/img:1")
    for name in ("layer0/file0", "layer1/file3", "layer2/file4"):
        assert (unpacked / name).read_bytes() == (top / name).read_bytes()
    assert not (unpacked / "layer0" / "file1").exists()

    # umoci builds a new image on it; pydock loads the layout umoci wrote.
    (unpacked / "added-by-umoci").write_text("hello\n")
    run_tool("umoci", "repack", "--image", f"{layout}:2", str(bundle))
    other = tmp_path / "other"
    ok(other, "load", "-i", str(layout))
    shutil.rmtree(bundle)
    ids = ok(other, "images", "-q").split()
    original = str(inspect(root, "um/img:1")["Id"])
    assert len(ids) == 2 and original[7:19] in ids
    [repacked] = [image for image in ids if image != original[7:19]]
    assert (layer_path(other, repacked) / "added-by-umoci").read_text() == "hello\n"
    assert diff_ids(other, repacked)[:3] == diff_ids(root, "um/img:1")


# -- tag, history, prune, df -----------------------------------------------------------------------


def test_tag_history_prune_and_df(tmp_path: Path) -> None:
    root = tmp_path / "root"
    image = write_docker_archive(tmp_path / "in.tar", seeded_layers(8), tags=["hist:1"])
    ok(root, "load", "-q", "-i", str(tmp_path / "in.tar"))
    ok(root, "tag", "hist:1", "localhost:5000/team/hist:two")
    assert inspect(root, "localhost:5000/team/hist:two")["Id"] == image.config
    history = ok(root, "history", "hist:1").splitlines()
    assert history[0].split() == ["IMAGE", "CREATED", "CREATED", "BY", "SIZE", "COMMENT"]
    assert len(history) == 4 and history[1].startswith(image.config[7:19])
    assert "step 2" in history[1] and "step 0" in history[3]
    rows = [
        json.loads(line) for line in ok(root, "history", "--format", "json", "hist:1").splitlines()
    ]
    assert [row["created_by"] for row in rows] == ["step 2", "step 1", "step 0"]
    assert all(row["size"] > 0 for row in rows)

    orphan = root / "blobs" / "sha256" / ("0" * 64)
    orphan.write_bytes(b"left behind")
    before = snapshot(root)
    with another_command(root):  # else start-up would collect the orphan before prune does
        pruned = ok(root, "system", "prune", "-f").splitlines()
    assert pruned == [f"Deleted blob: sha256:{'0' * 64}", "Total reclaimed space: 11B"]
    after = snapshot(root)
    assert after["blobs"] == [name for name in before["blobs"] if name != "0" * 64]  # type: ignore[union-attr]
    assert ok(root, "system", "prune", "-f") == "Total reclaimed space: 0B\n"
    usage = {
        row["Type"]: row
        for row in map(json.loads, ok(root, "system", "df", "--format", "json").splitlines())
    }
    assert usage["Images"]["Total"] == 1 and usage["Blobs"]["Reclaimable"] == 0
    assert ok(root, "system", "df").splitlines()[0].split()[:3] == ["TYPE", "TOTAL", "ACTIVE"]

    ok(root, "rmi", "hist:1", "localhost:5000/team/hist:two")
    assert snapshot(root)["blobs"] == []
    assert ok(root, "system", "prune", "-f") == "Total reclaimed space: 0B\n"


# -- bad input -------------------------------------------------------------------------------------


@pytest.fixture
def loaded(tmp_path: Path) -> Path:
    """A root holding one image already, so "unchanged" means more than "empty"."""
    root = tmp_path / "root"
    write_docker_archive(tmp_path / "base.tar", seeded_layers(10, 1), tags=["base:1"])
    ok(root, "load", "-q", "-i", str(tmp_path / "base.tar"))
    return root


def _rootfs_tar(tmp_path: Path) -> Path:
    path = tmp_path / "rootfs.tar"
    path.write_bytes(layer_tar({"etc/hostname": b"x\n"}))
    return path


def test_a_tar_that_is_not_an_image(loaded: Path, tmp_path: Path) -> None:
    before = snapshot(loaded)
    assert_fails(
        cli_process(loaded, "load", "-i", str(_rootfs_tar(tmp_path))), "not an image archive"
    )
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"\x00\x01garbage" * 300)
    assert_fails(cli_process(loaded, "load", "-i", str(junk)), f"loading {junk}")
    assert_fails(cli_process(loaded, "load", "-i", str(tmp_path / "nope.tar")), "no such file")
    assert snapshot(loaded) == before


def test_manifest_naming_a_missing_blob(loaded: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, seeded_layers(11), name="miss:1")
    (layout / "blobs" / "sha256" / image.blobs[1].partition(":")[2]).unlink()
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(layout)), image.blobs[1], "missing")
    assert snapshot(loaded) == before


def test_digest_mismatch_in_the_last_layer_leaves_nothing(loaded: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, seeded_layers(12), compression=["none"] * 3, name="bad:1")
    blob = layout / "blobs" / "sha256" / image.blobs[2].partition(":")[2]
    data = bytearray(blob.read_bytes())
    data[700] ^= 0xFF
    blob.write_bytes(bytes(data))
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(layout)), image.blobs[2], "digest")
    assert snapshot(loaded) == before


def test_config_and_layer_that_disagree(loaded: Path, tmp_path: Path) -> None:
    """A gzip layer whose content is not the diff id the config names: found while unpacking."""
    layers = seeded_layers(13)
    archive = tmp_path / "lying.tar"
    write_docker_archive(archive, layers, tags=["lie:1"], compression="gzip")
    with tarfile.open(archive) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}  # type: ignore[union-attr]
    name = f"{sha256(layers[1]).partition(':')[2]}/layer.tar"
    members[name] = gzip.compress(layer_tar({"other": b"content"}), mtime=0)
    with tarfile.open(archive, "w") as tar:
        for member, data in members.items():
            info = tarfile.TarInfo(member)
            info.size = len(data)
            tar.addfile(info, __import__("io").BytesIO(data))
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(archive)), sha256(layers[1]), "uncompressed")
    assert snapshot(loaded) == before
    assert ok(loaded, "system", "prune", "-f") == "Total reclaimed space: 0B\n"


def test_truncated_layer(loaded: Path, tmp_path: Path) -> None:
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, seeded_layers(14), name="trunc:1")
    blob = layout / "blobs" / "sha256" / image.blobs[0].partition(":")[2]
    blob.write_bytes(blob.read_bytes()[:-100])
    before = snapshot(loaded)
    assert_fails(cli_process(loaded, "load", "-i", str(layout)), image.blobs[0])
    assert snapshot(loaded) == before


def test_archive_cut_short(loaded: Path, tmp_path: Path) -> None:
    archive = tmp_path / "whole.tar"
    write_docker_archive(archive, seeded_layers(15), tags=["cut:1"])
    data = archive.read_bytes()
    for fraction in (0.3, 0.7):
        cut = tmp_path / f"cut{fraction}.tar"
        cut.write_bytes(data[: int(len(data) * fraction)])
        before = snapshot(loaded)
        assert_fails(cli_process(loaded, "load", "-i", str(cut)), f"loading {cut}")
        assert snapshot(loaded) == before


def test_unknown_images_and_bad_references(loaded: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.tar"
    assert_fails(cli_process(loaded, "save", "-o", str(out), "nosuch"), "no such image")
    assert not out.exists() and list(tmp_path.glob(".out.tar.*")) == []
    assert_fails(cli(loaded, "tag", "nosuch", "x:1"), "no such image")
    assert_fails(cli(loaded, "tag", "base:1", "Bad:Name"), "must be lowercase")
    assert_fails(cli(loaded, "tag", "base:1", "a//b"), "invalid reference format")
    assert_fails(cli(loaded, "history", "nosuch"), "no such image")
    assert_fails(cli_process(loaded, "save", "--format", "zip", "base:1"), "invalid choice")


def test_leftover_blobs_are_collected_by_a_start_with_no_other_command(tmp_path: Path) -> None:
    root = tmp_path / "root"
    write_docker_archive(tmp_path / "in.tar", seeded_layers(9), tags=["kept:1"])
    ok(root, "load", "-q", "-i", str(tmp_path / "in.tar"))
    kept = sorted(os.listdir(root / "blobs" / "sha256"))
    # What a killed import or rmi leaves: a blob that nothing in the store names.
    orphan = root / "blobs" / "sha256" / ("1" * 64)
    orphan.write_bytes(b"left by a killed command")
    with another_command(root):  # maybe that blob is another command's work in progress
        ok(root, "images")
        assert orphan.exists()
    ok(root, "images")
    assert not orphan.exists()
    assert sorted(os.listdir(root / "blobs" / "sha256")) == kept
