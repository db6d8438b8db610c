"""Changes to the merged tree's names: create, mkdir, mknod, symlink, link, unlink, rmdir, rename.

New objects always land in the upper layer. A name that a lower layer still has is hidden with a
whiteout when removed; a directory made where a lower one was deleted is opaque, so the old
contents do not come back.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat

import pyfuse3

from drivers.fuse.copyup import IS_ROOT
from drivers.fuse.inodes import Entry, Node
from drivers.fuse.layers import join
from drivers.fuse.tree import UPPER, Tree, fail
from graphdriver.markers import WHITEOUT_PREFIX_B as WHITEOUT_PREFIX

EUID, EGID = os.geteuid(), os.getegid()


class Owner:
    """Who a new object belongs to: the caller, with the group of a set-group-id directory."""

    __slots__ = ("gid", "inherited", "uid")

    def __init__(self, uid: int, gid: int, *, inherited: bool) -> None:
        self.uid = uid
        self.gid = gid
        self.inherited = inherited  # the directory's group, which the kernel gives anyway


class Namespace(Tree):
    """``Tree`` plus the operations that add, remove and move names."""

    def owner(self, ctx: pyfuse3.RequestContext, parent: Node) -> Owner:
        attr = self.attributes(parent)
        if attr.st_mode & stat.S_ISGID:
            return Owner(ctx.uid, attr.st_gid, inherited=True)
        return Owner(ctx.uid, ctx.gid, inherited=False)

    def _chown(self, target: bytes | int, owner: Owner) -> None:
        if not IS_ROOT:
            return  # unprivileged: everything belongs to the mounting user
        if owner.uid == EUID and (owner.inherited or owner.gid == EGID):
            return  # made with this owner already
        if isinstance(target, int):
            os.fchown(target, owner.uid, owner.gid)
        else:
            os.chown(target, owner.uid, owner.gid, follow_symlinks=False)

    def _free_name(self, parent: Node, name: bytes) -> bool:
        """Check ``name`` can be made in ``parent`` and copy the parent up; returns whether
        the upper layer holds a whiteout there (so something below must stay hidden)."""
        self.require_writable()
        if name.startswith(WHITEOUT_PREFIX):
            raise fail(errno.EINVAL, name)  # would read back as a whiteout
        if name in self.listing(parent):
            raise fail(errno.EEXIST, name)
        self.copy_up(parent)
        return name in parent.whiteouts

    def _install(self, parent: Node, name: bytes, temp: bytes, whited: bool) -> None:
        """Move an object made in the work dir to ``name``, replacing the name's whiteout."""
        target = self.upper_path(join(parent.path, name))
        if os.path.isdir(temp) and not os.path.islink(temp):
            self.stack.clear_whiteout(parent.path, name)  # a dir cannot replace a file
            try:
                os.rename(temp, target)
            except OSError:
                self.stack.write_whiteout(parent.path, name)
                raise
        else:
            os.rename(temp, target)
        if whited:
            self.stack.clear_whiteout(parent.path, name)

    def _added(self, parent: Node, name: bytes, st: os.stat_result, whited: bool) -> Node:
        entry = Entry(UPPER, stat.S_IFMT(st.st_mode))
        entry.below = whited
        assert parent.entries is not None
        parent.entries[name] = entry
        parent.whiteouts.discard(name)
        parent.attr = None
        node = self.adopt(parent, name, entry, st)
        node.no_caps = True
        if node.is_dir:
            node.entries = {}
        return node

    def _new_path(self, parent: Node, name: bytes, whited: bool) -> bytes:
        """Where to make a new object: in place, or in the work dir if a whiteout is there."""
        return self.stack.temp_path() if whited else self.upper_path(join(parent.path, name))

    # -- create -------------------------------------------------------------------------

    def create(
        self, parent: Node, name: bytes, mode: int, flags: int, ctx: pyfuse3.RequestContext
    ) -> tuple[Node, int]:
        """Create and open a regular file; returns its node and the open descriptor."""
        whited = self._free_name(parent, name)
        path = self._new_path(parent, name, whited)
        access = flags & (os.O_ACCMODE | os.O_APPEND | os.O_SYNC | os.O_DSYNC)
        fd = os.open(path, access | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, stat.S_IMODE(mode))
        try:
            self._chown(fd, self.owner(ctx, parent))
            if whited:
                self._install(parent, name, path, whited)
            node = self._added(parent, name, os.fstat(fd), whited)
        except BaseException:
            os.close(fd)
            raise
        return node, fd

    def mkdir(self, parent: Node, name: bytes, mode: int, ctx: pyfuse3.RequestContext) -> Node:
        whited = self._free_name(parent, name)
        path = self._new_path(parent, name, whited)
        os.mkdir(path, stat.S_IMODE(mode))
        self._chown(path, self.owner(ctx, parent))
        if whited:
            self.stack.mark_opaque(path)
            self._install(parent, name, path, whited)
            path = self.upper_path(join(parent.path, name))
        return self._added(parent, name, os.lstat(path), whited)

    def mknod(
        self, parent: Node, name: bytes, mode: int, rdev: int, ctx: pyfuse3.RequestContext
    ) -> Node:
        whited = self._free_name(parent, name)
        path = self._new_path(parent, name, whited)
        os.mknod(path, mode, rdev)
        return self._finish_new(parent, name, path, ctx, whited)

    def symlink(
        self, parent: Node, name: bytes, target: bytes, ctx: pyfuse3.RequestContext
    ) -> Node:
        whited = self._free_name(parent, name)
        path = self._new_path(parent, name, whited)
        os.symlink(target, path)
        return self._finish_new(parent, name, path, ctx, whited)

    def _finish_new(
        self, parent: Node, name: bytes, path: bytes, ctx: pyfuse3.RequestContext, whited: bool
    ) -> Node:
        self._chown(path, self.owner(ctx, parent))
        if whited:
            self._install(parent, name, path, whited)
            path = self.upper_path(join(parent.path, name))
        return self._added(parent, name, os.lstat(path), whited)

    def link(self, node: Node, parent: Node, name: bytes) -> Node:
        """A new name for ``node``; the file is copied up first and keeps its node id."""
        if node.is_dir:
            raise fail(errno.EPERM)
        whited = self._free_name(parent, name)
        self.copy_up(node)
        path = self._new_path(parent, name, whited)
        os.link(self.backing(node), path)
        if whited:
            self._install(parent, name, path, whited)
        entry = Entry(UPPER, node.kind, node.ino)
        entry.below = whited
        assert parent.entries is not None
        parent.entries[name] = entry
        parent.whiteouts.discard(name)
        parent.attr = None
        if node.aliases is None:
            node.aliases = []
        node.aliases.append((parent, name))
        node.pinned = True
        node.attr = None
        return node

    # -- remove -------------------------------------------------------------------------

    def _entry(self, parent: Node, name: bytes) -> Entry:
        entry = self.listing(parent).get(name)
        if entry is None:
            raise fail(errno.ENOENT, name)
        return entry

    def _forget_entry(self, parent: Node, name: bytes, entry: Entry) -> None:
        """Take ``name`` out of ``parent``, leaving a whiteout if a lower layer has it."""
        assert parent.entries is not None
        del parent.entries[name]
        if entry.layer != UPPER or entry.below:
            parent.whiteouts.add(name)
        parent.attr = None

    def unlink(self, parent: Node, name: bytes) -> None:
        self.require_writable()
        entry = self._entry(parent, name)
        if entry.kind == stat.S_IFDIR:
            raise fail(errno.EISDIR, name)
        node = self.child(parent, name, entry)
        self.copy_up(parent)
        if entry.layer != UPPER or entry.below:
            self.stack.write_whiteout(parent.path, name)
        else:
            os.unlink(self.upper_path(join(parent.path, name)))
        self._forget_entry(parent, name, entry)
        self.drop_name(node, parent, name)

    def rmdir(self, parent: Node, name: bytes) -> None:
        self.require_writable()
        entry = self._entry(parent, name)
        if entry.kind != stat.S_IFDIR:
            raise fail(errno.ENOTDIR, name)
        node = self.child(parent, name, entry)
        if self.listing(node):
            raise fail(errno.ENOTEMPTY, name)
        self.copy_up(parent)
        trash = None
        if node.layer == UPPER:
            # The upper dir may still hold whiteouts of lower entries: move it all aside.
            trash = self.stack.temp_path()
            os.rename(self.upper_path(node.path), trash)
        if entry.layer != UPPER or entry.below:
            self.stack.write_whiteout(parent.path, name)
        if trash is not None:
            shutil.rmtree(trash)
        self._forget_entry(parent, name, entry)
        self.drop_name(node, parent, name)
        node.entries = {}

    # -- rename -------------------------------------------------------------------------

    def rename(
        self, old_parent: Node, old_name: bytes, new_parent: Node, new_name: bytes, flags: int
    ) -> None:
        """Move a name. Directories that merge lower layers are not moved (``EXDEV``, as
        fuse-overlayfs and overlayfs without ``redirect_dir``): ``mv`` then copies them."""
        self.require_writable()
        if flags & pyfuse3.RENAME_EXCHANGE or flags & ~pyfuse3.RENAME_NOREPLACE:
            raise fail(errno.EINVAL)
        if new_name.startswith(WHITEOUT_PREFIX):
            raise fail(errno.EINVAL, new_name)
        entry = self._entry(old_parent, old_name)
        node = self.child(old_parent, old_name, entry)
        if node.is_dir:
            self.listing(node)
            if node.layers != [UPPER]:
                raise fail(errno.EXDEV, old_name)
        target_entry = self.listing(new_parent).get(new_name)
        target = None
        if target_entry is not None:
            if flags & pyfuse3.RENAME_NOREPLACE:
                raise fail(errno.EEXIST, new_name)
            target = self.child(new_parent, new_name, target_entry)
            if target is node:
                return  # two names of one file: rename(2) does nothing
            if target.is_dir:
                if not node.is_dir:
                    raise fail(errno.EISDIR, new_name)
                if self.listing(target):
                    raise fail(errno.ENOTEMPTY, new_name)
            elif node.is_dir:
                raise fail(errno.ENOTDIR, new_name)
        self.copy_up(old_parent)
        self.copy_up(node)
        self.copy_up(new_parent)
        whited = new_name in new_parent.whiteouts
        hides_lower = whited or (
            target_entry is not None and (target_entry.layer != UPPER or target_entry.below)
        )
        source = self.upper_path(join(old_parent.path, old_name))
        destination = self.upper_path(join(new_parent.path, new_name))
        trash = None
        if target is not None and target.is_dir and target.layer == UPPER:
            trash = self.stack.temp_path()
            os.rename(destination, trash)
        if node.is_dir:
            if hides_lower:
                self.stack.mark_opaque(source)
            if whited:
                self.stack.clear_whiteout(new_parent.path, new_name)
        try:
            os.rename(source, destination)
        except OSError:
            if trash is not None:
                os.rename(trash, destination)
            raise
        if whited:
            self.stack.clear_whiteout(new_parent.path, new_name)
        if trash is not None:
            shutil.rmtree(trash)
        if entry.layer != UPPER or entry.below:
            self.stack.write_whiteout(old_parent.path, old_name)
        self._forget_entry(old_parent, old_name, entry)
        moved = Entry(UPPER, node.kind, node.ino)
        moved.below = hides_lower
        assert new_parent.entries is not None
        new_parent.entries[new_name] = moved
        new_parent.whiteouts.discard(new_name)
        new_parent.attr = None
        if target is not None:
            self.drop_name(target, new_parent, new_name)
            if target.is_dir:
                target.entries = {}
        self.rename_node(node, old_parent, old_name, new_parent, new_name)
        node.attr = None
