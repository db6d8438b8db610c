"""Settling the file system between rounds, so that one round's deletions do not land on the next.

Each round removes what it made (layers, trees, mounts). On a disk file system the cost of that
comes later: dirty pages, journal commits and block discards. Between rounds the benchmark
therefore writes everything back (``sync``) and, where the file system and the user allow it,
discards the freed blocks (``fstrim``). The page cache is not dropped between rounds: that would
make the first sample of every round a cold start of every tool (Python, podman, crun), which is
not what the warm workloads measure; the cold workload drops it itself before its timed part.
What was done, and what could not be, goes into the report.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

TIMEOUT = 120


@dataclass
class Settler:
    """What settling does on the work directory's file system, found out once."""

    work: Path
    done: list[str] = field(default_factory=list)  # the steps that run between rounds
    skipped: list[str] = field(default_factory=list)  # "step: why not"

    def probe(self) -> None:
        """Find which steps work here (runs ``fstrim`` once)."""
        self.done = ["sync"]
        self.skipped = ["drop caches: kept between rounds (only the cold workload drops them)"]
        why = self._fstrim()
        if why is None:
            self.done.append("fstrim")
        else:
            self.skipped.append(f"fstrim: {why}")

    def _fstrim(self) -> str | None:
        """None if ``fstrim`` worked on the work directory, else why not."""
        if os.geteuid() != 0:
            return "needs root"
        if shutil.which("fstrim") is None:
            return "not installed"
        try:
            done = subprocess.run(
                ["fstrim", str(self.work)], capture_output=True, text=True, timeout=TIMEOUT
            )
        except (OSError, subprocess.SubprocessError) as exc:
            return " ".join(str(exc).split())
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or [f"exited {done.returncode}"]
            return lines[-1].removeprefix("fstrim: ").removeprefix(f"{self.work}: ")
        return None

    def settle(self) -> None:
        """Run the steps :meth:`probe` found working."""
        os.sync()
        if "fstrim" in self.done:
            subprocess.run(["fstrim", str(self.work)], capture_output=True, timeout=TIMEOUT)
