"""A small deterministic tar writer for layer tars (ustar headers, PAX records when needed).

Only what a layer needs is written: no user or group names, no atime or ctime, a PAX record
only for what ustar cannot hold (long or non-ASCII names, sub-second mtimes, xattrs, large ids
or sizes). The same entries always give the same bytes.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from graphdriver.tarstream import BLK, CHR, DIR, FIFO, LINK, REG, SYMLINK

BLOCK = 512
RECORD = 20 * BLOCK
_ZERO = bytes(BLOCK)
_NS = 1_000_000_000
_MAX_OCTAL_7 = 0o7777777
_MAX_OCTAL_11 = 0o77777777777
_CHUNK = 1 << 20

__all__ = ["BLK", "CHR", "DIR", "FIFO", "LINK", "REG", "SYMLINK", "TarWriter"]


def _pax_record(key: str, value: bytes) -> bytes:
    body = key.encode() + b"=" + value + b"\n"
    length = len(body) + 2
    while True:
        record = str(length).encode() + b" " + body
        if len(record) == length:
            return record
        length = len(record)


def _octal(value: int, width: int) -> bytes:
    return b"%0*o\x00" % (width - 1, value)


def _split_ustar(name: bytes) -> tuple[bytes, bytes] | None:
    """(prefix, name) when ``name`` fits ustar's two fields, else ``None``."""
    if len(name) <= 100:
        return b"", name
    cut = name.find(b"/", len(name) - 101)
    while cut >= 0:
        if cut <= 155 and len(name) - cut - 1 <= 100 and cut > 0:
            return name[:cut], name[cut + 1 :]
        cut = name.find(b"/", cut + 1)
    return None


class TarWriter:
    """Writes entries to ``out``; call ``close`` to end the archive (the stream stays open)."""

    def __init__(self, out: BinaryIO) -> None:
        self._out = out
        self._written = 0
        self._buffer = bytearray()

    def _write(self, data: bytes) -> None:
        # Small pieces are gathered: a write call per header costs more than the header.
        self._buffer += data
        self._written += len(data)
        if len(self._buffer) >= _CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self._buffer:
            self._out.write(self._buffer)
            self._buffer = bytearray()

    def add(
        self,
        name: str,
        kind: bytes,
        *,
        mode: int,
        uid: int = 0,
        gid: int = 0,
        size: int = 0,
        mtime_ns: int = 0,
        linkname: str = "",
        devmajor: int = 0,
        devminor: int = 0,
        xattrs: dict[str, bytes] | None = None,
        content: BinaryIO | int | None = None,
    ) -> None:
        """Write one entry; regular files copy ``size`` bytes from ``content`` (file or fd)."""
        raw_name = name.encode("utf-8", "surrogateescape")
        raw_link = linkname.encode("utf-8", "surrogateescape")
        pax: list[bytes] = []
        split = _split_ustar(raw_name) if raw_name.isascii() else None
        if split is None:
            pax.append(_pax_record("path", raw_name))
            split = (b"", raw_name[:100])
        if len(raw_link) > 100 or not raw_link.isascii():
            pax.append(_pax_record("linkpath", raw_link))
        seconds, nanos = divmod(mtime_ns, _NS)
        if nanos or seconds < 0 or seconds > _MAX_OCTAL_11:
            text = f"{seconds}.{nanos:09d}".rstrip("0").rstrip(".") if nanos else str(seconds)
            pax.append(_pax_record("mtime", text.encode()))
        if uid > _MAX_OCTAL_7:
            pax.append(_pax_record("uid", str(uid).encode()))
        if gid > _MAX_OCTAL_7:
            pax.append(_pax_record("gid", str(gid).encode()))
        if size > _MAX_OCTAL_11:
            pax.append(_pax_record("size", str(size).encode()))
        for key in sorted(xattrs or ()):
            assert xattrs is not None
            pax.append(_pax_record("SCHILY.xattr." + key, xattrs[key]))
        if pax:
            body = b"".join(pax)
            pax_name = ("PaxHeaders/" + name.rsplit("/", 1)[-1]).encode("utf-8", "replace")[:100]
            self._header(pax_name, b"", b"x", 0o644, 0, 0, len(body), 0, b"", 0, 0)
            self._write(body)
            self._write(bytes(-len(body) % BLOCK))
        self._header(
            split[1],
            split[0],
            kind,
            mode,
            min(uid, _MAX_OCTAL_7),
            min(gid, _MAX_OCTAL_7),
            min(size, _MAX_OCTAL_11),
            max(0, min(seconds, _MAX_OCTAL_11)),
            raw_link[:100],
            devmajor,
            devminor,
        )
        if kind == REG and size:
            assert content is not None
            self._copy(content, size, name)

    def _header(
        self,
        name: bytes,
        prefix: bytes,
        kind: bytes,
        mode: int,
        uid: int,
        gid: int,
        size: int,
        mtime: int,
        linkname: bytes,
        devmajor: int,
        devminor: int,
    ) -> None:
        header = bytearray(
            b"".join(
                (
                    name.ljust(100, b"\x00"),
                    _octal(mode & 0o7777, 8),
                    _octal(uid, 8),
                    _octal(gid, 8),
                    _octal(size, 12),
                    _octal(mtime, 12),
                    b"        ",
                    kind,
                    linkname.ljust(100, b"\x00"),
                    b"ustar\x0000",
                    bytes(64),
                    _octal(devmajor, 8) if kind in (CHR, BLK) else bytes(8),
                    _octal(devminor, 8) if kind in (CHR, BLK) else bytes(8),
                    prefix.ljust(155, b"\x00"),
                    bytes(12),
                )
            )
        )
        header[148:156] = b"%06o\x00 " % sum(header)
        self._write(bytes(header))

    def _copy(self, content: BinaryIO | int, size: int, name: str) -> None:
        remaining = size
        while remaining:
            want = min(_CHUNK, remaining)
            chunk = os.read(content, want) if isinstance(content, int) else content.read(want)
            if not chunk:
                raise OSError(f"{name} shrank while it was being archived")
            self._write(chunk)
            remaining -= len(chunk)
        self._write(bytes(-size % BLOCK))

    def close(self) -> None:
        """End-of-archive blocks, padded to a whole record as GNU tar and tarfile do."""
        self._write(_ZERO * 2)
        self._write(bytes(-self._written % RECORD))
        self._flush()
