"""An undo log for unpacking a layer: a failed call leaves the tree as it was before it.

Replaced and deleted entries are moved aside (a rename, on the same filesystem) rather than
removed, new entries are recorded, and existing directories have their metadata saved before it
changes. ``rollback`` replays the log backwards; ``commit`` throws the moved-aside entries away.
"""

from __future__ import annotations

import os
import shutil
import stat
import uuid
from dataclasses import dataclass

from graphdriver.xattrs import read_xattrs


@dataclass(frozen=True)
class _Meta:
    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    xattrs: dict[str, bytes] | None


class Journal:
    """Undo log of one ``apply_layer`` call on ``root``."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._ops: list[tuple[str, str, str | _Meta]] = []
        self._aside: str | None = None
        self._count = 0
        self._times_saved: set[str] = set()

    def _aside_dir(self) -> str:
        if self._aside is None:
            parent = os.path.dirname(self.root.rstrip("/")) or "/"
            name = f".{os.path.basename(self.root.rstrip('/'))}.undo-{uuid.uuid4().hex[:12]}"
            candidate = os.path.join(parent, name)
            try:
                os.mkdir(candidate, 0o700)
                # A rename across filesystems fails; keep the undo area inside the root then.
                if os.stat(candidate).st_dev != os.stat(self.root).st_dev:
                    os.rmdir(candidate)
                    raise OSError("different filesystem")
            except OSError:
                candidate = os.path.join(self.root, name)
                os.mkdir(candidate, 0o700)
            self._aside = candidate
        return self._aside

    def created(self, path: str) -> None:
        """Record that ``path`` did not exist before this call."""
        self._ops.append(("created", path, ""))

    def move_aside(self, path: str) -> None:
        """Remove ``path`` in a way that can be undone."""
        self._count += 1
        spare = os.path.join(self._aside_dir(), str(self._count))
        os.rename(path, spare)
        self._ops.append(("moved", path, spare))

    def save_meta(self, path: str, *, with_xattrs: bool = True) -> None:
        """Save the metadata of existing ``path`` before it is changed."""
        st = os.lstat(path)
        xattrs = read_xattrs(path) if with_xattrs else None
        meta = _Meta(st.st_mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns, xattrs)
        self._ops.append(("meta", path, meta))

    def save_times(self, directory: str) -> None:
        """Save a directory's times once, before entries are added to or removed from it."""
        if directory in self._times_saved:
            return
        self._times_saved.add(directory)
        try:
            self.save_meta(directory, with_xattrs=False)
        except FileNotFoundError:
            return

    def rollback(self) -> None:
        """Undo every recorded step, newest first, then drop the undo area."""
        for kind, path, extra in reversed(self._ops):
            try:
                if kind == "created":
                    _remove(path)
                elif kind == "moved":
                    assert isinstance(extra, str)
                    _remove(path)
                    os.rename(extra, path)
                else:
                    assert isinstance(extra, _Meta)
                    _restore_meta(path, extra)
            except FileNotFoundError:
                continue
        self._ops.clear()
        self._drop_aside()

    def commit(self) -> None:
        """Keep the new tree; delete what was moved aside."""
        self._ops.clear()
        self._drop_aside()

    def _drop_aside(self) -> None:
        if self._aside is not None:
            shutil.rmtree(self._aside, ignore_errors=True)
            self._aside = None


def _remove(path: str) -> None:
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def _restore_meta(path: str, meta: _Meta) -> None:
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return
    if (st.st_uid, st.st_gid) != (meta.uid, meta.gid):
        os.lchown(path, meta.uid, meta.gid)
    os.chmod(path, stat.S_IMODE(meta.mode))
    if meta.xattrs is not None:
        current = read_xattrs(path)
        for name in current.keys() - meta.xattrs.keys():
            os.removexattr(path, name, follow_symlinks=False)
        for name, value in meta.xattrs.items():
            if current.get(name) != value:
                os.setxattr(path, name, value, follow_symlinks=False)
    os.utime(path, ns=(meta.atime_ns, meta.mtime_ns), follow_symlinks=False)
