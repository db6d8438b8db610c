"""``images --format json``: one JSON object per line with Docker's field names, each field
checked against a value written out here (sizes from the bytes the test put in the layers, the
creation time from the image config the test wrote)."""

from __future__ import annotations

import datetime as dt
import json
import random
from pathlib import Path

import pytest

import graphdriver

from .imagebuild import layer_tar, write_docker_archive
from .pydockrun import cli_process, ok

pytestmark = pytest.mark.skipif(
    "vfs" not in graphdriver.registered(), reason="vfs driver not installed"
)

# imagebuild.config_for writes this creation time into every config.
CREATED = dt.datetime(2024, 2, 3, 4, 5, 6, tzinfo=dt.UTC)
FIELDS = {"ID", "Repository", "Tag", "Digest", "CreatedAt", "CreatedSince", "Size"}


def since(created: dt.datetime) -> str:
    """Docker's age of a date more than two years back: whole years of 365 days."""
    hours = (dt.datetime.now(dt.UTC) - created).total_seconds() / 3600
    assert hours >= 2 * 365 * 24, "the fixture date must lie more than two years back"
    return f"{int(hours / 24 / 365)} years ago"


def test_images_format_json_field_by_field(tmp_path: Path) -> None:
    rng = random.Random(71)
    big = layer_tar({"a/big": rng.randbytes(1_000_000)})
    small = layer_tar({"b/small": rng.randbytes(250_000)})
    tiny = layer_tar({"c/tiny": rng.randbytes(999)})
    root = tmp_path / "root"
    two = write_docker_archive(tmp_path / "two.tar", [big, small], tags=["app:1.0"], seed=1)
    one = write_docker_archive(tmp_path / "one.tar", [tiny], tags=[], seed=2)
    ok(root, "load", "-q", "-i", str(tmp_path / "two.tar"))
    ok(root, "load", "-q", "-i", str(tmp_path / "one.tar"))
    ok(root, "tag", "app:1.0", "registry.example:5000/team/app:beta")

    status, out, err = cli_process(root, "images", "--format", "json")
    assert (status, err) == (0, "")
    rows = [json.loads(line) for line in out.splitlines()]
    assert all(set(row) == FIELDS for row in rows), rows
    by_name = {(row["Repository"], row["Tag"]): row for row in rows}
    assert sorted(by_name) == [
        ("<none>", "<none>"),
        ("app", "1.0"),
        ("registry.example:5000/team/app", "beta"),
    ]
    app, other, untagged = (
        by_name["app", "1.0"],
        by_name["registry.example:5000/team/app", "beta"],
        by_name["<none>", "<none>"],
    )
    assert app["ID"] == other["ID"] == two.config[7:19]
    assert untagged["ID"] == one.config[7:19]
    assert app["Size"] == other["Size"] == "1.25MB"  # 1,000,000 + 250,000 bytes of content
    assert untagged["Size"] == "999B"
    for row in rows:
        assert row["Digest"] == "<none>"  # loaded, never pulled: no repository digest
        assert row["CreatedAt"] == "2024-02-03 04:05:06 +0000 UTC"
        assert row["CreatedSince"] == since(CREATED)
    # The table shows the same rows, in the same order.
    table = ok(root, "images").splitlines()
    assert table[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert [line.split()[:3] for line in table[1:]] == [
        [row["Repository"], row["Tag"], row["ID"]] for row in rows
    ]
