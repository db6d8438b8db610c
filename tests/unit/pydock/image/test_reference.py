"""Image references normalised as Docker does."""

from __future__ import annotations

import pytest

from pydock.errors import InvalidReferenceError
from pydock.image.reference import parse_reference

DIGEST = "sha256:" + "a" * 64


@pytest.mark.parametrize(
    ("text", "full", "familiar"),
    [
        ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
        ("library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
        ("index.docker.io/x/y:1", "docker.io/x/y:1", "x/y:1"),
        ("me/app:v1.0-rc_1", "docker.io/me/app:v1.0-rc_1", "me/app:v1.0-rc_1"),
        ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
        ("localhost/x:t", "localhost/x:t", "localhost/x:t"),
        ("quay.io/a/b/c:1.0", "quay.io/a/b/c:1.0", "quay.io/a/b/c:1.0"),
        ("a__b-c_d/e.f", "docker.io/a__b-c_d/e.f:latest", "a__b-c_d/e.f:latest"),
        (f"x@{DIGEST}", f"docker.io/library/x@{DIGEST}", f"x@{DIGEST}"),
    ],
)
def test_normalisation(text: str, full: str, familiar: str) -> None:
    ref = parse_reference(text)
    assert str(ref) == full
    assert ref.familiar == familiar


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "invalid reference format"),
        ("BusyBox", "must be lowercase"),
        ("a:", "invalid tag"),
        ("a:-x", "invalid tag"),
        ("a:" + "t" * 129, "invalid tag"),
        ("a:b:c", "invalid reference format"),
        ("a//b", "invalid reference format"),
        ("-a", "invalid reference format"),
        ("a b", "invalid reference format"),
        ("a_/b", "invalid reference format"),
        ("a__b.c/x", "invalid registry domain"),
        ("a@sha256:zz", "invalid digest"),
        ("f" * 64, "64-byte hexadecimal"),
        ("x/" + "a" * 250, "not be more than 255"),
    ],
)
def test_bad_references(text: str, why: str) -> None:
    with pytest.raises(InvalidReferenceError, match=why):
        parse_reference(text)


def test_no_default_tag_when_asked() -> None:
    assert parse_reference("busybox", default_tag=False).tag is None
