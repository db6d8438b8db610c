"""``logs``: what a container wrote, from its log files, and following them while it runs."""

from __future__ import annotations

import datetime
import os
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydock.clock import parse_go_duration
from pydock.containers.attach import write_all
from pydock.containers.files import ContainerFiles
from runtime.logindex import LineTimes

FOLLOW_INTERVAL = 0.1


class LogReader:
    """Reads a log file from where it was last read (the file may not exist yet), handing each
    piece, with ``window``'s time stamps, to ``sink``."""

    def __init__(self, path: Path, sink: Callable[[bytes], object], window: Window) -> None:
        self.path = path
        self.sink = sink
        self.window = window
        self.times = LineTimes(path) if window.needs_times else None
        self.offset = 0 if window.tail is None else tail_offset(path, window.tail)
        self.end: int | None = None
        if self.times is not None and window.since is not None:
            start = self.times.first_at_or_after(window.since)
            self.offset = max(self.offset, _size(path) if start is None else start)
        if self.times is not None and window.until is not None:
            self.end = self.times.first_at_or_after(window.until)
        self.at_line_start = True
        self._stamp = (-1, b"")

    @property
    def finished(self) -> bool:
        """Whether ``--until`` has been reached."""
        return self.end is not None and self.offset >= self.end

    def drain(self) -> bool:
        """Hand what is new to the sink; whether anything was."""
        if self.finished:
            return False
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return False
        copied = False
        try:
            if self.times is not None:
                self.times.refresh()
                if self.end is None and self.window.until is not None:
                    self.end = self.times.first_at_or_after(self.window.until)
            size = os.fstat(fd).st_size
            stop = size if self.end is None else min(size, self.end)
            while self.offset < stop:
                data = os.pread(fd, min(1 << 16, stop - self.offset), self.offset)
                if not data:
                    break
                self.sink(self._stamped(data) if self.window.timestamps else data)
                self.offset += len(data)
                copied = True
        finally:
            os.close(fd)
        return copied

    def _stamped(self, data: bytes) -> bytes:
        """``data`` with Docker's timestamp before every line that starts in it."""
        assert self.times is not None
        out = bytearray()
        start = 0
        while start < len(data):
            if self.at_line_start:
                stamp = self.times.time_at(self.offset + start)
                if stamp != self._stamp[0]:
                    self._stamp = (stamp, format_time(stamp).encode() + b" ")
                out += self._stamp[1]
            found = data.find(b"\n", start)
            cut = len(data) if found < 0 else found + 1
            out += data[start:cut]
            self.at_line_start = found >= 0
            start = cut
        return bytes(out)


@dataclass(frozen=True)
class Window:
    """Which lines to show and how: ``--tail``, ``--since``, ``--until`` (ns), ``-t``."""

    tail: int | None = None
    since: int | None = None
    until: int | None = None
    timestamps: bool = False

    @property
    def needs_times(self) -> bool:
        """Whether the line times (the index) are read."""
        return self.timestamps or self.since is not None or self.until is not None


def format_time(nanoseconds: int) -> str:
    """Docker's log timestamp: RFC 3339 in UTC with nine fractional digits."""
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


_UNIX = re.compile(r"(\d+)(?:\.(\d{1,9}))?")


def parse_time(text: str, now: int | None = None) -> int:
    """A ``--since``/``--until`` value in ns since the epoch; ValueError if it is none.

    As Docker: a duration (``10m``, ``1h30m``, ``1.5h``) counts back from now; Unix seconds
    with an optional fraction; an RFC 3339 timestamp or date (local time without a zone).
    """
    now = time.time_ns() if now is None else now
    text = text.strip()
    duration = parse_go_duration(text)
    if duration is not None:
        return now - duration
    if match := _UNIX.fullmatch(text):
        fraction = (match.group(2) or "").ljust(9, "0")
        return int(match.group(1)) * 1_000_000_000 + int(fraction or 0)
    moment = _parse_rfc3339(text)
    if moment is None:
        raise ValueError("neither a timestamp (RFC 3339 or Unix seconds) nor a duration")
    whole = int(moment.replace(microsecond=0).timestamp()) * 1_000_000_000
    return whole + _fraction_ns(text)


_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2})?",
    re.IGNORECASE,
)


def _parse_rfc3339(text: str) -> datetime.datetime | None:
    match = _RFC3339.fullmatch(text)
    if match is None:
        return None
    date, clock, _fraction, zone = match.groups()
    if clock is not None and clock.count(":") == 1:
        clock += ":00"
    iso = date + ("T" + clock if clock else "T00:00:00")
    if zone:
        iso += "+00:00" if zone.upper() == "Z" else zone
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.astimezone()


def _fraction_ns(text: str) -> int:
    match = _RFC3339.fullmatch(text)
    fraction = match.group(3) if match else None
    return int(fraction[1:].ljust(9, "0")) if fraction else 0


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def tail_offset(path: Path, lines: int) -> int:
    """Where the last ``lines`` lines of ``path`` begin (an unfinished last line counts)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return 0
    try:
        size = os.fstat(fd).st_size
        if lines <= 0:
            return size
        # The newline that ends the last line does not start a line of its own.
        position = size - 1 if size and os.pread(fd, 1, size - 1) == b"\n" else size
        wanted = lines
        while position > 0:
            start = max(0, position - (1 << 16))
            chunk = os.pread(fd, position - start, start)
            cut = len(chunk)
            while (found := chunk.rfind(b"\n", 0, cut)) >= 0:
                wanted -= 1
                if wanted == 0:
                    return start + found + 1
                cut = found
            position = start
        return 0
    finally:
        os.close(fd)


def show(
    files: ContainerFiles,
    *,
    window: Window | None = None,
    follow: bool = False,
    is_running: Callable[[], bool] = lambda: False,
    stdout: int = 1,
    stderr: int = 2,
) -> None:
    """Copy the logs to ``stdout``/``stderr``; with ``follow``, until the container stops."""
    window = window or Window()
    readers = [
        LogReader(files.stdout_log, lambda data: write_all(stdout, data), window),
        LogReader(files.stderr_log, lambda data: write_all(stderr, data), window),
    ]
    while True:
        running = follow and is_running() and not all(reader.finished for reader in readers)
        copied = [reader.drain() for reader in readers]
        if not running:
            if follow and any(copied):
                continue  # one last pass after it stopped
            return
        if not any(copied):
            time.sleep(FOLLOW_INTERVAL)
