"""The overlay filesystem as a ``pyfuse3.Operations``: requests in, ``Namespace`` calls out.

The merged view of N read-only lower directories (nearest first) and an optional upper
directory, with kernel overlayfs semantics: whiteouts (0/0 character devices or ``.wh.NAME``
files), opaque directories (``overlay.opaque`` xattrs or ``.wh..wh..opq``), lazy copy-up (on
the first change, never on a read), hard links that keep one inode number across layers and
copy-up, inode numbers stable for the life of the mount.

Speed comes from asking the kernel to cache: entries and attributes live for ``timeout``
(the filesystem is the only writer of its layers), read-only opens keep the page cache, FLUSH
is declined so ``close`` costs no round trip, negative lookups are cached too, and reads are a
``pread`` on a descriptor kept per open handle. Locks (``flock``, POSIX) are not implemented
here, so the kernel handles them locally, as for any FUSE filesystem that leaves them out.

A copy-up is flushed to disk before it replaces the lower file in the view, as kernel overlayfs
does, so a crash never leaves a truncated copy hiding intact lower data; fuse-overlayfs does not
flush. ``fsync=0`` (or ``volatile``) skips that flush and makes ``fsync(2)`` a no-op.

Departures from POSIX and from kernel overlayfs:

- Renaming a directory that merges lower layers fails with ``EXDEV`` (fuse-overlayfs does the
  same; overlayfs does without ``redirect_dir``); ``mv`` falls back to copy and delete.
  ``RENAME_EXCHANGE`` is refused (``EINVAL``).
- A descriptor opened read-only before a copy-up keeps reading the lower file; writes through
  another descriptor show up there only through the shared page cache.
- A merged directory reports ``st_nlink`` 1 (as overlayfs), so tools do not count on it.
- Names starting with ``.wh.`` cannot be created (``EINVAL``): they would read back as
  whiteouts. The overlay bookkeeping xattrs (``trusted.overlay.*``, ``user.overlay.*``) are
  hidden and cannot be set (``EPERM``).
- Changes made to the layer directories behind the mount's back are not seen until the kernel
  drops its cache (as for overlayfs, where they are undefined).
- Hard links of a lower file are one inode while mounted; a name the mount never looked up keeps
  pointing at the lower original after the file is copied up (overlayfs without ``index``
  breaks such links the same way).
- Unprivileged without a user namespace, every file belongs to the mounting user; ``chown`` to
  anyone else fails (``EPERM``) and copy-up keeps the lower owner only where it can.
- Requests are served one at a time, so a long copy-up holds back other requests.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Sequence

import pyfuse3

from drivers.fuse.boundary import handler
from drivers.fuse.inodes import Entry, Node
from drivers.fuse.layers import is_hidden_xattr
from drivers.fuse.namespace import Namespace
from drivers.fuse.tree import UPPER, fail

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_TRUNC
# The kernel reads this before every write (to drop file capabilities): answered from memory
# once a file is known not to have it.
CAPABILITY = b"security.capability"
# Flags that mean nothing for the backing file. O_DIRECT would demand aligned buffers, which
# the replies pyfuse3 hands over are not.
OPEN_DROP = os.O_CREAT | os.O_EXCL | os.O_NOCTTY | os.O_DIRECT


class Handle:
    """An open regular file: the backing descriptor doubles as the FUSE file handle."""

    __slots__ = ("fd", "node", "upper")

    def __init__(self, node: Node, fd: int) -> None:
        self.node = node
        self.fd = fd
        self.upper = node.layer == UPPER  # the descriptor is on the upper copy


class OverlayFS(pyfuse3.Operations):
    """FUSE request handlers over a ``Namespace``."""

    supports_dot_lookup = False
    enable_writeback_cache = False
    enable_acl = False

    def __init__(self, tree: Namespace) -> None:
        super().__init__()
        self.tree = tree
        self.table = tree.table
        self.files: dict[int, Handle] = {}
        self.dirs: dict[int, tuple[Node, list[tuple[bytes, Entry]]]] = {}
        self._next_dir = 1
        self._negative = pyfuse3.EntryAttributes()
        self._negative.st_ino = 0
        self._negative.entry_timeout = tree.timeout
        self._attributes_changed = tree.attributes_changed

    def init(self) -> None:
        """The session is up: from now on the kernel's caches can be told about changes."""
        self.tree.attributes_changed = self._invalidate_attributes  # type: ignore[method-assign]

    def _invalidate_attributes(self, node: Node) -> None:
        self._attributes_changed(node)
        try:
            pyfuse3.invalidate_inode(node.ino, attr_only=True)
        except OSError as exc:
            if exc.errno != errno.ENOENT:  # ENOENT: the kernel does not hold the inode
                raise

    def _found(self, node: Node) -> pyfuse3.EntryAttributes:
        """Attributes of a node the kernel now holds one more reference to."""
        node.nlookup += 1
        return self.tree.attributes(node)

    # -- names ---------------------------------------------------------------------------

    @handler
    def lookup(
        self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        node = self.tree.lookup(self.table[parent_inode], name)
        return self._negative if node is None else self._found(node)

    async def forget(self, inode_list: Sequence[tuple[int, int]]) -> None:
        for inode, count in inode_list:
            self.table.forget(inode, count)

    @handler
    def getattr(self, inode: int, ctx: pyfuse3.RequestContext) -> pyfuse3.EntryAttributes:
        node = self.table[inode]
        if not node.dead:
            return self.tree.make_attr(node, self.tree.lstat(node))
        for handle in self.files.values():
            if handle.node is node:
                return self.tree.make_attr(node, os.fstat(handle.fd))
        if node.attr is not None:
            return node.attr
        raise fail(errno.ENOENT)

    @handler
    def readlink(self, inode: int, ctx: pyfuse3.RequestContext) -> bytes:
        return os.readlink(self.tree.backing(self.table[inode]))

    @handler
    def mknod(
        self, parent_inode: int, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._found(self.tree.mknod(self.table[parent_inode], name, mode, rdev, ctx))

    @handler
    def mkdir(
        self, parent_inode: int, name: bytes, mode: int, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._found(self.tree.mkdir(self.table[parent_inode], name, mode, ctx))

    @handler
    def symlink(
        self, parent_inode: int, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        return self._found(self.tree.symlink(self.table[parent_inode], name, target, ctx))

    @handler
    def link(
        self, inode: int, new_parent_inode: int, new_name: bytes, ctx: pyfuse3.RequestContext
    ) -> pyfuse3.EntryAttributes:
        node = self.tree.link(self.table[inode], self.table[new_parent_inode], new_name)
        return self._found(node)

    @handler
    def unlink(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.tree.unlink(self.table[parent_inode], name)

    @handler
    def rmdir(self, parent_inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        self.tree.rmdir(self.table[parent_inode], name)

    @handler
    def rename(
        self,
        parent_inode_old: int,
        name_old: bytes,
        parent_inode_new: int,
        name_new: bytes,
        flags: int,
        ctx: pyfuse3.RequestContext,
    ) -> None:
        old_parent, new_parent = self.table[parent_inode_old], self.table[parent_inode_new]
        self.tree.rename(old_parent, name_old, new_parent, name_new, flags)

    # -- attributes and xattrs -----------------------------------------------------------

    @handler
    def setattr(
        self,
        inode: int,
        attr: pyfuse3.EntryAttributes,
        fields: pyfuse3.SetattrFields,
        fh: int | None,
        ctx: pyfuse3.RequestContext,
    ) -> pyfuse3.EntryAttributes:
        node = self.table[inode]
        handle = self.files.get(fh) if fh is not None else None
        target: bytes | int
        if handle is not None and handle.node is node and handle.upper:
            target = handle.fd
        elif node.dead:
            raise fail(errno.ENOENT)
        else:
            truncating = fields.update_size and attr.st_size == 0
            self.tree.copy_up(node, data=not truncating)
            target = self.tree.backing(node)
        if fields.update_size:
            os.truncate(target, attr.st_size)
        if fields.update_uid or fields.update_gid:
            uid = attr.st_uid if fields.update_uid else -1
            gid = attr.st_gid if fields.update_gid else -1
            if isinstance(target, int):
                os.fchown(target, uid, gid)
            else:
                os.chown(target, uid, gid, follow_symlinks=False)
        if fields.update_mode and node.kind != stat.S_IFLNK:
            os.chmod(target, stat.S_IMODE(attr.st_mode))
        if fields.update_atime or fields.update_mtime:
            follow = isinstance(target, int)
            if fields.update_atime and fields.update_mtime:
                times = (attr.st_atime_ns, attr.st_mtime_ns)
            else:
                now = os.stat(target, follow_symlinks=follow)
                times = (
                    attr.st_atime_ns if fields.update_atime else now.st_atime_ns,
                    attr.st_mtime_ns if fields.update_mtime else now.st_mtime_ns,
                )
            os.utime(target, ns=times, follow_symlinks=follow)
        return self.tree.make_attr(node, os.stat(target, follow_symlinks=isinstance(target, int)))

    @handler
    def getxattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> bytes:
        if is_hidden_xattr(name):
            raise fail(pyfuse3.ENOATTR)
        node = self.table[inode]
        if name != CAPABILITY:
            return os.getxattr(self.tree.backing(node), name, follow_symlinks=False)
        if node.no_caps:
            raise fail(pyfuse3.ENOATTR)
        try:
            return os.getxattr(self.tree.backing(node), name, follow_symlinks=False)
        except OSError as exc:
            node.no_caps = exc.errno == pyfuse3.ENOATTR
            raise

    @handler
    def listxattr(self, inode: int, ctx: pyfuse3.RequestContext) -> Sequence[bytes]:
        names = os.listxattr(self.tree.backing(self.table[inode]), follow_symlinks=False)
        return [n for n in map(os.fsencode, names) if not is_hidden_xattr(n)]

    @handler
    def setxattr(self, inode: int, name: bytes, value: bytes, ctx: pyfuse3.RequestContext) -> None:
        if is_hidden_xattr(name):
            raise fail(errno.EPERM)
        node = self.table[inode]
        self.tree.copy_up(node)
        os.setxattr(self.tree.backing(node), name, value, follow_symlinks=False)
        node.no_caps = node.no_caps and name != CAPABILITY
        node.attr = None

    @handler
    def removexattr(self, inode: int, name: bytes, ctx: pyfuse3.RequestContext) -> None:
        if is_hidden_xattr(name):
            raise fail(pyfuse3.ENOATTR)
        node = self.table[inode]
        os.getxattr(self.tree.backing(node), name, follow_symlinks=False)  # ENODATA first
        self.tree.copy_up(node)
        os.removexattr(self.tree.backing(node), name, follow_symlinks=False)
        node.attr = None

    @handler
    def statfs(self, ctx: pyfuse3.RequestContext) -> pyfuse3.StatvfsData:
        st = os.statvfs(self.tree.layers[0].root)
        data = pyfuse3.StatvfsData()
        for field in (
            "f_bsize", "f_frsize", "f_blocks", "f_bfree", "f_bavail",
            "f_files", "f_ffree", "f_favail", "f_namemax",
        ):  # fmt: skip
            setattr(data, field, getattr(st, field))
        return data

    # -- files ---------------------------------------------------------------------------

    @handler
    def open(self, inode: int, flags: int, ctx: pyfuse3.RequestContext) -> pyfuse3.FileInfo:
        node = self.table[inode]
        writing = bool(flags & WRITE_FLAGS)
        if writing:
            self.tree.copy_up(node, data=not flags & os.O_TRUNC)
            node.attr = None
        fd = os.open(self.tree.backing(node), (flags & ~OPEN_DROP) | os.O_CLOEXEC)
        self._opened(node, fd)
        return pyfuse3.FileInfo(fh=fd, keep_cache=not writing)

    def _opened(self, node: Node, fd: int) -> None:
        node.opens += 1
        self.files[fd] = Handle(node, fd)

    @handler
    def create(
        self, parent_inode: int, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[pyfuse3.FileInfo, pyfuse3.EntryAttributes]:
        parent = self.table[parent_inode]
        existing = self.tree.lookup(parent, name)
        if existing is not None:  # CREATE without a LOOKUP first, on a name that exists
            if flags & os.O_EXCL:
                raise fail(errno.EEXIST)
            info = self._open_existing(existing, flags)
            return info, self._found(existing)
        node, fd = self.tree.create(parent, name, mode, flags, ctx)
        self._opened(node, fd)
        return pyfuse3.FileInfo(fh=fd, keep_cache=False), self._found(node)

    def _open_existing(self, node: Node, flags: int) -> pyfuse3.FileInfo:
        if node.is_dir:
            raise fail(errno.EISDIR)
        if flags & WRITE_FLAGS:
            self.tree.copy_up(node, data=not flags & os.O_TRUNC)
            node.attr = None
        fd = os.open(self.tree.backing(node), (flags & ~OPEN_DROP) | os.O_CLOEXEC)
        self._opened(node, fd)
        return pyfuse3.FileInfo(fh=fd, keep_cache=not flags & WRITE_FLAGS)

    @handler
    def read(self, fh: int, off: int, size: int) -> bytes:
        return os.pread(fh, size, off)

    @handler
    def write(self, fh: int, off: int, buf: bytes) -> int:
        written = os.pwrite(fh, buf, off)
        self.files[fh].node.attr = None
        return written

    async def flush(self, fh: int) -> None:
        # Declined once, never asked again: saves a round trip on every close(2).
        raise pyfuse3.FUSEError(errno.ENOSYS)

    @handler
    def release(self, fh: int) -> None:
        handle = self.files.pop(fh)
        os.close(fh)
        handle.node.opens -= 1
        self.table.release(handle.node)

    @handler
    def fsync(self, fh: int, datasync: bool) -> None:
        if self.tree.fsync:
            (os.fdatasync if datasync else os.fsync)(fh)

    # -- directories ---------------------------------------------------------------------

    @handler
    def opendir(self, inode: int, ctx: pyfuse3.RequestContext) -> int:
        node = self.table[inode]
        snapshot = list(self.tree.listing(node).items())
        handle = self._next_dir
        self._next_dir += 1
        self.dirs[handle] = (node, snapshot)
        return handle

    @handler
    def readdir(self, fh: int, start_id: int, token: pyfuse3.ReaddirToken) -> None:
        node, snapshot = self.dirs[fh]
        tree = self.tree
        if start_id == 0:
            if not pyfuse3.readdir_reply(token, b".", tree.attributes(node), 1):
                return
            start_id = 1
        if start_id == 1:
            parent = node.parent or node
            if not pyfuse3.readdir_reply(token, b"..", tree.attributes(parent), 2):
                return
            start_id = 2
        entries = node.entries or {}
        for index in range(start_id - 2, len(snapshot)):
            name, entry = snapshot[index]
            if entries.get(name) is not entry:
                continue  # removed or replaced since the directory was opened
            try:
                child = tree.child(node, name, entry)
            except FileNotFoundError:
                continue
            if not pyfuse3.readdir_reply(token, name, tree.attributes(child), index + 3):
                return
            child.nlookup += 1

    @handler
    def releasedir(self, fh: int) -> None:
        del self.dirs[fh]

    async def fsyncdir(self, fh: int, datasync: bool) -> None:
        return None
