"""What ``apply_diff`` accepts: plain, gzip and zstd tars; anything corrupt is refused whole."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import random
from collections.abc import Callable

import pytest

import graphdriver

from .helpers import mounted, write
from .tarbuild import LayerTar, member_offsets
from .treesnap import assert_same_tree, snapshot

_rng = random.Random(7)
FILES = {
    "a": _rng.randbytes(1000),
    "dir/b": _rng.randbytes(20_000),
    "dir/c": _rng.randbytes(3000),
}
CONTENT_SIZE = sum(len(v) for v in FILES.values())


def good_tar() -> bytes:
    tar = LayerTar().file("a", FILES["a"]).dir("dir")
    tar.file("dir/b", FILES["dir/b"]).file("dir/c", FILES["dir/c"]).whiteout(".wh.old")
    return tar.getvalue()


def _zstd(data: bytes, *, streamed: bool) -> bytes:
    zstandard = pytest.importorskip("zstandard")
    compressor = zstandard.ZstdCompressor(level=3)
    if not streamed:
        return bytes(compressor.compress(data))
    # A streamed frame does not record the content size in its header.
    out = io.BytesIO()
    with compressor.stream_writer(out, closefd=False) as writer:
        writer.write(data)
    return out.getvalue()


@pytest.fixture
def layer(driver: graphdriver.Driver) -> str:
    driver.create("base", None)
    with mounted(driver, "base") as root:
        write(root / "old", b"removed by the layer")
        write(root / "dir" / "b", b"replaced by the layer")
    driver.create("layer", "base")
    return "layer"


ENCODINGS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "gzip-multimember": lambda data: gzip.compress(data[:4096]) + gzip.compress(data[4096:]),
    "zstd": lambda data: _zstd(data, streamed=False),
    "zstd-streamed": lambda data: _zstd(data, streamed=True),
}


@pytest.mark.parametrize("encoding", sorted(ENCODINGS))
def test_apply_encodings(driver: graphdriver.Driver, layer: str, encoding: str) -> None:
    blob = ENCODINGS[encoding](good_tar())
    assert driver.apply_diff(layer, "base", io.BytesIO(blob)) == CONTENT_SIZE
    with mounted(driver, layer) as root:
        for name, data in FILES.items():
            assert (root / name).read_bytes() == data, name
        assert not (root / "old").exists()


def _truncated_in_data() -> bytes:
    data = good_tar()
    offsets = {name: start for name, _header, start in member_offsets(data)}
    return data[: offsets["dir/b"] + 5000]


def _truncated_in_header() -> bytes:
    data = good_tar()
    headers = {name: header for name, header, _start in member_offsets(data)}
    return data[: headers["dir/c"] + 200]


def _bad_header_checksum() -> bytes:
    data = bytearray(good_tar())
    headers = {name: header for name, header, _start in member_offsets(bytes(data))}
    # Bytes 148..155 of a header block hold its checksum.
    data[headers["dir/c"] + 148 : headers["dir/c"] + 154] = b"000001"
    return bytes(data)


def _gzip_bad_crc() -> bytes:
    blob = bytearray(gzip.compress(good_tar(), mtime=0))
    # The trailer is CRC32 then size, little endian; the tar inside stays intact.
    blob[-8] ^= 0xFF
    return bytes(blob)


def _gzip_truncated() -> bytes:
    blob = gzip.compress(good_tar(), mtime=0)
    return blob[: len(blob) * 2 // 3]


def _gzip_corrupt_body() -> bytes:
    blob = bytearray(gzip.compress(good_tar(), mtime=0))
    middle = len(blob) // 2
    blob[middle : middle + 16] = bytes(16)
    return bytes(blob)


def _zstd_truncated() -> bytes:
    blob = _zstd(good_tar(), streamed=True)
    return blob[: len(blob) * 2 // 3]


def _garbage() -> bytes:
    rng = random.Random(11)
    blob = rng.randbytes(8192)
    # Not gzip, zstd, bzip2 or xz magic, so the driver reads it as a plain tar.
    return b"GARBAGE!" + blob


CORRUPT: dict[str, Callable[[], bytes]] = {
    "truncated-in-data": _truncated_in_data,
    "truncated-in-header": _truncated_in_header,
    "bad-header-checksum": _bad_header_checksum,
    "gzip-bad-crc": _gzip_bad_crc,
    "gzip-truncated": _gzip_truncated,
    "gzip-corrupt-body": _gzip_corrupt_body,
    "zstd-truncated": _zstd_truncated,
    "garbage": _garbage,
    "bzip2": lambda: bz2.compress(good_tar()),
    "xz": lambda: lzma.compress(good_tar()),
}


@pytest.mark.parametrize("case", sorted(CORRUPT))
def test_corrupt_input_refused(driver: graphdriver.Driver, layer: str, case: str) -> None:
    blob = CORRUPT[case]()
    with mounted(driver, layer) as root:
        before = snapshot(root, root_mtime=True)
    with pytest.raises(graphdriver.GraphDriverError) as info:
        driver.apply_diff(layer, "base", io.BytesIO(blob))
    assert not isinstance(info.value, graphdriver.LayerUnknownError)
    assert info.value.layer_id == layer and info.value.driver == driver.name
    assert f"layer {layer}: " in str(info.value)
    with mounted(driver, layer) as root:
        assert_same_tree(before, snapshot(root, root_mtime=True), f"layer after {case}")


@pytest.mark.parametrize("cut", ["no-end-blocks", "no-padding", "half-padding"])
def test_tar_that_ends_right_after_the_last_data_applies(
    driver: graphdriver.Driver, layer: str, cut: str
) -> None:
    # Some tools (umoci 0.4.7's insert) end a layer right after the last file's content.
    tar = LayerTar().file("a", FILES["a"]).dir("dir").file("dir/b", FILES["dir/b"])
    data = tar.file("dir/c", FILES["dir/c"]).getvalue()
    offsets = {name: start for name, _header, start in member_offsets(data)}
    last_end = offsets["dir/c"] + len(FILES["dir/c"])
    assert -last_end % 512 > 40, "the last file must end early in its last block"
    padded = last_end + (-last_end % 512)
    end = {"no-end-blocks": padded, "no-padding": last_end, "half-padding": last_end + 40}[cut]
    blob = data[:end]
    assert driver.apply_diff(layer, "base", io.BytesIO(blob)) == CONTENT_SIZE
    with mounted(driver, layer) as root:
        for name, content in FILES.items():
            assert (root / name).read_bytes() == content, name


def test_unknown_layer_error_names_the_layer(driver: graphdriver.Driver) -> None:
    with pytest.raises(graphdriver.LayerUnknownError) as info:
        driver.apply_diff("missing", None, io.BytesIO(good_tar()))
    assert info.value.layer_id == "missing"
    assert "missing" in str(info.value)


def test_empty_tar_applies_nothing(driver: graphdriver.Driver, layer: str) -> None:
    with mounted(driver, layer) as root:
        before = snapshot(root, root_mtime=True)
    assert driver.apply_diff(layer, "base", io.BytesIO(LayerTar().getvalue())) == 0
    with mounted(driver, layer) as root:
        assert_same_tree(before, snapshot(root, root_mtime=True), "layer after an empty tar")
