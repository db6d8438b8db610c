"""``pull``, ``push``, ``login`` against a real registry (Debian's docker-registry) on 127.0.0.1.

One plain registry serves the module; the basic-auth test starts its own. Failures a real
registry will not produce on demand (500s, a connection cut mid-blob, Bearer tokens) come
from :mod:`fakeregistry`. Every failure must leave the local store exactly as it was.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

import graphdriver

from .fakeregistry import TOKEN, fake_registry, image_script
from .imagebuild import (
    seeded_layers,
    sha256,
    write_docker_archive,
    write_multi_arch_layout,
    write_oci_layout,
)
from .pydockrun import assert_fails, cli_process, inspect, ok, ok_process, snapshot, untar
from .registry_support import Registry, require, running_registry, unreachable

pytestmark = [
    pytest.mark.registry,
    pytest.mark.skipif("vfs" not in graphdriver.registered(), reason="vfs driver not installed"),
]

NO_TLS = "--tls-verify=false"


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    with running_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(autouse=True)
def docker_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Credentials go to a config of the test's own, never to ~/.docker."""
    directory = tmp_path / "docker-config"
    monkeypatch.setenv("DOCKER_CONFIG", str(directory))
    return directory


def load_seeded(root: Path, tmp_path: Path, seed: int, tag: str) -> str:
    archive = tmp_path / f"seed{seed}.tar"
    image = write_docker_archive(archive, seeded_layers(seed), tags=[tag], seed=seed)
    ok(root, "load", "-q", "-i", str(archive))
    return image.config


def registry_manifest_bytes(registry: Registry, repository: str, reference: str) -> bytes:
    """The manifest as the registry stores it, read by skopeo."""
    image = f"docker://{registry.address}/{repository}:{reference}"
    done = subprocess.run(
        ["skopeo", "inspect", "--raw", NO_TLS, image], capture_output=True, timeout=60, check=True
    )
    return done.stdout


def registry_manifest(registry: Registry, repository: str, reference: str) -> dict[str, object]:
    """The manifest as the registry stores it, parsed."""
    document: dict[str, object] = json.loads(
        registry_manifest_bytes(registry, repository, reference)
    )
    return document


# -- round trips -----------------------------------------------------------------------------------


def test_push_then_pull_gives_the_same_image(registry: Registry, tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    image_id = load_seeded(source, tmp_path, 1, "app:1")
    name = f"{registry.address}/team/app:1"
    ok(source, "tag", "app:1", name)
    pushed = ok_process(source, "push", NO_TLS, name).splitlines()
    assert pushed[0] == f"The push refers to repository [{registry.address}/team/app]"
    assert pushed[-1].startswith("1: digest: sha256:")
    digest = pushed[-1].split()[2]

    pulled = ok_process(target, "pull", NO_TLS, name).splitlines()
    assert pulled[-3:] == [
        f"Digest: {digest}",
        f"Status: Downloaded newer image for {name}",
        name,
    ]
    described = inspect(target, name)
    assert described["Id"] == image_id
    assert described["RepoDigests"] == [f"{registry.address}/team/app@{digest}"]
    assert described["RootFS"] == inspect(source, "app:1")["RootFS"]
    # The registry's manifest names exactly the blobs pydock now holds.
    require("skopeo")
    raw = registry_manifest_bytes(registry, "team/app", "1")
    assert sha256(raw) == digest
    manifest = json.loads(raw)
    stored = {p.name for p in (target / "blobs" / "sha256").iterdir()}
    layers = manifest["layers"]
    assert isinstance(layers, list)
    assert {layer["digest"][7:] for layer in layers} <= stored

    # Pulling again downloads nothing; pushing again uploads nothing.
    again = ok_process(target, "pull", NO_TLS, name).splitlines()
    assert f"Status: Image is up to date for {name}" in again
    repush = ok_process(target, "push", NO_TLS, name)
    assert "Pushed" not in repush and "Layer already exists" in repush
    assert repush.splitlines()[-1] == f"1: digest: {digest} size: {pushed[-1].split()[-1]}"

    # Pushing again asked the registry whether each blob exists, and uploaded none.
    assert registry.requests("HEAD", "/v2/team/app/blobs/sha256:")
    # A push to another repository of the same registry mounts the blobs.
    other = f"{registry.address}/elsewhere/app:2"
    mounted = ok_process(target, "push", NO_TLS, name, other)
    assert "Mounted from team/app" in mounted
    mounts = registry.requests("POST", "/v2/elsewhere/app/blobs/uploads/?mount=sha256:")
    assert mounts and all("from=team%2Fapp" in line or "from=team/app" in line for line in mounts)
    assert registry.requests("PATCH", "/v2/elsewhere/app/blobs/uploads/") == []

    # Quiet pull prints the reference only.
    quiet = tmp_path / "quiet"
    assert ok_process(quiet, "pull", "-q", NO_TLS, other) == other + "\n"


def test_chunked_upload(
    registry: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blobs larger than one chunk go up as several PATCH requests, then one PUT."""
    from pydock.registry import client

    monkeypatch.setattr(client, "UPLOAD_CHUNK", 4096)
    source, target = tmp_path / "source", tmp_path / "target"
    image_id = load_seeded(source, tmp_path, 11, "chunks:1")
    name = f"{registry.address}/chunked/img:1"
    ok(source, "tag", "chunks:1", name)
    ok(source, "push", "-q", NO_TLS, name)
    ok(target, "pull", "-q", NO_TLS, name)
    assert inspect(target, name)["Id"] == image_id
    # What the registry received: the layers (tens of KiB each) went up in 4 KiB PATCHes.
    patches = registry.requests("PATCH", "/v2/chunked/img/blobs/uploads/")
    puts = registry.requests("PUT", "/v2/chunked/img/blobs/uploads/")
    assert len(puts) >= 3 and len(patches) > 3 * len(puts), (len(patches), len(puts))


def test_pull_by_digest(registry: Registry, tmp_path: Path) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    image_id = load_seeded(source, tmp_path, 2, "dig:1")
    name = f"{registry.address}/dig/img:1"
    ok(source, "tag", "dig:1", name)
    digest = ok_process(source, "push", NO_TLS, name).splitlines()[-1].split()[2]
    by_digest = f"{registry.address}/dig/img@{digest}"
    assert ok_process(target, "pull", "-q", NO_TLS, by_digest) == by_digest + "\n"
    assert inspect(target, by_digest)["Id"] == image_id
    assert inspect(target, image_id)["RepoTags"] == []  # a pull by digest makes no tag
    assert f"Deleted: {image_id}" in ok(target, "rmi", by_digest)
    assert snapshot(target)["blobs"] == []  # manifest, config and gzip layers all went
    assert ok_process(target, "pull", "-q", NO_TLS, by_digest) == by_digest + "\n"
    wrong = f"{registry.address}/dig/img@sha256:{'1' * 64}"
    before = snapshot(target)
    assert_fails(cli_process(target, "pull", NO_TLS, wrong), "manifest unknown")
    assert snapshot(target) == before


def test_images_made_by_skopeo_and_read_by_skopeo(registry: Registry, tmp_path: Path) -> None:
    require("skopeo")
    layout = tmp_path / "layout"
    image = write_oci_layout(layout, seeded_layers(3), compression=["gzip", "zstd", "gzip"])
    name = f"{registry.address}/skopeo/made:1"
    subprocess.run(
        ["skopeo", "copy", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{name}"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    root = tmp_path / "root"
    ok_process(root, "pull", "-q", NO_TLS, name)
    assert inspect(root, name)["Id"] == image.config
    # pydock pushes it on with the same manifest; skopeo copies that out to an archive.
    moved = f"{registry.address}/skopeo/moved:1"
    ok_process(root, "push", "-q", NO_TLS, name, moved)
    archive = tmp_path / "out.tar"
    subprocess.run(
        ["skopeo", "copy", "--src-tls-verify=false", f"docker://{moved}", f"oci-archive:{archive}"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    other = tmp_path / "other"
    ok(other, "load", "-i", str(archive))
    assert ok(other, "images", "-q").strip() == image.config[7:19]
    manifest = registry_manifest(registry, "skopeo/moved", "1")
    assert [layer["digest"] for layer in manifest["layers"]] == list(image.blobs)  # type: ignore[index, union-attr]


def test_platform_is_chosen_from_an_index(registry: Registry, tmp_path: Path) -> None:
    require("skopeo")
    layout = tmp_path / "multi"
    images = write_multi_arch_layout(layout, ["amd64", "arm64"])
    name = f"{registry.address}/multi/arch:1"
    subprocess.run(
        ["skopeo", "copy", "--all", "--dest-tls-verify=false", f"oci:{layout}", f"docker://{name}"],
        capture_output=True,
        timeout=120,
        check=True,
    )
    default = tmp_path / "default"
    ok_process(default, "pull", "-q", NO_TLS, name)
    assert inspect(default, name)["Id"] == images["amd64"].config
    arm = tmp_path / "arm"
    ok_process(arm, "pull", "-q", NO_TLS, "--platform", "linux/arm64", name)
    assert inspect(arm, name)["Architecture"] == "arm64"
    assert inspect(arm, name)["Id"] == images["arm64"].config
    nothing = tmp_path / "nothing"
    assert_fails(
        cli_process(nothing, "pull", NO_TLS, "--platform", "linux/s390x", name),
        "no manifest for linux/s390x",
        "linux/amd64",
    )
    assert snapshot(nothing)["blobs"] == []


# -- authentication --------------------------------------------------------------------------------


def test_basic_auth_and_login(tmp_path: Path, docker_config: Path) -> None:
    with running_registry(tmp_path / "authreg", credentials=("tester", "s3cret")) as registry:
        root = tmp_path / "root"
        load_seeded(root, tmp_path, 4, "auth:1")
        name = f"{registry.address}/auth/img:1"
        ok(root, "tag", "auth:1", name)
        assert_fails(cli_process(root, "push", NO_TLS, name), "unauthorized", "pydock login")
        assert_fails(
            cli_process(root, "login", NO_TLS, "-u", "tester", "-p", "wrong", registry.address),
            "logging in to",
            "401",
        )
        assert not (docker_config / "config.json").exists()
        logged = ok_process(root, "login", NO_TLS, "-u", "tester", "-p", "s3cret", registry.address)
        assert logged.endswith("Login Succeeded\n")
        config = json.loads((docker_config / "config.json").read_text())
        assert registry.address in config["auths"]
        assert (docker_config / "config.json").stat().st_mode & 0o777 == 0o600
        ok_process(root, "push", "-q", NO_TLS, name)
        other = tmp_path / "other"
        ok_process(other, "pull", "-q", NO_TLS, name)
        assert inspect(other, name)["Id"] == inspect(root, name)["Id"]
        assert ok_process(root, "logout", registry.address).startswith("Removing login credentials")
        before = snapshot(other)
        assert_fails(cli_process(other, "pull", NO_TLS, name), "unauthorized")
        assert snapshot(other) == before


def test_registry_behind_token_auth(tmp_path: Path, docker_config: Path) -> None:
    """A real registry with ``auth: token``: Basic credentials buy scoped Bearer tokens."""
    pytest.importorskip("cryptography", reason="cryptography is not installed")
    from .tokenauth import token_server

    workdir = tmp_path / "tokenreg"
    workdir.mkdir()
    with (
        token_server(workdir, ("tok", "en")) as tokens,
        running_registry(workdir / "registry", auth=tokens.registry_auth()) as registry,
    ):
        root = tmp_path / "root"
        image_id = load_seeded(root, tmp_path, 12, "token:1")
        name = f"{registry.address}/tok/img:1"
        ok(root, "tag", "token:1", name)
        assert_fails(cli_process(root, "push", NO_TLS, name), "getting a token", "401")
        ok_process(root, "login", NO_TLS, "-u", "tok", "-p", "en", registry.address)
        ok_process(root, "push", "-q", NO_TLS, name)
        other = tmp_path / "other"
        ok_process(other, "pull", "-q", NO_TLS, name)
        assert inspect(other, name)["Id"] == image_id
    scopes = {scope for request in tokens.requests for scope in request.get("scope", [])}
    assert {"repository:tok/img:pull,push", "repository:tok/img:pull"} <= scopes


def test_bearer_token_challenge(tmp_path: Path) -> None:
    script = image_script(seeded_layers(5), mode="token")
    with fake_registry(script) as address:
        root = tmp_path / "root"
        ok_process(root, "pull", "-q", NO_TLS, f"{address}/tok/img:1")
    assert script.token_requests[0]["service"] == ["fake"]
    assert script.token_requests[0]["scope"] == ["repository:tok/img:pull"]
    assert f"Bearer {TOKEN}" in script.seen_auth
    assert ok(root, "images", "-q").strip()


# -- failures --------------------------------------------------------------------------------------


def test_corrupted_blob_in_the_registry_fails_and_changes_nothing(
    registry: Registry, tmp_path: Path
) -> None:
    source, target = tmp_path / "source", tmp_path / "target"
    load_seeded(source, tmp_path, 6, "corrupt:1")
    name = f"{registry.address}/corrupt/img:1"
    ok(source, "tag", "corrupt:1", name)
    ok_process(source, "push", "-q", NO_TLS, name)
    require("skopeo")
    layers = registry_manifest(registry, "corrupt/img", "1")["layers"]
    victim = str(layers[1]["digest"])  # type: ignore[index]
    data = registry.blob_data_path(victim)
    content = bytearray(data.read_bytes())
    content[len(content) // 2] ^= 0xFF
    data.write_bytes(bytes(content))
    load_seeded(target, tmp_path, 7, "already:here")
    before = snapshot(target)
    line = assert_fails(cli_process(target, "pull", NO_TLS, name), victim)
    assert "content has digest" in line
    assert snapshot(target) == before
    assert ok(target, "system", "prune", "-f") == "Total reclaimed space: 0B\n"


@pytest.mark.parametrize(
    ("mode", "needles"),
    [
        ("error500", ("500 internal server error", "the disk caught fire")),
        ("truncate", ("downloading blob", "connection broken")),
    ],
)
def test_registry_errors_leave_the_store_unchanged(
    tmp_path: Path, mode: str, needles: tuple[str, ...]
) -> None:
    script = image_script(seeded_layers(8), mode=mode)
    root = tmp_path / "root"
    load_seeded(root, tmp_path, 9, "kept:1")
    before = snapshot(root)
    with fake_registry(script) as address:
        assert_fails(cli_process(root, "pull", NO_TLS, f"{address}/x/y:1"), *needles)
    assert snapshot(root) == before


def test_unreachable_unknown_and_bad_references(registry: Registry, tmp_path: Path) -> None:
    root = tmp_path / "root"
    load_seeded(root, tmp_path, 10, "local:1")
    before = snapshot(root)
    with unreachable() as down:
        assert_fails(
            cli_process(root, "pull", NO_TLS, f"{down}/a/b:1"), f"pulling {down}/a/b:1", "connect"
        )
        assert_fails(cli_process(root, "push", NO_TLS, "local:1", f"{down}/a/b:1"), "connect")
        assert_fails(cli_process(root, "pull", "--platform", "a/b/c/d", f"{down}/a:1"), "OS/ARCH")
    assert_fails(
        cli_process(root, "pull", NO_TLS, f"{registry.address}/no/such:1"), "manifest unknown"
    )
    assert_fails(cli_process(root, "pull", "lower/UPPER:1"), "must be lowercase")
    assert_fails(cli_process(root, "pull", "a//b"), "invalid reference format")
    assert_fails(cli_process(root, "push", NO_TLS, "no-such-image:1"), "no such image")
    assert_fails(cli_process(root, "pull", "--tls-verify=maybe", "x"), "true or false")
    # With --tls-verify=true a plain-HTTP registry is refused, even on 127.0.0.1 (which is
    # insecure by default, as in Docker: reached, and the manifest is not there).
    assert_fails(
        cli_process(root, "pull", "--tls-verify=true", f"{registry.address}/no/such:1"),
        "reaching registry",
    )
    assert_fails(cli_process(root, "pull", f"{registry.address}/no/such:1"), "manifest unknown")
    assert snapshot(root) == before


@pytest.mark.root
def test_a_disk_that_fills_during_pull(registry: Registry, tmp_path: Path) -> None:
    """ENOSPC while a layer streams in: one line, exit 125, nothing left behind."""
    import os
    import random

    from .imagebuild import layer_tar

    if os.geteuid() != 0:
        pytest.skip("needs uid 0 to mount a small tmpfs")
    source = tmp_path / "source"
    big = layer_tar({"big": random.Random(13).randbytes(6 << 20)})
    archive = tmp_path / "big.tar"
    write_docker_archive(archive, [big], tags=["big:1"], seed=13)
    ok(source, "load", "-q", "-i", str(archive))
    name = f"{registry.address}/full/disk:1"
    ok(source, "tag", "big:1", name)
    ok_process(source, "push", "-q", NO_TLS, name)
    small = tmp_path / "small"
    small.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(small)],
        capture_output=True,
        timeout=30,
        check=False,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs: {mounted.stderr.decode().strip()}")
    try:
        root = small / "root"
        ok(root, "images")
        before = snapshot(root)
        assert_fails(cli_process(root, "pull", NO_TLS, name), "no space left on device")
        assert snapshot(root) == before
    finally:
        subprocess.run(["umount", "-l", str(small)], capture_output=True, timeout=30, check=False)


# -- an image made by umoci: its last layer ends right after the file's data ----------------------


def _umoci_image(tmp_path: Path) -> tuple[Path, str]:
    """An OCI layout holding busybox plus one file added by ``umoci insert``, and its digest."""
    require("umoci", "skopeo")
    maker = tmp_path / "maker"
    ok(maker, "import", "builtin:busybox", "busybox")
    saved = tmp_path / "busybox.tar"
    ok(maker, "save", "--format", "oci-archive", "-o", str(saved), "busybox")
    layout = untar(saved, tmp_path / "layout")
    hello = tmp_path / "hello.txt"
    hello.write_text("hello from umoci\n")
    subprocess.run(
        ["umoci", "insert", "--image", f"{layout}:latest", str(hello), "/hello.txt"],
        check=True,
        capture_output=True,
        timeout=60,
    )
    index = json.loads((layout / "index.json").read_text())
    digest = index["manifests"][0]["digest"]
    manifest = json.loads((layout / "blobs" / "sha256" / digest[7:]).read_text())
    top = layout / "blobs" / "sha256" / manifest["layers"][-1]["digest"][7:]
    raw = gzip.decompress(top.read_bytes())
    assert len(raw) % 512 and raw.endswith(b"hello from umoci\n")  # no padding, no end blocks
    return layout, str(digest)


@pytest.mark.root
@pytest.mark.skipif(os.geteuid() != 0, reason="running the container needs uid 0")
def test_an_image_made_by_umoci_loads_runs_and_round_trips(
    registry: Registry, tmp_path: Path
) -> None:
    layout, manifest_digest = _umoci_image(tmp_path)
    sources = {"oci": layout}
    for kind in ("docker-archive", "oci-archive"):
        target = tmp_path / f"{kind}.tar"
        subprocess.run(
            ["skopeo", "copy", f"oci:{layout}:latest", f"{kind}:{target}:um/hello:1"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        sources[kind] = target
    diff_ids: set[tuple[str, ...]] = set()
    for kind, source in sources.items():
        root = tmp_path / f"root-{kind}"
        ok(root, "load", "-q", "-i", str(source))
        [image] = ok(root, "images", "-q").split()
        diff_ids.add(tuple(inspect(root, image)["RootFS"]["Layers"]))  # type: ignore[index]
    assert len(diff_ids) == 1  # every archive format gives the same layers

    root = tmp_path / "root-oci"
    [image] = ok(root, "images", "-q").split()
    status, out, err = cli_process(root, "run", "--rm", image, "cat", "/hello.txt")
    assert (status, out) == (0, "hello from umoci\n"), err

    # save gives back the manifest umoci wrote, byte for byte; so do push and pull.
    ok(root, "tag", image, "um/hello:1")
    saved = tmp_path / "saved.tar"
    ok(root, "save", "--format", "oci-archive", "-o", str(saved), "um/hello:1")
    again = untar(saved, tmp_path / "again")
    assert json.loads((again / "index.json").read_text())["manifests"][0]["digest"] == (
        manifest_digest
    )
    name = f"{registry.address}/um/hello:1"
    ok(root, "tag", image, name)
    pushed = ok_process(root, "push", NO_TLS, name).splitlines()[-1].split()[2]
    assert pushed == manifest_digest
    pulled = tmp_path / "pulled"
    ok_process(pulled, "pull", "-q", NO_TLS, name)
    assert inspect(pulled, name)["RootFS"] == inspect(root, image)["RootFS"]
    assert inspect(pulled, name)["RepoDigests"] == [f"{registry.address}/um/hello@{pushed}"]
