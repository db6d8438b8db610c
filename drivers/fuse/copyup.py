"""Copying one object from a lower layer into the work dir with its metadata.

The caller renames the copy into the upper dir, so a copy-up is atomic: the upper dir never
holds a half-written file. Metadata order matters: the owner first (chown clears set-id bits and
``security.capability``), then the mode, then xattrs, then the times (setting anything else
would move them).
"""

from __future__ import annotations

import errno
import fcntl
import os
import stat

from drivers.fuse.layers import is_hidden_xattr

CHUNK = 1 << 30
IS_ROOT = os.geteuid() == 0
FICLONE = 0x40049409  # _IOW(0x94, 9, int): share the extents (btrfs, xfs); nothing is copied


def copy_object(src: bytes, dst: bytes, st: os.stat_result, *, data: bool, fsync: bool) -> None:
    """Create ``dst`` as a copy of ``src`` (whose ``lstat`` is ``st``); directories are copied
    without their entries, regular files with their data unless ``data`` is false."""
    kind = stat.S_IFMT(st.st_mode)
    if kind == stat.S_IFREG:
        _copy_regular(src, dst, st, data=data, fsync=fsync)
        return
    if kind == stat.S_IFDIR:
        os.mkdir(dst, 0o700)
    elif kind == stat.S_IFLNK:
        os.symlink(os.readlink(src), dst)
    else:
        os.mknod(dst, st.st_mode, st.st_rdev)
    _chown(dst, st)
    if kind != stat.S_IFLNK:
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    copy_xattrs(src, dst)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def _copy_regular(src: bytes, dst: bytes, st: os.stat_result, *, data: bool, fsync: bool) -> None:
    src_fd = os.open(src, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        dst_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            if data and st.st_size and not _clone(src_fd, dst_fd):
                copy_data(src_fd, dst_fd, st.st_size)
            _chown(dst_fd, st)
            os.fchmod(dst_fd, stat.S_IMODE(st.st_mode))
            copy_xattrs(src_fd, dst_fd)
            os.utime(dst_fd, ns=(st.st_atime_ns, st.st_mtime_ns))
            if fsync:
                os.fsync(dst_fd)
        finally:
            os.close(dst_fd)
    finally:
        os.close(src_fd)


def _clone(src_fd: int, dst_fd: int) -> bool:
    """Reflink the whole file where the filesystem can; ``False`` where it cannot."""
    try:
        fcntl.ioctl(dst_fd, FICLONE, src_fd)
    except OSError as exc:
        if exc.errno in (errno.EOPNOTSUPP, errno.ENOTTY, errno.EXDEV, errno.EINVAL, errno.ENOSYS):
            return False
        raise
    return True


def copy_data(src_fd: int, dst_fd: int, size: int) -> None:
    """Copy ``size`` bytes, in the kernel where it can, keeping holes of sparse files."""
    offset = 0
    while offset < size:
        try:
            start = os.lseek(src_fd, offset, os.SEEK_DATA)
        except OSError as exc:
            if exc.errno != errno.ENXIO:
                raise
            break  # only a hole is left
        end = os.lseek(src_fd, start, os.SEEK_HOLE)
        _copy_range(src_fd, dst_fd, start, min(end, size) - start)
        offset = end
    os.ftruncate(dst_fd, size)


def _copy_range(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    done = 0
    while done < count:
        position = offset + done
        try:
            copied = os.copy_file_range(
                src_fd, dst_fd, min(count - done, CHUNK), position, position
            )
        except OSError as exc:
            if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
                raise
            _copy_by_reading(src_fd, dst_fd, position, count - done)
            return
        if copied == 0:
            return  # the source shrank while being copied
        done += copied


def _copy_by_reading(src_fd: int, dst_fd: int, offset: int, count: int) -> None:
    end = offset + count
    while offset < end:
        block = os.pread(src_fd, min(end - offset, 1 << 20), offset)
        if not block:
            return
        written = 0
        while written < len(block):
            written += os.pwrite(dst_fd, block[written:], offset + written)
        offset += len(block)


def copy_xattrs(src: bytes | int, dst: bytes | int) -> None:
    """Copy every xattr but the overlay bookkeeping ones (paths are not followed)."""
    follow = isinstance(src, int)  # a descriptor cannot be combined with follow_symlinks
    for text in os.listxattr(src, follow_symlinks=follow):
        name = os.fsencode(text)
        if is_hidden_xattr(name):
            continue
        value = os.getxattr(src, name, follow_symlinks=follow)
        os.setxattr(dst, name, value, follow_symlinks=isinstance(dst, int))


def _chown(dst: bytes | int, st: os.stat_result) -> None:
    try:
        if isinstance(dst, int):
            os.fchown(dst, st.st_uid, st.st_gid)
        else:
            os.chown(dst, st.st_uid, st.st_gid, follow_symlinks=False)
    except PermissionError:
        if IS_ROOT:
            raise
        # Unprivileged without a user namespace: files can only belong to the mounting user.
