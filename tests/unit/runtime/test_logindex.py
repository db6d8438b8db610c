"""The line-time index beside a log: records at line starts, unfinished lines continued."""

from __future__ import annotations

import os
from pathlib import Path

from runtime.logindex import IndexedLog, LineTimes, open_index


def _open(log: Path) -> IndexedLog:
    fd = os.open(log, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
    return IndexedLog(fd, open_index(log))


def test_records_every_line_start_with_its_write_time(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    writer = _open(log)
    writer.write(b"ab\ncd", 10)
    writer.write(b"e\nf\n", 20)
    writer.write(b"\n", 30)
    # A later copier (the next run) continues an unfinished line instead of starting one.
    _open(log).write(b"x", 40)
    _open(log).write(b"y\nz\n", 50)
    times = LineTimes(log)
    assert log.read_bytes() == b"ab\ncde\nf\n\nxy\nz\n"
    assert list(times.offsets) == [0, 3, 7, 9, 10, 13]
    assert list(times.times) == [10, 10, 20, 30, 40, 50]
    assert times.time_at(3) == 10 and times.time_at(11) == 40
    assert times.first_at_or_after(25) == 9
    assert times.first_at_or_after(51) is None


def test_refresh_reads_only_new_records_and_skips_a_partial_one(tmp_path: Path) -> None:
    log = tmp_path / "stderr.log"
    writer = _open(log)
    writer.write(b"one\n", 1)
    times = LineTimes(log)
    writer.write(b"two\n", 2)
    with open(tmp_path / "stderr.log.idx", "ab") as index:
        index.write(b"\0" * 5)  # a record still being written
    times.refresh()
    assert (list(times.offsets), list(times.times)) == ([0, 4], [1, 2])


def test_a_log_without_an_index_takes_its_modification_time(tmp_path: Path) -> None:
    log = tmp_path / "stdout.log"
    log.write_bytes(b"old\n")
    os.utime(log, ns=(7_000_000_000, 7_000_000_000))
    times = LineTimes(log)
    assert times.time_at(0) == 7_000_000_000
    assert times.first_at_or_after(0) is None
