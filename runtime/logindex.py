"""Times of the lines in a log file, kept beside it in an index of fixed-size records.

    stdout.log        the bytes exactly as the container wrote them (unchanged format)
    stdout.log.idx    one 16-byte record per line start: byte offset in the log, time in ns
                      since the epoch (little-endian unsigned 64-bit each), in offset order

Whoever copies a stream into its log writes both (``IndexedLog``); every line that starts in
one read gets that read's time. For a detached container the container's monitor copies, in a
thread (``copy_until_closed``), and records the exit only once the streams have ended. Lines
written without a copier (logs from before the index existed) have no records; readers give
them the time of the closest record before them or, with none, the log's modification time.
"""

from __future__ import annotations

import array
import bisect
import os
import re
import selectors
import struct
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

RECORD = struct.Struct("<QQ")
_NEWLINE = re.compile(b"\n")
SUFFIX = ".idx"


def index_path(log: Path) -> Path:
    """The index of the log ``log``."""
    return log.with_name(log.name + SUFFIX)


def open_index(log: Path) -> int:
    """A descriptor appending to the index of ``log``."""
    return os.open(index_path(log), os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)


class IndexedLog:
    """Appends to a log and records the time of every line that starts in it."""

    def __init__(self, log_fd: int, index_fd: int) -> None:
        self.log_fd = log_fd
        self.index_fd = index_fd
        self.offset = os.fstat(log_fd).st_size
        # A log that ends inside a line (a previous run's last words) continues that line.
        self.at_line_start = self.offset == 0 or _last_byte(log_fd, self.offset) == b"\n"

    def write(self, data: bytes, when: int | None = None) -> None:
        """Append ``data`` to the log, and its line starts to the index with the time ``when``
        (ns since the epoch; default now: pass the time of the read when it came earlier)."""
        if not data:
            return
        now = time.time_ns() if when is None else when
        starts = array.array("Q", [0] if self.at_line_start else [])
        starts.extend(found.end() for found in _NEWLINE.finditer(data, 0, len(data) - 1))
        records = array.array("Q", bytes(len(starts) * RECORD.size))
        records[0::2] = array.array("Q", (self.offset + start for start in starts))
        records[1::2] = array.array("Q", [now]) * len(starts)
        if sys.byteorder != "little":
            records.byteswap()
        # The index goes first: a reader that sees the bytes also sees their time.
        if starts:
            _write_all(self.index_fd, records.tobytes())
        _write_all(self.log_fd, data)
        self.offset += len(data)
        self.at_line_start = data.endswith(b"\n")


class LineTimes:
    """The recorded line starts of one log, searchable by offset and by time."""

    def __init__(self, log: Path) -> None:
        self.log = log
        self.offsets = array.array("Q")
        self.times = array.array("Q")
        self._read = 0
        self.refresh()

    def refresh(self) -> None:
        """Load the records appended since the last call."""
        try:
            with open(index_path(self.log), "rb") as index:
                index.seek(self._read)
                data = index.read()
        except FileNotFoundError:
            data = b""
        whole = len(data) - len(data) % RECORD.size  # a record being written waits
        records = array.array("Q", data[:whole])
        if sys.byteorder != "little":
            records.byteswap()
        self.offsets.extend(records[0::2])
        self.times.extend(records[1::2])
        self._read += whole

    def time_at(self, offset: int) -> int:
        """The time of the line that starts at ``offset``."""
        position = bisect.bisect_right(self.offsets, offset) - 1
        if position >= 0:
            return self.times[position]
        if self.times:
            return self.times[0]
        try:
            return os.stat(self.log).st_mtime_ns
        except FileNotFoundError:
            return 0

    def first_at_or_after(self, when: int) -> int | None:
        """The offset of the first recorded line written at ``when`` or later (None: none)."""
        # Times only go back if the clock is set back; a linear scan then stays correct.
        for offset, stamp in zip(self.offsets, self.times, strict=True):
            if stamp >= when:
                return offset
        return None


def _last_byte(fd: int, size: int) -> bytes:
    try:
        return os.pread(fd, 1, size - 1)
    except OSError:
        return b"\n"


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


@dataclass(frozen=True)
class LogCopy:
    """One stream to copy: the read end of the container's pipe, its log and the log's index."""

    source: int
    log: int
    index: int

    @property
    def fds(self) -> tuple[int, int, int]:
        """Every descriptor the copy needs."""
        return self.source, self.log, self.index


def copy_until_closed(copies: Sequence[LogCopy]) -> None:
    """Copy every source into its log (with the index) until each source ends."""
    logs = {copy.source: IndexedLog(copy.log, copy.index) for copy in copies}
    # poll(), not epoll: it holds no descriptor of its own, so the monitor may close every
    # descriptor but ``copies`` while this runs in its thread.
    with selectors.PollSelector() as selector:
        for source in logs:
            selector.register(source, selectors.EVENT_READ)
        while selector.get_map():
            for key, _ in selector.select():
                data = os.read(key.fd, 1 << 16)
                if not data:
                    selector.unregister(key.fd)
                    continue
                logs[key.fd].write(data)
