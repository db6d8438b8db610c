"""The layer tar reader: where a stream may end, and sizes that must never be believed."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from graphdriver import ArchiveError
from graphdriver.tarstream import TarReader

pytestmark = pytest.mark.timeout(20)  # the bug these guard against is a loop without end


def _tar(sizes: list[int], *, long_name: bool = False) -> bytes:
    rng = random.Random(11)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for index, size in enumerate(sizes):
            name = ("n" * 120 if long_name else "f") + str(index)
            info = tarfile.TarInfo(name)
            info.size = size
            tar.addfile(info, io.BytesIO(rng.randbytes(size)))
    return out.getvalue()


def _read_all(data: bytes) -> list[tuple[str, bytes]]:
    reader = TarReader(io.BytesIO(data))
    return [(entry.name, reader.read_content(1 << 30)) for entry in reader]


def _with_checksum(block: bytearray) -> bytes:
    block[148:156] = b" " * 8
    block[148:156] = b"%06o\0 " % sum(block)
    return bytes(block[:512])


def test_a_stream_may_end_anywhere_in_the_last_entry_padding() -> None:
    data = _tar([700, 1000])
    whole = _read_all(data)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    content_end = last.offset_data + last.size
    for cut in range(content_end, content_end + (-content_end % 512) + 1):
        assert _read_all(data[:cut]) == whole


@pytest.mark.parametrize("where", ["header", "content", "after extended header"])
def test_a_stream_that_ends_inside_an_entry_is_truncated(where: str) -> None:
    data = _tar([700, 1000], long_name=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        last = tar.getmembers()[-1]
    cut = {
        "header": last.offset_data - 100,
        "content": last.offset_data + 999,
        "after extended header": last.offset_data - 512,
    }[where]
    with pytest.raises(ArchiveError, match="truncated"):
        _read_all(data[:cut])


@pytest.mark.parametrize(
    "size_field", [b"\xff" * 12, b"\xc0" + b"\0" * 10 + b"\x05"], ids=["base256-minus1", "neg5"]
)
def test_a_negative_size_is_refused_not_looped_on(size_field: bytes) -> None:
    data = bytearray(_tar([10]))
    data[124:136] = size_field
    data[:512] = _with_checksum(data[:512])
    with pytest.raises(ArchiveError, match="impossible size"):
        _read_all(bytes(data))


def test_a_negative_pax_size_is_refused() -> None:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"size": "-1"}
        tar.addfile(info, io.BytesIO(b""))
    with pytest.raises(ArchiveError, match="impossible size -1"):
        _read_all(out.getvalue())


def test_an_extended_header_over_the_limit_is_refused() -> None:
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = tarfile.XHDTYPE
    header.size = 1 << 30
    block = bytearray(header.tobuf(format=tarfile.USTAR_FORMAT))
    with pytest.raises(ArchiveError, match="extended header of 1073741824 bytes"):
        _read_all(bytes(block) + bytes(4096))
