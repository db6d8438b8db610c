"""Pull and push progress: redrawn bars on a terminal, step lines elsewhere, nothing when quiet."""

from __future__ import annotations

import io

from pydock.registry.progress import Progress

DIGEST = "sha256:" + "ab" * 32


def test_terminal_lines_are_redrawn_in_place() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=True)
    progress.status(DIGEST, "Downloading", total=2_000_000)
    progress._last = 0.0  # let the next advance redraw at once
    progress.advance(DIGEST, 1_000_000)
    progress.status(DIGEST, "Pull complete")
    text = out.getvalue()
    assert "abababababab: Downloading  1MB/2MB" in text
    assert "\x1b[1A" in text  # moved back up to redraw the same line
    assert text.rstrip("\n").endswith("abababababab: Pull complete")


def test_plain_output_prints_steps_only_and_quiet_prints_nothing() -> None:
    out = io.StringIO()
    progress = Progress(out, tty=False)
    progress.status(DIGEST, "Downloading", total=10)
    progress.advance(DIGEST, 5)
    progress.status(DIGEST, "Pull complete")
    progress.line("Digest: x")
    assert out.getvalue().splitlines() == [
        "abababababab: Downloading",
        "abababababab: Pull complete",
        "Digest: x",
    ]
    quiet = io.StringIO()
    silent = Progress(quiet, quiet=True)
    silent.status(DIGEST, "Downloading")
    silent.line("Digest: x")
    assert quiet.getvalue() == ""
