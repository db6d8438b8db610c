"""Which pydock processes are at work on a root, so that start-up can tell leftovers from work.

Every command holds a shared lock on ``<root>/.presence.lock`` for its whole run. A command
that gets the lock exclusively at start-up is alone: whatever no image, layer, container or
lease refers to (a blob written by an import that was killed before it recorded the blob, one
left by an ``rmi`` killed between forgetting it and deleting it) is a leftover, and it collects
them; otherwise it leaves them for a later, lonelier start. The locks are POSIX record locks:
they go when their process dies, however it dies, and a forked child (a container's monitor)
does not inherit them, so a running container does not keep collection away.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

NAME = ".presence.lock"


class Presence:
    """This process's lock on a root: exclusive while it is alone, then shared."""

    def __init__(self, root: Path) -> None:
        self.fd: int | None = None
        try:
            self.fd = os.open(root / NAME, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError:
            return  # a full disk or a read-only root: no lock, never alone
        try:
            fcntl.lockf(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            self.alone = True
        except OSError:
            self.alone = False
            fcntl.lockf(self.fd, fcntl.LOCK_SH)  # waits while another one collects

    alone = False

    def share(self) -> None:
        """From here on, others may work beside this process."""
        if self.fd is not None and self.alone:
            fcntl.lockf(self.fd, fcntl.LOCK_SH)
            self.alone = False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None
