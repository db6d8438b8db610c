"""The streaming tar check that refuses truncated and corrupt layers before unpacking."""

from __future__ import annotations

import io
import random
import tarfile

import pytest

from pydock.errors import LayerInputError
from pydock.image.layertar import TarChecker


def make_tar(tar_format: int = tarfile.PAX_FORMAT) -> bytes:
    rng = random.Random(7)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tar_format) as tar:
        for index, size in enumerate([0, 1, 511, 512, 513, 5000]):
            info = tarfile.TarInfo(f"dir/{'long' * 30 if index == 4 else 'f'}{index}")
            info.size = size
            tar.addfile(info, io.BytesIO(rng.randbytes(size)))
        link = tarfile.TarInfo("link")
        link.type = tarfile.SYMTYPE
        link.linkname = "t" * 150
        tar.addfile(link)
        folder = tarfile.TarInfo("dir")
        folder.type = tarfile.DIRTYPE
        tar.addfile(folder)
    return out.getvalue()


def check(data: bytes, step: int = 4096) -> int:
    checker = TarChecker()
    for start in range(0, len(data), step):
        checker.feed(data[start : start + step])
    checker.finish()
    return checker.entries


@pytest.mark.parametrize("tar_format", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
@pytest.mark.parametrize("step", [1, 100, 512, 1 << 20])
def test_whole_archives_pass_in_any_chunking(tar_format: int, step: int) -> None:
    assert check(make_tar(tar_format), step) == 8


def test_archive_without_end_marker_passes_at_an_entry_boundary() -> None:
    data = make_tar()
    end = len(data.rstrip(b"\0"))
    end += -end % 512
    assert check(data[:end]) == 8


def _entry_ends(data: bytes) -> set[int]:
    """Offsets where an archive may end: after an entry's content, anywhere in its padding."""
    ends = set()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar.getmembers():
            content_end = member.offset_data + (member.size if member.isreg() else 0)
            ends.update(range(content_end, content_end + (-content_end % 512) + 1))
    return ends


def test_every_truncation_inside_the_entries_is_refused() -> None:
    data = make_tar()
    ends = _entry_ends(data)
    refused = 0
    for cut in range(1, max(ends), 37):
        if cut in ends:
            continue
        with pytest.raises(LayerInputError, match="truncated"):
            check(data[:cut], 300)
        refused += 1
    assert refused > 20


def test_an_archive_may_end_in_the_padding_after_an_entry() -> None:
    # umoci 0.4.7 writes layers that stop right after the last file's data.
    data = make_tar()
    cuts = [cut for cut in sorted(_entry_ends(data)) if cut % 512]
    assert len(cuts) > 500
    for cut in cuts[::50]:
        check(data[:cut], 300)


def test_an_extended_header_without_its_entry_is_truncated() -> None:
    data = make_tar()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        long_named = tar.getmembers()[4]
    assert long_named.offset_data - long_named.offset > 512  # it has a PAX header
    with pytest.raises(LayerInputError, match="truncated"):
        check(data[: long_named.offset_data - 512])  # the PAX header and its body, then the end


def test_corrupt_header_is_refused() -> None:
    data = bytearray(make_tar())
    with tarfile.open(fileobj=io.BytesIO(bytes(data))) as tar:
        third = tar.getmembers()[2].offset
    data[third + 10] ^= 0x20  # a byte of the third entry's name
    with pytest.raises(LayerInputError, match=f"corrupt tar header \\(at byte {third}\\)"):
        check(bytes(data))


def test_not_a_tar_and_empty_input() -> None:
    with pytest.raises(LayerInputError, match="not a tar archive"):
        check(b"hello world\n" * 100)
    with pytest.raises(LayerInputError, match="empty"):
        check(b"")


def test_pax_size_record_overrides_the_header_size() -> None:
    data = make_tar(tarfile.PAX_FORMAT)
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("big")
        info.size = 1000
        info.pax_headers = {"size": "1000"}
        tar.addfile(info, io.BytesIO(b"x" * 1000))
    assert check(out.getvalue()) == 1
    assert check(data) == 8
