"""How a layer's deletions land on disk: the one difference between unpacking for vfs and for
the overlay layout.

A layer tar says "deleted" with ``.wh.NAME`` and "replaced directory" with ``.wh..wh..opq``.
A full-copy driver (vfs) deletes for real; the overlay layout keeps a marker the merged view
understands: a 0/0 character device for a deleted name and an ``overlay.opaque`` xattr on a
replaced directory.
"""

from __future__ import annotations

import abc
import os

from graphdriver.journal import Journal
from graphdriver.markers import OPAQUE_MARKER, WHITEOUT_PREFIX

# Names starting with this are bookkeeping of other tools (aufs hard-link dirs); never unpacked.


class WhiteoutFormat(abc.ABC):
    """Target representation of whiteouts for ``apply_layer``."""

    @abc.abstractmethod
    def whiteout(self, directory: str, name: str, journal: Journal) -> None:
        """Hide ``name`` in ``directory`` (which lies inside the layer root)."""

    @abc.abstractmethod
    def opaque(self, directory: str, keep: set[str], journal: Journal) -> None:
        """Hide everything the lower layers had in ``directory``; ``keep`` holds entries of this
        layer already unpacked there (their full paths)."""


class DeleteWhiteouts(WhiteoutFormat):
    """Apply deletions for real: the layer directory is a complete tree (vfs)."""

    def whiteout(self, directory: str, name: str, journal: Journal) -> None:
        path = os.path.join(directory, name)
        if os.path.lexists(path):
            journal.save_times(directory)
            journal.move_aside(path)

    def opaque(self, directory: str, keep: set[str], journal: Journal) -> None:
        with os.scandir(directory) as entries:
            doomed = [e.path for e in entries if e.path not in keep]
        if doomed:
            journal.save_times(directory)
        for path in doomed:
            journal.move_aside(path)


class OverlayWhiteouts(WhiteoutFormat):
    """Overlayfs markers: 0/0 character devices and ``<namespace>.overlay.opaque = y``.

    ``namespace`` is ``trusted`` as root and ``user`` for rootless mounts with ``userxattr``.
    """

    def __init__(self, namespace: str = "trusted") -> None:
        self.opaque_xattr = f"{namespace}.overlay.opaque"

    def whiteout(self, directory: str, name: str, journal: Journal) -> None:
        path = os.path.join(directory, name)
        journal.save_times(directory)
        if os.path.lexists(path):
            journal.move_aside(path)
        journal.created(path)
        try:
            os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))
        except PermissionError:
            # Unprivileged and outside a user namespace: the marker file that fuse-overlayfs
            # and pydock's fuse driver read (kernel overlayfs does not).
            marker = os.path.join(directory, WHITEOUT_PREFIX + name)
            journal.created(marker)
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def opaque(self, directory: str, keep: set[str], journal: Journal) -> None:
        journal.save_meta(directory)
        try:
            os.setxattr(directory, self.opaque_xattr, b"y", follow_symlinks=False)
        except PermissionError:
            marker = os.path.join(directory, OPAQUE_MARKER)
            journal.created(marker)
            os.close(os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
