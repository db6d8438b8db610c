"""A small streaming tar reader for layer tars: ustar, PAX and GNU long names.

``tarfile`` spends most of an unpack parsing headers (it handles every tar dialect ever made);
layer tars use three of them, so this reader parses exactly those, checks every header's
checksum, and hands out each entry's content as a bounded stream. Sparse and multi-volume
entries are refused with a clear error rather than misread, and so are negative sizes and
extended headers over 1 MiB, so that no input makes the reader loop or hold it all in memory.

Where a stream may end: at the end-of-archive zero blocks, or (as Go's archive/tar, and so
Docker, podman and umoci, accept) right after an entry, with or without the padding of its
last block. A stream that ends inside a header, inside an entry's content, or between an
extended header and the entry it describes is truncated.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from graphdriver.errors import ArchiveError

BLOCK = 512

REG = b"0"
AREG = b"\x00"
LINK = b"1"
SYMLINK = b"2"
CHR = b"3"
BLK = b"4"
DIR = b"5"
FIFO = b"6"
CONT = b"7"
_PAX = b"x"
_PAX_GLOBAL = b"g"
_GNU_LONGNAME = b"L"
_GNU_LONGLINK = b"K"
_REGULAR = (REG, AREG, CONT)
_META = (_PAX, _PAX_GLOBAL, _GNU_LONGNAME, _GNU_LONGLINK)
_ZERO_BLOCK = bytes(BLOCK)
_KERNEL_COPY_MIN = 1 << 20
_META_LIMIT = 1 << 20  # PAX and GNU long-name bodies are read into memory (Go's limit too)
_SIZE_LIMIT = 1 << 44  # 16 TiB: beyond it a size field is garbage, not a file
_TRUNCATED = "reading layer tar: unexpected end of data (truncated stream)"


@dataclass
class Entry:
    """One archive member, with its header fields decoded."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: dict[str, bytes] = field(default_factory=dict)

    @property
    def is_regular(self) -> bool:
        return self.type in _REGULAR

    @property
    def is_dir(self) -> bool:
        return self.type == DIR


class TarReader:
    """Iterates a tar stream; read an entry's content with ``read_content`` before moving on."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self._fileno = _regular_fileno(stream)
        self._remaining = 0  # content bytes of the current entry not yet read
        self._padding = 0
        self._ended = False  # the stream ended in the padding after an entry's content

    def _read_exact(self, size: int) -> bytes:
        data = self._stream.read(size)
        if len(data) == size:
            return data
        parts = [data]
        got = len(data)
        while got < size:
            more = self._stream.read(size - got)
            if not more:
                raise ArchiveError(_TRUNCATED)
            parts.append(more)
            got += len(more)
        return b"".join(parts)

    def read_content(self, size: int) -> bytes:
        """Up to ``size`` bytes of the current entry's content (b"" at its end)."""
        size = min(size, self._remaining)
        if size <= 0:
            return b""
        data = self._read_exact(size)
        self._remaining -= len(data)
        return data

    def copy_content(self, fd: int) -> bool:
        """Copy the rest of a large entry to ``fd`` inside the kernel when the tar is a plain
        file (``copy_file_range``: the bytes never pass through Python). ``False`` when that is
        not possible and the caller should read the content instead."""
        if self._remaining < _KERNEL_COPY_MIN or self._fileno is None:
            return False
        offset = self._stream.tell()
        remaining = self._remaining
        try:
            while remaining:
                done = os.copy_file_range(self._fileno, fd, remaining, offset)
                if done == 0:
                    raise ArchiveError("reading layer tar: unexpected end of data (truncated)")
                offset += done
                remaining -= done
        except OSError as exc:
            if remaining != self._remaining:
                raise
            if exc.errno in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                self._fileno = None
                return False
            raise
        finally:
            copied = self._remaining - remaining
            self._stream.seek(self._stream.tell() + copied)
            self._remaining = remaining
        return True

    def _skip_rest(self) -> None:
        while self._remaining:
            self.read_content(1 << 20)
        while self._padding:
            skipped = len(self._stream.read(self._padding))
            if not skipped:  # the stream ends after the content, without its padding
                self._ended = True
            self._padding = 0 if self._ended else self._padding - skipped

    def __iter__(self) -> Iterator[Entry]:
        pax: dict[str, bytes] = {}
        long_name: str | None = None
        long_link: str | None = None
        described = False  # an extended header waits for the entry it describes
        while True:
            self._skip_rest()
            header = b"" if self._ended else self._stream.read(BLOCK)
            if len(header) < BLOCK:
                if header:
                    header += self._read_exact(BLOCK - len(header))
                elif described:
                    raise ArchiveError(_TRUNCATED)
                else:
                    return  # end of stream without the zero blocks: accepted, as Docker does
            if header == _ZERO_BLOCK:
                return
            _verify_checksum(header)
            kind = header[156:157]
            if kind in _META:
                size = _number(header[124:136], "size")
                if not 0 <= size <= _META_LIMIT:
                    raise ArchiveError(
                        f"reading layer tar: extended header of {size} bytes (limit 1 MiB)"
                    )
                described = kind != _PAX_GLOBAL
                self._remaining = size
                self._padding = -size % BLOCK
                body = self.read_content(size)
                self._skip_rest()
                if kind == _PAX:
                    pax.update(_parse_pax(body))
                elif kind == _GNU_LONGNAME:
                    long_name = body.rstrip(b"\x00").decode("utf-8", "surrogateescape")
                elif kind == _GNU_LONGLINK:
                    long_link = body.rstrip(b"\x00").decode("utf-8", "surrogateescape")
                continue
            entry = _parse_header(header)
            self._remaining = entry.size
            self._padding = -entry.size % BLOCK
            if entry.type not in (*_REGULAR, LINK, SYMLINK, CHR, BLK, DIR, FIFO):
                raise ArchiveError(
                    f"reading layer tar: entry {entry.name!r} has unsupported type {entry.type!r}"
                )
            if long_name is not None:
                entry.name = long_name
            if long_link is not None:
                entry.linkname = long_link
            if pax:
                _apply_pax(entry, pax)
                self._remaining = entry.size
                self._padding = -entry.size % BLOCK
            if not 0 <= entry.size <= _SIZE_LIMIT:
                raise ArchiveError(
                    f"reading layer tar: entry {entry.name!r} has an impossible size {entry.size}"
                )
            if entry.uid < 0 or entry.gid < 0:
                raise ArchiveError(f"reading layer tar: entry {entry.name!r} has a negative owner")
            if entry.type in (LINK, SYMLINK, DIR, CHR, BLK, FIFO):
                # These carry no content even if a writer filled in a size.
                self._skip_rest()
                entry.size = 0
            pax = {}
            long_name = long_link = None
            described = False
            yield entry


def _regular_fileno(stream: BinaryIO) -> int | None:
    try:
        fd = stream.fileno()
        if not stat.S_ISREG(os.fstat(fd).st_mode) or not stream.seekable():
            return None
    except (OSError, AttributeError, ValueError):
        return None
    return fd


_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")


def _number(field_: bytes, what: str) -> int:
    try:
        # Fast path: the usual zero-padded octal closed by one NUL or space.
        return int(field_[:-1], 8)
    except ValueError:
        pass
    if field_ and field_[0] & 0x80:  # base-256 (GNU) for values that do not fit in octal
        value = int.from_bytes(field_, "big", signed=False) & ~(0x80 << (8 * (len(field_) - 1)))
        if field_[0] & 0x40:
            value -= 1 << (8 * len(field_) - 1)
        return value
    text = field_.split(b"\x00", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError as exc:
        raise ArchiveError(f"reading layer tar: bad {what} field {field_!r} in header") from exc


def _string(field_: bytes) -> str:
    end = field_.find(b"\x00")
    return (field_ if end < 0 else field_[:end]).decode("utf-8", "surrogateescape")


def _verify_checksum(header: bytes) -> None:
    try:
        stored = int(header[148:154], 8)  # six digits, NUL, space: the usual layout
    except ValueError:
        stored = _number(header[148:156], "checksum")
    # adler32's low half is 1 + (sum of the bytes) mod 65521: the tar checksum (a plain byte sum
    # of at most 130560) computed in C rather than a Python loop over 512 ints. It accepts a
    # checksum off by exactly 65521, which no corruption worth catching produces.
    low = (zlib.adler32(header) & 0xFFFF) - 1 - sum(header[148:156]) + 256
    if (stored - low) % 65521 == 0 and 0 <= stored <= 512 * 255:
        return
    signed = sum(b - 256 if b > 127 else b for b in header[:148] + header[156:]) + 256
    if stored != signed:
        raise ArchiveError("reading layer tar: bad header checksum (corrupt or not a tar)")


def _parse_header(header: bytes) -> Entry:
    (name_f, mode_f, uid_f, gid_f, size_f, mtime_f, _chk, kind, link_f, magic, version,
     _uname, _gname, major_f, minor_f, prefix_f) = _HEADER.unpack(header)  # fmt: skip
    name = _string(name_f)
    is_ustar = magic[:5] == b"ustar"
    if is_ustar and prefix_f[0] and version != b" \x00":  # GNU tar uses the field otherwise
        name = f"{_string(prefix_f)}/{name}"
    devmajor = devminor = 0
    if kind in (CHR, BLK):
        devmajor, devminor = _number(major_f, "devmajor"), _number(minor_f, "devminor")
    return Entry(
        name=name,
        type=kind if kind != b"\x00" else AREG,
        mode=_number(mode_f, "mode"),
        uid=_number(uid_f, "uid"),
        gid=_number(gid_f, "gid"),
        size=_number(size_f, "size"),
        mtime_ns=_number(mtime_f, "mtime") * 1_000_000_000,
        linkname=_string(link_f) if link_f[0] else "",
        devmajor=devmajor,
        devminor=devminor,
    )


def _parse_pax(body: bytes) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(body):
        if body[pos] == 0:
            break
        space = body.find(b" ", pos)
        if space < 0:
            raise ArchiveError("reading layer tar: malformed PAX header")
        try:
            length = int(body[pos:space])
        except ValueError as exc:
            raise ArchiveError("reading layer tar: malformed PAX record length") from exc
        record = body[space + 1 : pos + length]
        if length <= 0 or not record.endswith(b"\n") or b"=" not in record:
            raise ArchiveError("reading layer tar: malformed PAX record")
        key, _, value = record[:-1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return records


def _pax_int(value: bytes, key: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise ArchiveError(f"reading layer tar: bad PAX {key} {value!r}") from exc


def _apply_pax(entry: Entry, pax: dict[str, bytes]) -> None:
    for key, value in pax.items():
        if key == "path":
            entry.name = value.decode("utf-8", "surrogateescape")
        elif key == "linkpath":
            entry.linkname = value.decode("utf-8", "surrogateescape")
        elif key == "size":
            entry.size = _pax_int(value, key)
        elif key == "uid":
            entry.uid = _pax_int(value, key)
        elif key == "gid":
            entry.gid = _pax_int(value, key)
        elif key == "mtime":
            entry.mtime_ns = _pax_time(value)
        elif key.startswith("SCHILY.xattr."):
            entry.xattrs[key[len("SCHILY.xattr.") :]] = value
        elif key.startswith("GNU.sparse."):
            raise ArchiveError(f"reading layer tar: sparse entry {entry.name!r} is not supported")


def _pax_time(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    negative = text.startswith("-")
    seconds, _, fraction = text.lstrip("-").partition(".")
    try:
        whole = int(seconds or "0")
        nanos = int((fraction + "000000000")[:9]) if fraction else 0
    except ValueError as exc:
        raise ArchiveError(f"reading layer tar: bad PAX mtime {text!r}") from exc
    total = whole * 1_000_000_000 + nanos
    return -total if negative else total
