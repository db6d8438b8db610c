"""Layer archives in the OCI image-spec layer format: unpack into a directory, pack changes.

Unpacking streams (a 2 GiB layer never sits in memory), resolves every name inside the root
(see ``pathscope``), and keeps an undo log (``journal``) so a failing call (a breakout, a corrupt
or truncated stream, a full disk) leaves the directory exactly as it found it.

Packing writes PAX tars with normalised headers (no user or group names, no atime or ctime,
nanosecond mtimes as PAX records) in sorted order, so the same tree always gives the same bytes.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import BinaryIO

from graphdriver import tarstream, tarwriter
from graphdriver.change import Change, ChangeKind
from graphdriver.compression import open_decompressed
from graphdriver.errors import ArchiveError, BreakoutError, GraphDriverError
from graphdriver.journal import Journal
from graphdriver.lowerview import LowerView
from graphdriver.markers import META_PREFIX, OPAQUE_MARKER, WHITEOUT_PREFIX
from graphdriver.pathscope import Resolver, clean_name
from graphdriver.tarstream import Entry, TarReader
from graphdriver.tarwriter import TarWriter
from graphdriver.whiteouts import (
    DeleteWhiteouts,
    OverlayWhiteouts,
    WhiteoutFormat,
)
from graphdriver.xattrs import copy_xattrs, read_xattrs

__all__ = [
    "DeleteWhiteouts",
    "OverlayWhiteouts",
    "WhiteoutFormat",
    "apply_layer",
    "export_changes",
]

_XATTR_PAX = "SCHILY.xattr."
_XATTR_DENIED = (errno.EPERM, errno.ENOTSUP, errno.EACCES)
_CHUNK = 1 << 20


def apply_layer(
    root: Path | str,
    stream: BinaryIO,
    *,
    whiteouts: WhiteoutFormat | None = None,
    skip_devices: bool = False,
    ignore_chown_errors: bool = False,
    lowers: Sequence[Path | str] = (),
) -> int:
    """Unpack the layer tar ``stream`` (plain, gzip or zstd) into ``root``.

    Returns the bytes of regular-file content written (hard links count zero). Raises
    ``BreakoutError`` for entries that would leave ``root`` and ``ArchiveError`` for unreadable
    input; either way the directory is rolled back to its state before the call.

    ``lowers`` are the parent layers' dirs (nearest first) when ``root`` is an overlay upper
    dir: names are then resolved in the merged view, so a parent layer's symlink is followed
    (and checked) exactly as a full copy would follow it.
    """
    unpacker = _Unpacker(
        os.fspath(root),
        whiteouts or DeleteWhiteouts(),
        skip_devices=skip_devices,
        ignore_chown_errors=ignore_chown_errors,
        lower=LowerView(lowers) if lowers else None,
    )
    journal = unpacker.journal
    try:
        size = unpacker.run(stream)
    except BaseException:
        journal.rollback()
        raise
    journal.commit()
    return size


class _Unpacker:
    def __init__(
        self,
        root: str,
        whiteouts: WhiteoutFormat,
        *,
        skip_devices: bool,
        ignore_chown_errors: bool,
        lower: LowerView | None,
    ) -> None:
        self.root = root
        self.whiteouts = whiteouts
        self.skip_devices = skip_devices
        self.ignore_chown_errors = ignore_chown_errors
        self.journal = Journal(root)
        self.lower = lower
        self.resolver = Resolver(root, lower)
        self.unpacked: set[str] = set()
        self.dir_times: list[tuple[str, int, int]] = []
        self.is_root = os.geteuid() == 0

    def run(self, stream: BinaryIO) -> int:
        reader = open_decompressed(stream)
        total = 0
        tar = TarReader(reader)
        try:
            for member in tar:
                total += self._entry(tar, member)
        except GraphDriverError:
            raise
        except OSError as exc:
            raise ArchiveError(
                f"unpacking layer into {self.root}: {exc.strerror or exc}", path=exc.filename
            ) from exc
        for path, atime, mtime in reversed(self.dir_times):
            os.utime(path, ns=(atime, mtime), follow_symlinks=False)
        return total

    def _on_create(self, path: str) -> None:
        """Record ``path`` as new (called before it is made, so a rollback restores the
        parent's times as they were)."""
        self.journal.save_times(os.path.dirname(path))
        self.journal.created(path)
        self.unpacked.add(path)

    def _entry(self, tar: TarReader, member: Entry) -> int:
        parts = clean_name(member.name)
        if not parts:
            return 0  # the root entry itself: the root keeps the driver's mode and owner
        base = parts[-1]
        if base in (".wh.", ".wh..", ".wh..."):
            raise BreakoutError(f"archive entry {member.name!r} uses a reserved whiteout name")
        for part in parts[:-1]:
            if part.startswith(WHITEOUT_PREFIX) and (
                part == OPAQUE_MARKER or not part.startswith(META_PREFIX)
            ):
                # A whiteout or opaque marker names no directory: moby would create one, which
                # then shows up in the container (or, read as a marker, hides the entries).
                raise ArchiveError(
                    f"archive entry {member.name!r} lies under the whiteout {part!r}"
                )
        parent, _ = self.resolver.resolve_dir(parts[:-1], create=True, on_create=self._on_create)
        if base.startswith(WHITEOUT_PREFIX):
            if base == OPAQUE_MARKER:
                keep = {p for p in self.unpacked if os.path.dirname(p) == parent}
                self.whiteouts.opaque(parent, keep, self.journal)
                self.resolver.forget()
            elif not base.startswith(META_PREFIX):
                self.whiteouts.whiteout(parent, base[len(WHITEOUT_PREFIX) :], self.journal)
                self.resolver.forget()
            return 0
        path = os.path.join(parent, base)
        existing = _lstat(path)
        if existing is not None:
            if member.is_dir and stat.S_ISDIR(existing.st_mode):
                self.journal.save_meta(path)
                self._set_meta(path, member, is_link=False)
                self.unpacked.add(path)
                return 0
            self.journal.save_times(parent)
            self.journal.move_aside(path)
            if stat.S_ISDIR(existing.st_mode) or stat.S_ISLNK(existing.st_mode):
                self.resolver.forget()
        return self._create(tar, member, parent, path)

    def _create(self, tar: TarReader, member: Entry, parent: str, path: str) -> int:
        kind = member.type
        if member.is_regular:
            return self._write_file(tar, member, path)
        if kind == tarstream.DIR:
            self._on_create(path)
            os.mkdir(path, 0o700)
        elif kind == tarstream.SYMLINK:
            # A symlink's target is data, stored as written (as Docker does): only the names
            # later resolved through it are kept inside the root, by the resolver.
            self._on_create(path)
            os.symlink(member.linkname, path)
            self.resolver.forget()
        elif kind == tarstream.LINK:
            source = self._link_source(member)
            self._on_create(path)
            os.link(source, path, follow_symlinks=False)
            return 0  # content counted at the first name
        elif kind == tarstream.FIFO:
            self._on_create(path)
            os.mkfifo(path, 0o600)
        elif kind in (tarstream.CHR, tarstream.BLK):
            if not self._make_device(member, path):
                return 0
        else:
            raise ArchiveError(
                f"archive entry {member.name!r} has unsupported type {member.type!r}"
            )
        self._set_meta(path, member, is_link=kind == tarstream.SYMLINK)
        return 0

    def _write_file(self, tar: TarReader, member: Entry, path: str) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        self._on_create(path)
        fd = os.open(path, flags, 0o600)
        try:
            if not tar.copy_content(fd):
                while chunk := tar.read_content(_CHUNK):
                    _write_all(fd, chunk)
            self._set_meta(fd, member, is_link=False)
        finally:
            os.close(fd)
        return member.size

    def _link_source(self, member: Entry) -> str:
        try:
            target = clean_name(member.linkname)
        except BreakoutError as exc:
            raise BreakoutError(
                f"hard link {member.name!r} -> {member.linkname!r} leads outside the layer root"
            ) from exc
        if not target:
            raise BreakoutError(f"hard link {member.name!r} points at the layer root")
        try:
            directory, parts = self.resolver.resolve_dir(
                target[:-1], create=self.lower is not None, on_create=self._on_create
            )
        except (FileNotFoundError, NotADirectoryError) as exc:
            raise ArchiveError(
                f"hard link {member.name!r} -> {member.linkname!r}: target does not exist",
                path=exc.filename,
            ) from exc
        source = os.path.join(directory, target[-1])
        st = _lstat(source)
        if st is None and self.lower is not None:
            below = self.lower.lookup("/".join([*parts, target[-1]]))
            if below is not None and not stat.S_ISDIR(below[1].st_mode):
                # Linking to a parent layer's file: copy it up first, as overlayfs would.
                self._on_create(source)
                _copy_up(below[0], below[1], source)
                st = below[1]
        if st is None:
            raise ArchiveError(
                f"hard link {member.name!r} -> {member.linkname!r}: target does not exist"
            )
        if stat.S_ISDIR(st.st_mode):
            raise ArchiveError(f"hard link {member.name!r} -> {member.linkname!r} is a directory")
        return source

    def _make_device(self, member: Entry, path: str) -> bool:
        mode = stat.S_IFCHR if member.type == tarstream.CHR else stat.S_IFBLK
        self._on_create(path)
        try:
            os.mknod(path, 0o600 | mode, os.makedev(member.devmajor, member.devminor))
        except PermissionError as exc:
            if self.skip_devices:
                return False
            raise ArchiveError(
                f"creating device node {member.name!r}: operation not permitted "
                "(unprivileged; set skip_devices to leave device nodes out)",
                path=path,
            ) from exc
        return True

    def _set_meta(self, target: str | int, member: Entry, *, is_link: bool) -> None:
        """Owner, xattrs, mode and mtime of a new entry (``target``: a path or an open fd)."""
        by_path = not isinstance(target, int)
        try:
            if isinstance(target, int):
                os.fchown(target, member.uid, member.gid)
            else:
                os.lchown(target, member.uid, member.gid)
        except OSError as exc:
            if not (self.ignore_chown_errors and exc.errno in (errno.EPERM, errno.EINVAL)):
                raise
        for name, value in member.xattrs.items():
            try:
                if isinstance(target, int):
                    os.setxattr(target, name, value)
                else:
                    os.setxattr(target, name, value, follow_symlinks=False)
            except OSError as exc:
                # trusted.* and security.* need privilege; user.* must never be dropped.
                if self.is_root or name.startswith("user.") or exc.errno not in _XATTR_DENIED:
                    raise
        if not is_link:
            os.chmod(target, member.mode & 0o7777)  # after chown, which clears setuid bits
        if member.is_dir:
            assert isinstance(target, str)
            self.dir_times.append((target, member.mtime_ns, member.mtime_ns))
        elif by_path:
            os.utime(target, ns=(member.mtime_ns, member.mtime_ns), follow_symlinks=False)
        else:
            os.utime(target, ns=(member.mtime_ns, member.mtime_ns))


def _copy_up(source: str, st: os.stat_result, target: str) -> None:
    """Copy a lower layer's entry into the upper dir with its owner, mode, xattrs and times."""
    if stat.S_ISLNK(st.st_mode):
        os.symlink(os.readlink(source), target)
    elif stat.S_ISREG(st.st_mode):
        shutil.copyfile(source, target, follow_symlinks=False)
    else:
        os.mknod(target, st.st_mode, st.st_rdev)
    os.lchown(target, st.st_uid, st.st_gid)
    copy_xattrs(source, target)
    if not stat.S_ISLNK(st.st_mode):
        os.chmod(target, stat.S_IMODE(st.st_mode))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _lstat(path: str) -> os.stat_result | None:
    try:
        return os.lstat(path)
    except FileNotFoundError:
        return None


# -- packing ---------------------------------------------------------------------------------


def export_changes(root: Path | str, changes: Iterable[Change], out: BinaryIO) -> int:
    """Write a layer tar of ``changes`` (read from ``root``) to ``out``, deterministically.

    Returns the bytes of regular-file content written (each hard-linked inode once).
    """
    root_str = os.fspath(root)
    entries: list[tuple[str, bool]] = []
    for change in changes:
        rel = change.path.lstrip("/")
        if change.kind is ChangeKind.DELETE:
            directory, _, name = rel.rpartition("/")
            rel = f"{directory}/{WHITEOUT_PREFIX}{name}" if directory else WHITEOUT_PREFIX + name
        entries.append((rel, change.kind is ChangeKind.DELETE))
    entries.sort()
    links: dict[tuple[int, int], str] = {}
    writer = TarWriter(out)
    total = 0
    for rel, is_whiteout in entries:
        if is_whiteout:
            writer.add(rel, tarwriter.REG, mode=0o644)
        else:
            total += _add_path(writer, root_str, rel, links)
    writer.close()
    return total


def pack_tree(root: Path | str, out: BinaryIO) -> int:
    """Write every entry under ``root`` as a layer tar (a flattened export)."""
    root_str = os.fspath(root)
    found: list[Change] = []
    for directory, dirs, files in os.walk(root_str):
        rel_dir = os.path.relpath(directory, root_str)
        for name in dirs + files:
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            found.append(Change("/" + rel, ChangeKind.ADD))
    return export_changes(root_str, found, out)


_KINDS = {
    stat.S_IFDIR: tarwriter.DIR,
    stat.S_IFLNK: tarwriter.SYMLINK,
    stat.S_IFIFO: tarwriter.FIFO,
    stat.S_IFCHR: tarwriter.CHR,
    stat.S_IFBLK: tarwriter.BLK,
}


def _add_path(writer: TarWriter, root: str, rel: str, links: dict[tuple[int, int], str]) -> int:
    path = os.path.join(root, rel)
    st = os.lstat(path)
    xattrs = read_xattrs(path, skip_overlay=True)
    fmt = stat.S_IFMT(st.st_mode)
    common = {
        "mode": stat.S_IMODE(st.st_mode),
        "uid": st.st_uid,
        "gid": st.st_gid,
        "mtime_ns": st.st_mtime_ns,
        "xattrs": xattrs,
    }
    if fmt == stat.S_IFREG:
        key = (st.st_dev, st.st_ino)
        first = links.get(key) if st.st_nlink > 1 else None
        if first is not None:
            writer.add(rel, tarwriter.LINK, linkname=first, **common)  # type: ignore[arg-type]
            return 0
        if st.st_nlink > 1:
            links[key] = rel
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        try:
            writer.add(rel, tarwriter.REG, size=st.st_size, content=fd, **common)  # type: ignore[arg-type]
        finally:
            os.close(fd)
        return st.st_size
    kind = _KINDS.get(fmt)
    if kind is None:
        return 0  # sockets are not archived
    writer.add(
        rel,
        kind,
        linkname=os.readlink(path) if kind == tarwriter.SYMLINK else "",
        devmajor=os.major(st.st_rdev),
        devminor=os.minor(st.st_rdev),
        **common,  # type: ignore[arg-type]
    )
    return 0
