"""Manifests, indexes and platforms as OCI and Docker write them."""

from __future__ import annotations

import json

import pytest

from pydock.errors import ImageFormatError
from pydock.image import manifest as mf

DIGEST = "sha256:" + "a" * 64
OTHER = "sha256:" + "b" * 64


def _index(*platforms: tuple[str, str, str]) -> bytes:
    entries = [
        {
            "mediaType": mf.OCI_MANIFEST,
            "digest": "sha256:" + f"{n:x}" * 64,
            "size": 10,
            "platform": {"os": os_, "architecture": arch, **({"variant": v} if v else {})},
        }
        for n, (os_, arch, v) in enumerate(platforms, start=1)
    ]
    return json.dumps(
        {"schemaVersion": 2, "mediaType": mf.OCI_INDEX, "manifests": entries}
    ).encode()


def test_manifest_round_trip() -> None:
    config = mf.Descriptor(mf.OCI_CONFIG, DIGEST, 12)
    layers = [mf.Descriptor(mf.OCI_LAYER_GZIP, OTHER, 34)]
    data = mf.encode_manifest(config, layers, oci=True)
    parsed = mf.parse(data)
    assert isinstance(parsed, mf.Manifest) and parsed.is_oci
    assert parsed.config == config and parsed.layers == tuple(layers)
    docker = mf.parse(mf.encode_manifest(config, layers, oci=False))
    assert isinstance(docker, mf.Manifest) and docker.media_type == mf.DOCKER_MANIFEST


def test_media_type_from_the_header_when_the_body_has_none() -> None:
    body = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    assert isinstance(mf.parse(body, mf.DOCKER_LIST + "; charset=utf-8"), mf.Index)


@pytest.mark.parametrize(
    ("document", "needle"),
    [
        (b"not json", "not JSON"),
        (b"[]", "not a JSON object"),
        (json.dumps({"schemaVersion": 1, "fsLayers": []}).encode(), "schema 1"),
        (json.dumps({"mediaType": "text/plain"}).encode(), "unsupported media type"),
        (json.dumps({"mediaType": mf.OCI_MANIFEST, "config": {}, "layers": []}).encode(), "digest"),
        (
            json.dumps(
                {
                    "mediaType": mf.OCI_MANIFEST,
                    "config": {"digest": "md5:x", "size": 1},
                    "layers": [],
                }
            ).encode(),
            "sha256",
        ),
    ],
)
def test_bad_documents(document: bytes, needle: str) -> None:
    with pytest.raises(ImageFormatError, match=needle):
        mf.parse(document)


def test_platform_selection() -> None:
    index = mf.parse(
        _index(("linux", "amd64", ""), ("linux", "arm64", "v8"), ("linux", "arm", "v7"))
    )
    assert isinstance(index, mf.Index)
    assert mf.select(index, mf.Platform.parse("linux/amd64")).digest == "sha256:" + "1" * 64
    assert mf.select(index, mf.Platform.parse("arm64")).digest == "sha256:" + "2" * 64
    assert mf.select(index, mf.Platform.parse("linux/arm/v7")).digest == "sha256:" + "3" * 64
    with pytest.raises(ImageFormatError, match=r"no manifest for linux/arm/v6 \(has: "):
        mf.select(index, mf.Platform.parse("linux/arm/v6"))
    with pytest.raises(ImageFormatError, match="OS/ARCH"):
        mf.Platform.parse("linux/")
    assert str(mf.Platform.parse("Linux/ARM64/v8")) == "linux/arm64/v8"
    assert mf.Platform.default().os == "linux"
