"""Progress of pulls and pushes: live bars on a terminal, one line per step elsewhere, or none.

On a terminal each blob has a line (``3f2a1b0c9d8e: Downloading  12.3MB/45.6MB``) redrawn in
place at most ten times a second, as ``docker pull`` does; elsewhere only the steps are printed
(``3f2a1b0c9d8e: Pull complete``); quiet prints nothing. Safe to call from several threads.
"""

from __future__ import annotations

import threading
import time
from typing import TextIO

from pydock.format import human_size

REDRAW_SECONDS = 0.1


def _short(digest: str) -> str:
    return digest.partition(":")[2][:12] or digest[:12]


class Progress:
    """Reports blobs' states and byte counts to ``out``."""

    def __init__(self, out: TextIO, *, quiet: bool = False, tty: bool | None = None) -> None:
        self.out = out
        self.quiet = quiet
        self.tty = out.isatty() if tty is None else tty
        self._lock = threading.Lock()
        self._order: list[str] = []
        self._lines: dict[str, list[object]] = {}  # digest -> [status, done, total]
        self._drawn = 0
        self._last = 0.0

    def line(self, text: str) -> None:
        """Print a line of its own (a header or a summary)."""
        if self.quiet:
            return
        with self._lock:
            self._draw(force=True)
            self._drawn = 0
            self._order.clear()
            self._lines.clear()
            self.out.write(text + "\n")
            self.out.flush()

    def status(self, digest: str, status: str, *, total: int = 0) -> None:
        """Set the state of blob ``digest`` (``Waiting``, ``Downloading``, ``Pull complete``)."""
        if self.quiet:
            return
        with self._lock:
            if digest not in self._lines:
                self._order.append(digest)
                self._lines[digest] = [status, 0, total]
            entry = self._lines[digest]
            entry[0] = status
            if total:
                entry[2] = total
            if self.tty:
                self._draw(force=True)
            else:
                self.out.write(f"{_short(digest)}: {status}\n")
                self.out.flush()

    def advance(self, digest: str, count: int) -> None:
        """Count ``count`` more bytes of blob ``digest``."""
        if self.quiet or not self.tty:
            return
        with self._lock:
            entry = self._lines.get(digest)
            if entry is None:
                return
            done = entry[1]
            entry[1] = (done if isinstance(done, int) else 0) + count
            self._draw(force=False)

    def _draw(self, *, force: bool) -> None:
        if not self.tty:
            return
        now = time.monotonic()
        if not force and now - self._last < REDRAW_SECONDS:
            return
        self._last = now
        text = f"\x1b[{self._drawn}A" if self._drawn else ""
        for digest in self._order:
            status, done, total = self._lines[digest]
            row = f"{_short(digest)}: {status}"
            moving = status in ("Downloading", "Pushing")
            if moving and isinstance(done, int) and isinstance(total, int) and total:
                row += f"  {human_size(done)}/{human_size(total)}"
            text += f"\x1b[2K{row}\n"
        self._drawn = len(self._order)
        self.out.write(text)
        self.out.flush()
