"""Detect a layer stream's compression by its magic bytes and decompress it while streaming."""

from __future__ import annotations

import enum
import gzip
import io
import zlib
from typing import BinaryIO, cast

import zstandard

from graphdriver.errors import ArchiveError


class Compression(enum.StrEnum):
    NONE = "none"
    GZIP = "gzip"
    ZSTD = "zstd"


_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
# Formats we recognise but do not read: named in the error instead of "not a tar".
_UNSUPPORTED = {b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x04\x22\x4d\x18": "lz4"}


class _Prefixed(io.RawIOBase):
    """A raw stream that yields ``prefix`` and then the rest of ``stream``."""

    def __init__(self, prefix: bytes, stream: BinaryIO) -> None:
        self._prefix = prefix
        self._stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        view = memoryview(buffer).cast("B")
        if self._prefix:
            n = min(len(view), len(self._prefix))
            view[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        data = self._stream.read(len(view))
        view[: len(data)] = data
        return len(data)


class _GuardedReader(io.RawIOBase):
    """Turns decompressor failures (bad CRC, corrupt frame) into ``ArchiveError``."""

    def __init__(self, inner: BinaryIO, kind: Compression) -> None:
        self._inner = inner
        self._kind = kind

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        try:
            data = self._inner.read(len(buffer))
        except (OSError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise ArchiveError(f"reading {self._kind} layer stream: {exc}") from exc
        view = memoryview(buffer).cast("B")
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        self._inner.close()
        super().close()


class _ZstdReader(io.RawIOBase):
    """Decompresses concatenated zstd frames; a stream that ends inside a frame is an error
    (the library's own stream reader reports such a stream as a clean end)."""

    def __init__(self, source: BinaryIO) -> None:
        self._source = source
        self._context = zstandard.ZstdDecompressor()
        self._frame = self._context.decompressobj()
        self._in_frame = False
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: memoryview | bytearray) -> int:  # type: ignore[override]
        while not self._pending:
            chunk = self._source.read(1 << 20)
            if not chunk:
                if self._in_frame:
                    raise ArchiveError("reading zstd layer stream: truncated (frame incomplete)")
                return 0
            self._pending = self._feed(chunk)
        view = memoryview(buffer).cast("B")
        n = min(len(view), len(self._pending))
        view[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def _feed(self, chunk: bytes) -> bytes:
        out = []
        while chunk:
            self._in_frame = True
            out.append(self._frame.decompress(chunk))
            if not self._frame.eof:
                break
            chunk = self._frame.unused_data
            self._frame = self._context.decompressobj()
            self._in_frame = False
        return b"".join(out)


def detect(head: bytes) -> Compression:
    """Compression of a stream that starts with ``head``; ``ArchiveError`` if unsupported."""
    if head.startswith(_GZIP_MAGIC):
        return Compression.GZIP
    if head.startswith(_ZSTD_MAGIC):
        return Compression.ZSTD
    for magic, name in _UNSUPPORTED.items():
        if head.startswith(magic):
            raise ArchiveError(f"unsupported layer compression {name} (use plain, gzip or zstd)")
    return Compression.NONE


def open_decompressed(stream: BinaryIO) -> BinaryIO:
    """A reader of ``stream``'s uncompressed bytes (plain, gzip or zstd, by magic bytes)."""
    raw: BinaryIO
    peek = getattr(stream, "peek", None)
    if peek is not None:
        head = peek(6)[:6]  # a buffered file: look without consuming, then read it directly
        raw = stream
    elif stream.seekable():
        start = stream.tell()
        head = _read_head(stream, 6)
        stream.seek(start)
        raw = stream
    else:
        head = _read_head(stream, 6)
        raw = cast(BinaryIO, io.BufferedReader(_Prefixed(head, stream), buffer_size=1 << 20))
    kind = detect(head)
    if kind is Compression.NONE:
        return raw
    inner: BinaryIO
    if kind is Compression.GZIP:
        inner = cast(BinaryIO, gzip.GzipFile(fileobj=raw, mode="rb"))
    else:
        inner = cast(BinaryIO, io.BufferedReader(_ZstdReader(raw), buffer_size=1 << 20))
    return cast(BinaryIO, io.BufferedReader(_GuardedReader(inner, kind), buffer_size=1 << 20))


def _read_head(stream: BinaryIO, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head
