"""The stack of layer directories under one mount and the on-disk markers it reads and writes.

Index 0 is the upper directory when there is one; the lower directories follow, nearest first.
Every path inside a layer is the same relative path as in the merged tree (no redirects), kept
as bytes so names that are not valid UTF-8 survive.

Markers, as kernel overlayfs and fuse-overlayfs write them:

- a deleted name: a 0/0 character device of that name, or an empty ``.wh.NAME`` file next to it
  (written where mknod is not permitted);
- a directory that hides the layers below it (opaque): ``trusted.overlay.opaque`` or
  ``user.overlay.opaque`` = ``y``, or a ``.wh..wh..opq`` file inside it.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import os
import shutil
import stat
from dataclasses import dataclass

from graphdriver.markers import OPAQUE_XATTRS_B as OPAQUE_XATTRS
from graphdriver.markers import WHITEOUT_PREFIX_B as WHITEOUT_PREFIX
from graphdriver.markers import is_whiteout

# Bookkeeping xattrs of overlay implementations: never shown, set or copied up.
HIDDEN_XATTR_PREFIXES = (b"trusted.overlay.", b"user.overlay.", b"user.fuseoverlayfs.")
WORK_SUBDIR = b"pydock-fuse"


def is_hidden_xattr(name: bytes) -> bool:
    return name.startswith(HIDDEN_XATTR_PREFIXES)


def has_opaque_xattr(path: bytes) -> bool:
    """Whether directory ``path`` carries an ``overlay.opaque`` xattr set to ``y``."""
    for name in OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError as exc:
            if exc.errno not in (errno.ENODATA, errno.ENOTSUP, errno.EPERM, errno.EACCES):
                raise
    return False


@dataclass(frozen=True)
class Layer:
    """One layer directory; ``prefix`` + a relative path is the backing path."""

    root: bytes
    prefix: bytes
    dev: int

    @classmethod
    def open(cls, path: str) -> Layer:
        root = os.fsencode(os.path.abspath(path)).rstrip(b"/") or b"/"
        prefix = root if root == b"/" else root + b"/"
        return cls(root=root, prefix=prefix, dev=os.stat(root).st_dev)

    def path(self, rel: bytes) -> bytes:
        return self.prefix + rel if rel else self.root


class LayerStack:
    """The layers of a mount, the work directory and the marker formats this host allows."""

    def __init__(self, lowers: list[str], upper: str | None, work: str | None) -> None:
        self.has_upper = upper is not None
        self.layers = [Layer.open(p) for p in ([upper] if upper is not None else []) + lowers]
        self.upper = self.layers[0] if upper is not None else None
        self.work = b""
        self._counter = itertools.count()
        self.mknod_whiteouts = False
        self.opaque_xattr = OPAQUE_XATTRS[1]
        if work is not None:
            self.work = os.path.join(os.fsencode(os.path.abspath(work)), WORK_SUBDIR)

    def prepare_work(self, *, user_xattr: bool) -> None:
        """Empty the private work dir and probe whiteout and opaque formats there.

        Raises ``OSError`` with the probe's errno when the upper filesystem cannot hold
        extended attributes: copy-up would lose them and opaque directories need them.
        """
        if not self.work:
            return
        if os.path.lexists(self.work):
            shutil.rmtree(self.work)
        os.mkdir(self.work, 0o700)
        probe = self.temp_path()
        try:
            os.mknod(probe, stat.S_IFCHR | 0o600, os.makedev(0, 0))
        except PermissionError:
            self.mknod_whiteouts = False
        else:
            self.mknod_whiteouts = True
            os.unlink(probe)
        os.close(os.open(probe, os.O_CREAT | os.O_WRONLY, 0o600))
        try:
            candidates = OPAQUE_XATTRS[1:] if user_xattr or os.geteuid() != 0 else OPAQUE_XATTRS
            last: OSError | None = None
            for name in candidates:
                try:
                    os.setxattr(probe, name, b"y")
                except OSError as exc:
                    last = exc
                    continue
                self.opaque_xattr = name
                break
            else:
                assert last is not None
                raise last
        finally:
            os.unlink(probe)

    def temp_path(self) -> bytes:
        """A fresh name in the work dir (same filesystem as the upper dir)."""
        return b"%s/t%d" % (self.work, next(self._counter))

    def write_whiteout(self, rel_dir: bytes, name: bytes) -> None:
        """Mark ``name`` deleted in the upper dir, replacing a non-directory there atomically."""
        assert self.upper is not None
        target = self.upper.path(join(rel_dir, name))
        if self.mknod_whiteouts:
            temp = self.temp_path()
            os.mknod(temp, stat.S_IFCHR | 0o600, os.makedev(0, 0))
            os.rename(temp, target)
            return
        with contextlib.suppress(FileNotFoundError):
            os.unlink(target)
        marker = self.upper.path(join(rel_dir, WHITEOUT_PREFIX + name))
        os.close(os.open(marker, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW, 0o600))

    def clear_whiteout(self, rel_dir: bytes, name: bytes) -> None:
        """Remove the upper dir's marker of ``name`` so the name can be created again."""
        assert self.upper is not None
        target = self.upper.path(join(rel_dir, name))
        try:
            if is_whiteout(os.lstat(target)):
                os.unlink(target)
        except FileNotFoundError:
            pass
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.upper.path(join(rel_dir, WHITEOUT_PREFIX + name)))

    def mark_opaque(self, path: bytes) -> None:
        """Make directory ``path`` hide the layers below it."""
        os.setxattr(path, self.opaque_xattr, b"y", follow_symlinks=False)


def join(rel_dir: bytes, name: bytes) -> bytes:
    """Relative path of ``name`` inside the directory at relative path ``rel_dir``."""
    return rel_dir + b"/" + name if rel_dir else name
