"""Check, while it streams past, that a byte stream is a whole tar archive.

pydock hashes and stores a layer before any driver sees it; checking the headers in the same
pass means a truncated or corrupt tar is refused before a layer row or directory exists.
Checked: every header's checksum, that each entry's content is all there (sizes from the
header, base-256 sizes and PAX ``size`` records included). An archive may end with the
end-of-archive zero blocks or, as Go's reader and Docker accept, right after an entry's
content, with or without the padding of its last block; never between an extended header and
the entry it describes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import BinaryIO

from graphdriver.compression import open_decompressed
from pydock.errors import LayerInputError
from pydock.image.content import CHUNK_SIZE, ContentStore, Descriptor

BLOCK = 512
# Entry types whose size field does not announce content (as in Go's archive/tar).
_HEADER_ONLY = frozenset(b"123456")
_PAX_TYPES = frozenset(b"xg")
_GNU_META = frozenset(b"LK")
_PAX_LIMIT = 1 << 20


class TarChecker:
    """Feed the archive's bytes in order with :meth:`feed`, then call :meth:`finish`."""

    def __init__(self) -> None:
        self._buffer = bytearray()
        self._skip = 0  # content and padding bytes still to pass
        self._padding = 0  # how many of the last bytes of _skip are padding
        self._described = False  # an extended header waits for its entry
        self._pax_body: bytearray | None = None
        self._pax_left = 0
        self._size_override: int | None = None
        self._current = ""
        self._ended = False
        self._offset = 0  # bytes checked so far
        self._header_start = 0
        self.entries = 0
        self.total = 0

    def feed(self, data: bytes) -> None:
        """Check the next bytes of the archive."""
        self.total += len(data)
        view = memoryview(data)
        while view and not self._ended:
            if self._pax_body is not None:
                take = min(self._pax_left, len(view))
                self._pax_body += view[:take]
                self._pax_left -= take
                self._skip -= take
                if not self._pax_left:
                    self._size_override = _pax_size(bytes(self._pax_body), self._current)
                    self._pax_body = None
            elif self._skip:
                take = min(self._skip, len(view))
                self._skip -= take
            else:
                if not self._buffer:
                    self._header_start = self._offset
                take = min(BLOCK - len(self._buffer), len(view))
                self._buffer += view[:take]
                if len(self._buffer) == BLOCK:
                    self._header(bytes(self._buffer))
                    self._buffer.clear()
            self._offset += take
            view = view[take:]

    def finish(self) -> None:
        """Raise ``LayerInputError`` unless the archive ended where an archive may end."""
        if self.total == 0:
            raise LayerInputError("the input is empty")
        if self._ended:
            return
        content_left = self._skip > self._padding or self._pax_body is not None
        if self._buffer or content_left or self._described:
            raise LayerInputError(f"tar archive is truncated (in entry {self._current!r})")

    def _header(self, block: bytes) -> None:
        if block == bytes(BLOCK):
            self._ended = True
            return
        stored = _number(block[148:156])
        unsigned = sum(block[:148]) + 8 * 0x20 + sum(block[156:])
        signed = unsigned - 2 * sum(1 for byte in block[:148] + block[156:] if byte > 127)
        if stored is None or stored not in (unsigned, signed):
            what = "not a tar archive" if self.entries == 0 else "corrupt tar header"
            raise LayerInputError(f"{what} (at byte {self._header_start})")
        kind = block[156]
        size = _number(block[124:136])
        self._current = self._name(block)
        if size is None or size < 0:
            raise LayerInputError(f"bad size in tar header of {self._current!r}")
        if kind in _PAX_TYPES:
            if size > _PAX_LIMIT:
                raise LayerInputError("tar extended header is too large")
            if kind == ord("x") and size:
                self._pax_body = bytearray()
                self._pax_left = size
            self._described = kind == ord("x")
            self._skip, self._padding = _padded(size), _padded(size) - size
            return
        if self._size_override is not None:
            size, self._size_override = self._size_override, None
        self.entries += kind not in _GNU_META
        self._described = kind in _GNU_META
        if kind in _HEADER_ONLY:
            size = 0
        self._skip, self._padding = _padded(size), _padded(size) - size

    @staticmethod
    def _name(block: bytes) -> str:
        name = block[0:100].split(b"\0", 1)[0]
        prefix = block[345:500].split(b"\0", 1)[0] if block[257:263] == b"ustar\0" else b""
        full = prefix + b"/" + name if prefix else name
        return full.decode("utf-8", "replace")


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _number(field: bytes) -> int | None:
    """A numeric header field: octal text, or base-256 when the top bit is set."""
    if field and field[0] & 0x80:
        value = field[0] & 0x3F
        for byte in field[1:]:
            value = value << 8 | byte
        return -value if field[0] & 0x40 else value
    text = field.split(b"\0", 1)[0].strip(b" ")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        return None


def _pax_size(body: bytes, name: str) -> int | None:
    """The ``size`` record of a PAX header, if any (records are ``<len> key=value\\n``)."""
    position = 0
    size: int | None = None
    while position < len(body):
        length_text, space, _ = body[position : position + 20].partition(b" ")
        if not space or not length_text.isdigit() or int(length_text) <= 0:
            raise LayerInputError(f"corrupt tar extended header near {name!r}")
        record = body[position : position + int(length_text)]
        key, _, value = record[len(length_text) + 1 :].rstrip(b"\n").partition(b"=")
        if key == b"size":
            if not value.isdigit():
                raise LayerInputError(f"bad size record in tar header of {name!r}")
            size = int(value)
        position += int(length_text)
    return size


def store_layer_tar(
    stream: BinaryIO,
    content: ContentStore,
    *,
    before_publish: Callable[[str], None] | None = None,
) -> Descriptor:
    """Decompress a layer (plain, gzip or zstd), check it is a whole tar, store it.

    Returns the stored uncompressed tar, whose digest is the layer's diff id. A truncated or
    corrupt input raises (``LayerInputError`` or ``graphdriver.ArchiveError``) and stores
    nothing.
    """
    return content.write(_checked_chunks(open_decompressed(stream)), before_publish=before_publish)


def _checked_chunks(plain: BinaryIO) -> Iterator[bytes]:
    """The input's chunks, checked; an error of the input is a ``LayerInputError``, so an
    ``OSError`` from ``content.write`` is always one of writing the store."""
    checker = TarChecker()
    while True:
        try:
            chunk = plain.read(CHUNK_SIZE)
        except OSError as exc:
            raise LayerInputError(f"reading: {(exc.strerror or str(exc)).lower()}") from exc
        if not chunk:
            break
        checker.feed(chunk)
        yield chunk
    checker.finish()
