"""``logs --timestamps/--since/--until`` through the real CLI, as root, on the best driver.

The container writes a first burst, blocks on a fifo the test opens once it has seen that
burst, then writes a second one: every time the test takes in between separates the bursts.
It runs in the foreground (pydock copies its output) and detached (its monitor copies).
"""

from __future__ import annotations

import datetime
import os
import selectors
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import pytest

from .containers_support import ROOT_CONTAINER_TESTS, Pydock, Workspace, fails

pytestmark = ROOT_CONTAINER_TESTS

SCRIPT = "echo one; echo uno >&2; read x < /sync/go; echo two; echo three; echo dos >&2"
WAIT = 60.0


@dataclass(frozen=True)
class Bursts:
    """A stopped container's name and the times (ns) around and between its bursts."""

    name: str
    before: int
    between: int
    after: int


def _wait_for_line(stream: IO[bytes] | None, wanted: bytes) -> None:
    """Read a pipe from the spawned pydock until ``wanted`` arrives (bounded)."""
    assert stream is not None
    seen = b""
    deadline = time.monotonic() + WAIT
    with selectors.DefaultSelector() as selector:
        selector.register(stream, selectors.EVENT_READ)
        while wanted not in seen:
            left = deadline - time.monotonic()
            assert left > 0 and selector.select(left), f"no {wanted!r} in {seen!r}"
            chunk = os.read(stream.fileno(), 4096)
            assert chunk, f"run ended before {wanted!r}: {seen!r}"
            seen += chunk


def _release(fifo: Path) -> None:
    fd = os.open(fifo, os.O_WRONLY)  # blocks until the container opened its end
    try:
        os.write(fd, b"go\n")
    finally:
        os.close(fd)


@pytest.fixture(scope="module", params=["foreground", "detached"])
def bursts(
    request: pytest.FixtureRequest, one: Workspace, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bursts]:
    """A run in the foreground (pydock copies) or detached (the monitor copies)."""
    sync = tmp_path_factory.mktemp("logs-sync")
    fifo = sync / "go"
    os.mkfifo(fifo, 0o600)
    pydock = one.pydock
    run = ("run", "--name", "bursts", "-v", f"{sync}:/sync", "busybox", "sh", "-c", SCRIPT)
    before = time.time_ns()
    if request.param == "detached":
        pydock.ok(run[0], "-d", *run[1:])
        process = pydock.spawn("logs", "-f", "bursts")  # ends when the container does
    else:
        process = pydock.spawn(*run)
    try:
        # Both streams' first burst has been copied (and timed) before ``between``.
        _wait_for_line(process.stdout, b"one\n")
        _wait_for_line(process.stderr, b"uno\n")
        between = time.time_ns()
        _release(fifo)
        assert process.wait(timeout=WAIT) == 0
        if request.param == "detached":
            assert pydock.ok("wait", "bursts") == "0\n"
        after = time.time_ns()
        yield Bursts("bursts", before, between, after)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=WAIT)
        pydock.run("rm", "-f", "bursts")


def _stamped(text: str) -> list[tuple[int, str]]:
    """``logs -t`` output as (ns, line) pairs; asserts Docker's timestamp format."""
    pairs = []
    for line in text.splitlines():
        stamp, rest = line.split(" ", 1)
        assert len(stamp) == len("2006-01-02T15:04:05.000000000Z") and stamp.endswith("Z"), line
        whole, fraction = stamp[:-1].split(".")
        moment = datetime.datetime.fromisoformat(whole).replace(tzinfo=datetime.UTC)
        pairs.append((int(moment.timestamp()) * 1_000_000_000 + int(fraction), rest))
    return pairs


def _iso(nanoseconds: int) -> str:
    seconds, fraction = divmod(nanoseconds, 1_000_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, datetime.UTC)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def _logs(pydock: Pydock, *args: str) -> tuple[str, str]:
    done = pydock.run("logs", *args, "bursts")
    assert done.status == 0, done
    return done.out, done.err


def test_timestamps_increase_within_the_run(one: Workspace, bursts: Bursts) -> None:
    out, err = _logs(one.pydock, "--timestamps")
    lines = _stamped(out)
    assert [line for _, line in lines] == ["one", "two", "three"]
    times = [stamp for stamp, _ in lines]
    assert times == sorted(times)
    assert bursts.before <= times[0] <= bursts.between <= times[1] <= bursts.after
    assert [line for _, line in _stamped(err)] == ["uno", "dos"]
    # -t is the short form; without it the log is exactly what the container wrote.
    assert _logs(one.pydock, "-t") == (out, err)
    assert _logs(one.pydock) == ("one\ntwo\nthree\n", "uno\ndos\n")


@pytest.mark.parametrize("form", ["rfc3339", "unix"])
def test_since_and_until_split_the_bursts(one: Workspace, bursts: Bursts, form: str) -> None:
    if form == "rfc3339":
        between = _iso(bursts.between)
    else:
        seconds, fraction = divmod(bursts.between, 1_000_000_000)
        between = f"{seconds}.{fraction:09d}"
    assert _logs(one.pydock, "--since", between) == ("two\nthree\n", "dos\n")
    assert _logs(one.pydock, "--until", between) == ("one\n", "uno\n")
    assert _logs(one.pydock, "--since", between, "--tail", "1") == ("three\n", "dos\n")
    out, _ = _logs(one.pydock, "--since", between, "-t", "-n", "1")
    assert [line for _, line in _stamped(out)] == ["three"]
    # -f on a stopped container prints the window and ends.
    assert _logs(one.pydock, "-f", "--since", between) == ("two\nthree\n", "dos\n")


def test_relative_durations(one: Workspace, bursts: Bursts) -> None:
    everything = ("one\ntwo\nthree\n", "uno\ndos\n")
    assert _logs(one.pydock, "--since", "1h") == everything
    assert _logs(one.pydock, "--since", "1h30m") == everything
    assert _logs(one.pydock, "--since", "3600s", "--tail", "2") == ("two\nthree\n", "uno\ndos\n")
    # Counted back from now, which is after the run ended: nothing is that recent.
    future = _iso(bursts.after + 3600 * 1_000_000_000)
    assert _logs(one.pydock, "--since", future) == ("", "")
    assert _logs(one.pydock, "--until", "1h") == ("", "")


@pytest.mark.parametrize("value", ["yesterday", "10x", "2024-13-01", "1.2.3", ""])
def test_bad_times_are_one_line_errors(one: Workspace, bursts: Bursts, value: str) -> None:
    fails(one.pydock.run("logs", "--since", value, bursts.name), "reading logs", "--since")
    fails(one.pydock.run("logs", "--until", value, bursts.name), "reading logs", "--until")
