"""Copy a directory tree exactly, as ``cp -a`` does, for vfs snapshots.

File data moves by the cheapest method the filesystem offers: a reflink (``FICLONE``), else
``copy_file_range``, else read/write. In ``auto`` mode the first failure of a method that means
"not here" downgrades to the next one for the rest of the copy; an explicit mode uses only that
method. Kept as in the source: every mode bit, owners, nanosecond times, xattrs, hard links,
holes of sparse files, symlinks, fifos, sockets and device nodes.

The walk is iterative and works through directory file descriptors, so neither deep nesting
nor paths longer than PATH_MAX stop it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat
import tempfile
from pathlib import Path

from drivers.vfs.fs import open_dir

METHODS = ("reflink", "copy_file_range", "readwrite")
MODES = ("auto", *METHODS)

FICLONE = 0x40049409
# Errors that say "this method does not work here", not "this file is broken".
_UNSUPPORTED = frozenset(
    {errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.ETXTBSY}
)
_READ_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_CREATE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 30
_BUFFER = 1 << 20


class CopyError(OSError):
    """Copying a tree failed; the message says what was being done and to which path."""

    @classmethod
    def wrap(cls, exc: OSError, doing: str, path: str) -> CopyError:
        """A ``CopyError`` with the errno of ``exc`` and a message naming ``path``."""
        return cls(exc.errno, f"{doing} {path}: {exc.strerror or exc}", path)

    def __str__(self) -> str:
        return str(self.strerror)


def copy_tree(src: Path, dst: Path, *, mode: str = "auto") -> str:
    """Copy the tree at ``src`` to the new directory ``dst``; returns the copy method used.

    ``dst`` must not exist. The method returned is the one that copied the last file's data
    (after any downgrade), or the one that would have been tried when no file had data. On
    failure (``CopyError``) the partial ``dst`` is left for the caller to delete.
    """
    copier = _TreeCopier(mode)
    copier.copy(os.fspath(src), os.fspath(dst))
    return copier.method


def probe_method(directory: Path, *, mode: str = "auto") -> str:
    """The method ``copy_tree`` would use for files in ``directory``; ``OSError`` if none."""
    copier = _TreeCopier(mode)
    with tempfile.TemporaryFile(dir=directory) as src, tempfile.TemporaryFile(dir=directory) as dst:
        src.write(b"probe")
        src.flush()
        copier.copy_data(src.fileno(), dst.fileno(), os.fstat(src.fileno()), os.fspath(directory))
    return copier.method


class _TreeCopier:
    """State of one tree copy: the method in force, hard links seen, directories to finish."""

    def __init__(self, mode: str) -> None:
        if mode not in MODES:
            raise ValueError(f"unknown copy mode {mode!r} (one of {', '.join(MODES)})")
        self.method = METHODS[0] if mode == "auto" else mode
        self.strict = mode != "auto"
        self.privileged = os.geteuid() == 0
        self.caller = (os.geteuid(), os.getegid())
        # True while new files in the directory being copied get the caller's owner by
        # themselves (its group is the caller's), so files owned by the caller need no chown.
        self.owned_by_caller = False
        self.links: dict[tuple[int, int], str] = {}
        # Each directory in pre-order, with its xattrs: those, its mode and its times are set
        # last, so that a default ACL is not inherited by the copied children.
        self.dirs: list[tuple[str, os.stat_result, list[tuple[str, bytes]]]] = []

    def copy(self, src: str, dst: str) -> None:
        """Copy the tree; directories get modes and times once everything below them exists."""
        top = os.lstat(src)
        if not stat.S_ISDIR(top.st_mode):
            raise NotADirectoryError(errno.ENOTDIR, os.strerror(errno.ENOTDIR), src)
        os.mkdir(dst, 0o700)
        stack = [(src, dst, top)]
        while stack:
            src_dir, dst_dir, st = stack.pop()
            self.copy_dir(src_dir, dst_dir, st, stack)
        # Children first, so a parent that denies write access is locked last.
        for path, st, xattrs in reversed(self.dirs):
            try:
                self.finish_dir(path, st, xattrs)
            except OSError as exc:
                raise CopyError.wrap(exc, "setting mode and times of", path) from exc

    def copy_dir(
        self, src: str, dst: str, st: os.stat_result, stack: list[tuple[str, str, os.stat_result]]
    ) -> None:
        """Copy attributes and entries of one directory; queue its subdirectories."""
        try:
            src_fd = open_dir(src)
            try:
                dst_fd = open_dir(dst)
                try:
                    self.set_owner(dst_fd, st, None)
                    self.owned_by_caller = st.st_gid == self.caller[1]
                    self.dirs.append((dst, st, read_xattrs(src_fd)))
                    self.copy_entries(src_fd, dst_fd, src, dst, stack)
                finally:
                    os.close(dst_fd)
            finally:
                os.close(src_fd)
        except CopyError:
            raise
        except OSError as exc:
            raise CopyError.wrap(exc, "copying directory", src) from exc

    def copy_entries(
        self,
        src_fd: int,
        dst_fd: int,
        src: str,
        dst: str,
        stack: list[tuple[str, str, os.stat_result]],
    ) -> None:
        """Copy every entry of an open directory; subdirectories are made and queued."""
        with os.scandir(src_fd) as entries:
            for entry in entries:
                name = entry.name
                try:
                    child = entry.stat(follow_symlinks=False)
                    if stat.S_ISDIR(child.st_mode):
                        os.mkdir(name, 0o700, dir_fd=dst_fd)
                        stack.append((f"{src}/{name}", f"{dst}/{name}", child))
                    else:
                        self.copy_entry(src_fd, dst_fd, name, child, src, dst)
                except OSError as exc:
                    raise CopyError.wrap(exc, "copying", f"{src}/{name}") from exc

    def copy_entry(
        self, src_fd: int, dst_fd: int, name: str, st: os.stat_result, src: str, dst: str
    ) -> None:
        """Copy one non-directory entry, or link it to an earlier copy of the same inode."""
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                os.link(first, name, dst_dir_fd=dst_fd, follow_symlinks=False)
                return
            self.links[key] = f"{dst}/{name}"
        kind = stat.S_IFMT(st.st_mode)
        if kind == stat.S_IFREG:
            self.copy_file(src_fd, dst_fd, name, st, src)
            return
        if kind == stat.S_IFLNK:
            os.symlink(os.readlink(name, dir_fd=src_fd), name, dir_fd=dst_fd)
        elif kind == stat.S_IFIFO:
            os.mkfifo(name, 0o600, dir_fd=dst_fd)
        else:
            # Character and block devices need privilege; sockets do not.
            os.mknod(name, kind | 0o600, st.st_rdev, dir_fd=dst_fd)
        self.set_owner(name, st, dst_fd)
        xattrs = read_xattrs(_at(src, src_fd, name), follow=False)
        if xattrs:
            self.write_xattrs(_at(dst, dst_fd, name), xattrs, follow=False)
        if kind != stat.S_IFLNK:
            os.chmod(name, stat.S_IMODE(st.st_mode), dir_fd=dst_fd)
        os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)

    def copy_file(self, src_fd: int, dst_fd: int, name: str, st: os.stat_result, src: str) -> None:
        """Copy a regular file: data, then owner, xattrs, mode (chown clears setuid), times."""
        in_fd = os.open(name, _READ_FLAGS, dir_fd=src_fd)
        try:
            out_fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=dst_fd)
            try:
                if st.st_size:
                    self.copy_data(in_fd, out_fd, st, f"{src}/{name}")
                if not self.owned_by_caller or (st.st_uid, st.st_gid) != self.caller:
                    self.set_owner(out_fd, st, None)
                xattrs = read_xattrs(in_fd)
                if xattrs:
                    self.write_xattrs(out_fd, xattrs)
                os.fchmod(out_fd, stat.S_IMODE(st.st_mode))
                os.utime(out_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            finally:
                os.close(out_fd)
        finally:
            os.close(in_fd)

    def copy_data(self, in_fd: int, out_fd: int, st: os.stat_result, path: str) -> None:
        """Copy file content with the method in force, downgrading in auto mode."""
        while True:
            method = self.method
            try:
                if method == "reflink":
                    fcntl.ioctl(out_fd, FICLONE, in_fd)
                elif st.st_blocks * 512 < st.st_size:
                    _copy_sparse(in_fd, out_fd, st.st_size, method)
                elif method == "copy_file_range":
                    _copy_range(in_fd, out_fd, st.st_size)
                else:
                    _copy_readwrite(in_fd, out_fd, None, st.st_size)
                return
            except OSError as exc:
                if exc.errno not in _UNSUPPORTED or method == METHODS[-1]:
                    raise
                if self.strict:
                    raise OSError(
                        exc.errno, f"copy method {method} does not work here: {exc.strerror}", path
                    ) from exc
                self.method = METHODS[METHODS.index(method) + 1]
                os.lseek(in_fd, 0, os.SEEK_SET)
                os.lseek(out_fd, 0, os.SEEK_SET)
                os.ftruncate(out_fd, 0)

    def set_owner(self, target: str | int, st: os.stat_result, dir_fd: int | None) -> None:
        """Give ``target`` the owner of ``st``; without root, accept only what it has already."""
        follow = isinstance(target, int)  # an fd is the file itself
        try:
            os.chown(target, st.st_uid, st.st_gid, dir_fd=dir_fd, follow_symlinks=follow)
        except PermissionError:
            if self.privileged:
                raise
            now = os.stat(target, dir_fd=dir_fd, follow_symlinks=follow)
            if (now.st_uid, now.st_gid) != (st.st_uid, st.st_gid):
                raise

    def write_xattrs(
        self, target: str | int, xattrs: list[tuple[str, bytes]], *, follow: bool = True
    ) -> None:
        """Set extended attributes; without root, skip the ``trusted.*`` ones refused."""
        for key, value in xattrs:
            try:
                os.setxattr(target, key, value, follow_symlinks=follow)
            except OSError as exc:
                if (
                    self.privileged
                    or not key.startswith("trusted.")
                    or exc.errno not in (errno.EPERM, errno.EOPNOTSUPP)
                ):
                    raise

    def finish_dir(self, path: str, st: os.stat_result, xattrs: list[tuple[str, bytes]]) -> None:
        """Set a copied directory's xattrs, mode and times, in that order."""
        target: str | int = path
        fd = None
        if len(path) > 1000 and len(os.fsencode(path)) >= 4000:
            fd = target = open_dir(path)
        try:
            if xattrs:
                self.write_xattrs(target, xattrs)
            os.chmod(target, stat.S_IMODE(st.st_mode))
            os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
        finally:
            if fd is not None:
                os.close(fd)


def read_xattrs(source: str | int, *, follow: bool = True) -> list[tuple[str, bytes]]:
    """Every extended attribute of ``source`` (a path or an fd) as (name, value) pairs."""
    try:
        names = os.listxattr(source, follow_symlinks=follow)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return []
        raise
    return [(key, os.getxattr(source, key, follow_symlinks=follow)) for key in names]


def _at(dir_path: str, dir_fd: int, name: str) -> str:
    """A path to ``name`` in a directory: the plain one, or via /proc when it is too long."""
    path = f"{dir_path}/{name}"
    if len(path) < 1024 or len(os.fsencode(path)) < 4000:
        return path
    return f"/proc/self/fd/{dir_fd}/{name}"


def _copy_range(in_fd: int, out_fd: int, size: int) -> None:
    """Copy ``size`` bytes in the kernel; finish by read/write if the source ends early."""
    remaining = size
    while remaining > 0:
        done = os.copy_file_range(in_fd, out_fd, min(remaining, _CHUNK))
        if done == 0:
            # Some filesystems (procfs-like) report a size but give no data this way.
            _copy_readwrite(in_fd, out_fd, None, remaining)
            return
        remaining -= done


def _copy_readwrite(in_fd: int, out_fd: int, count: int | None, size_hint: int = _BUFFER) -> None:
    """Copy by read/write from the current offsets, ``count`` bytes or to the end."""
    wanted = count if count is not None else size_hint
    buffer = bytearray(max(1, min(wanted, _BUFFER)))
    view = memoryview(buffer)
    remaining = count
    while remaining is None or remaining > 0:
        got = os.readv(in_fd, [buffer])
        if got == 0:
            return
        if remaining is not None:
            got = min(got, remaining)
            remaining -= got
        written = 0
        while written < got:
            written += os.write(out_fd, view[written:got])


def _copy_sparse(in_fd: int, out_fd: int, size: int, method: str) -> None:
    """Copy only the data regions of a sparse file, so its holes stay holes."""
    offset = 0
    while offset < size:
        try:
            data = os.lseek(in_fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno == errno.ENXIO:  # only a hole remains
                break
            raise
        hole = min(os.lseek(in_fd, data, os.SEEK_HOLE), size)
        if method == "copy_file_range":
            position = data
            while position < hole:
                done = os.copy_file_range(in_fd, out_fd, hole - position, position, position)
                if done == 0:
                    break
                position += done
        else:
            os.lseek(in_fd, data, os.SEEK_SET)
            os.lseek(out_fd, data, os.SEEK_SET)
            _copy_readwrite(in_fd, out_fd, hole - data)
        offset = hole
    os.ftruncate(out_fd, size)
