"""A container's own directory, ``<root>/containers/<id>/``: its logs and its exit status."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

DIRECTORY = "containers"


@dataclass(frozen=True)
class ContainerFiles:
    """Paths of one container's files."""

    directory: Path

    @classmethod
    def of(cls, root: Path, container_id: str) -> ContainerFiles:
        """The files of container ``container_id`` under the pydock root ``root``."""
        return cls(Path(root) / DIRECTORY / container_id)

    @property
    def stdout_log(self) -> Path:
        """What the container wrote to its standard output (or its terminal)."""
        return self.directory / "stdout.log"

    @property
    def stderr_log(self) -> Path:
        """What the container wrote to its standard error."""
        return self.directory / "stderr.log"

    @property
    def exit_file(self) -> Path:
        """Where the monitor records the exit status of the current run."""
        return self.directory / "exit"

    def create(self) -> None:
        """Make the directory (private to the owner)."""
        self.directory.mkdir(parents=True, exist_ok=True, mode=0o700)

    def open_log(self, path: Path) -> int:
        """A descriptor appending to the log ``path``."""
        # Readable too: a copier looks at the last byte to know whether a line is unfinished.
        return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)

    def remove(self) -> None:
        """Delete the directory and everything in it."""
        shutil.rmtree(self.directory, ignore_errors=True)
