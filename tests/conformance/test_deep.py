"""Deep chains of layers: the top of a long chain shows every file of every layer below."""

from __future__ import annotations

import io
import random

import pytest

import graphdriver

from .helpers import mounted
from .tarbuild import LayerTar


def _content(index: int) -> bytes:
    return random.Random(index).randbytes(64 + index % 200)


def _visible(upto: int, keep_every: int) -> list[int]:
    """Layer files the layer ``upto`` shows: every ``keep_every``-th, and its own."""
    kept = [k for k in range(1, upto + 1) if k % keep_every == 0]
    return sorted({*kept, upto}) if upto else []


def _build_chain(driver: graphdriver.Driver, count: int, keep_every: int) -> list[str]:
    """``count`` layers on a base; layer ``k`` adds ``/layers/k`` and rewrites ``/top``.

    A file that is not one of every ``keep_every`` is whited out by the next layer, so a
    full-copy driver does not hold count squared files, and deletions are tested at every
    depth too.
    """
    driver.create("layer-0000", None)
    with mounted(driver, "layer-0000") as root:
        (root / "layers").mkdir()
        (root / "base-file").write_bytes(b"from the base")
    ids = ["layer-0000"]
    for k in range(1, count + 1):
        layer_id = f"layer-{k:04d}"
        driver.create(layer_id, ids[-1])
        data = _content(k)
        tar = LayerTar()
        if k > 1 and (k - 1) % keep_every:
            tar.whiteout(f"layers/.wh.{k - 1:04d}")
        tar.file(f"layers/{k:04d}", data).file("top", str(k).encode())
        size = driver.apply_diff(layer_id, ids[-1], io.BytesIO(tar.getvalue()))
        assert size == len(data) + len(str(k)), f"apply_diff of {layer_id} returned {size}"
        ids.append(layer_id)
    return ids


def _check_layer(driver: graphdriver.Driver, layer_id: str, upto: int, keep_every: int) -> None:
    with mounted(driver, layer_id) as root:
        assert (root / "base-file").read_bytes() == b"from the base"
        assert (root / "top").read_bytes() == str(upto).encode()
        wanted = _visible(upto, keep_every)
        names = sorted(p.name for p in (root / "layers").iterdir())
        assert names == [f"{k:04d}" for k in wanted]
        for k in wanted:
            assert (root / "layers" / f"{k:04d}").read_bytes() == _content(k), f"layer {k}"


def _check_chain(driver: graphdriver.Driver, ids: list[str], keep_every: int) -> None:
    count = len(ids) - 1
    _check_layer(driver, ids[-1], count, keep_every)
    # A layer in the middle sees nothing of the layers above it.
    _check_layer(driver, ids[count // 2 + 1], count // 2 + 1, keep_every)
    assert len(driver.list_layers()) == count + 1


def test_deep_layer_read_128(driver: graphdriver.Driver) -> None:
    _check_chain(driver, _build_chain(driver, 128, keep_every=1), keep_every=1)


@pytest.mark.slow
def test_deep_layer_read_500(driver: graphdriver.Driver) -> None:
    _check_chain(driver, _build_chain(driver, 500, keep_every=10), keep_every=10)
