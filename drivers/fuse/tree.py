"""The merged tree: looking names up through the layers, attributes, and copy-up.

Everything here is synchronous and runs one request at a time (the FUSE loop has one task), so
the node table and listings need no locks. Errors are ``OSError`` with the errno the caller of
the filesystem should see; ``fs.py`` turns them into ``FUSEError`` in one place.
"""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

from drivers.fuse.copyup import copy_object
from drivers.fuse.inodes import ROOT_INO, Entry, InodeTable, Node
from drivers.fuse.layers import LayerStack, join
from drivers.fuse.listing import merge

UPPER = 0


def fail(code: int, path: bytes | None = None) -> OSError:
    """An ``OSError`` for ``code`` (raise it)."""
    if path is None:
        return OSError(code, os.strerror(code))
    return OSError(code, os.strerror(code), os.fsdecode(path))


class Tree:
    """Lookup, attributes and copy-up over a ``LayerStack``."""

    def __init__(
        self, stack: LayerStack, *, timeout: float, fsync: bool, static_nlink: bool = False
    ) -> None:
        self.stack = stack
        self.layers = stack.layers
        self.timeout = timeout
        self.fsync = fsync
        self.static_nlink = static_nlink
        root_st = os.lstat(self.layers[0].root)
        root = Node(ROOT_INO, None, b"", b"", 0, stat.S_IFDIR)
        root.layers = list(range(len(self.layers)))
        self.table = InodeTable(root)
        self.table.by_key[(root_st.st_dev, root_st.st_ino)] = ROOT_INO
        self.make_attr(root, root_st)

    # -- attributes ---------------------------------------------------------------------

    def make_attr(self, node: Node, st: os.stat_result) -> pyfuse3.EntryAttributes:
        """The attributes the kernel gets for ``node`` (and caches for ``timeout``)."""
        attr = pyfuse3.EntryAttributes()
        attr.st_ino = node.ino
        attr.entry_timeout = self.timeout
        attr.attr_timeout = self.timeout
        attr.st_mode = st.st_mode
        if node.kind == stat.S_IFDIR and (self.static_nlink or len(node.layers) > 1):
            attr.st_nlink = 1  # as overlayfs: a merged directory's link count is unknown
        else:
            attr.st_nlink = st.st_nlink
        attr.st_uid = st.st_uid
        attr.st_gid = st.st_gid
        attr.st_rdev = st.st_rdev
        attr.st_size = st.st_size
        attr.st_blksize = st.st_blksize
        attr.st_blocks = st.st_blocks
        attr.st_atime_ns = st.st_atime_ns
        attr.st_mtime_ns = st.st_mtime_ns
        attr.st_ctime_ns = st.st_ctime_ns
        node.attr = attr
        return attr

    def attributes(self, node: Node) -> pyfuse3.EntryAttributes:
        """Cached attributes of ``node``, read again only after a change made them stale."""
        return node.attr if node.attr is not None else self.make_attr(node, self.lstat(node))

    def attributes_changed(self, node: Node) -> None:
        """``node``'s attributes changed behind the kernel's back (a link count after a copy-up
        linked more names); the kernel must ask again. ``fs.py`` hooks the notification in."""
        node.attr = None

    def lstat(self, node: Node) -> os.stat_result:
        return os.lstat(self.backing(node))

    def backing(self, node: Node) -> bytes:
        """The path of the object ``node`` shows."""
        return self.layers[node.layer].path(node.path)

    def upper_path(self, rel: bytes) -> bytes:
        assert self.stack.upper is not None
        return self.stack.upper.path(rel)

    # -- lookup -------------------------------------------------------------------------

    def listing(self, node: Node) -> dict[bytes, Entry]:
        """The merged entries of directory ``node``, read from the layers on first use."""
        if node.entries is None:
            if not node.is_dir:
                raise fail(errno.ENOTDIR)
            merged = merge(self.stack, node.path, node.layers)
            if not merged.layers:
                raise fail(errno.ENOENT, node.path)
            if merged.layers != node.layers:
                node.attr = None  # the link count depends on how many layers merge here
            node.layers = merged.layers
            node.layer = merged.layers[0]
            node.entries = merged.entries
            node.whiteouts = merged.upper_whiteouts
        return node.entries

    def lookup(self, parent: Node, name: bytes) -> Node | None:
        """The node of ``name`` in directory ``parent``, or ``None`` if it is not there."""
        entry = self.listing(parent).get(name)
        return None if entry is None else self.child(parent, name, entry)

    def child(self, parent: Node, name: bytes, entry: Entry) -> Node:
        """The node behind listing entry ``name`` of ``parent``."""
        if entry.ino:
            node = self.table.get(entry.ino)
            if node is not None:
                return node
        path = join(parent.path, name)
        st = os.lstat(self.layers[entry.layer].path(path))
        return self.adopt(parent, name, entry, st)

    def adopt(self, parent: Node, name: bytes, entry: Entry, st: os.stat_result) -> Node:
        """Find or make the node of backing file ``st``, shown as ``name`` in ``parent``."""
        key = (st.st_dev, st.st_ino)
        kind = stat.S_IFMT(st.st_mode)
        ino = self.table.ino_for(key)
        node = self.table.get(ino)
        if node is not None and node.kind != kind:
            self.table.unbind(key)  # replaced under the mount: a new file
            ino = self.table.ino_for(key)
            node = None
        if node is None:
            node = Node(ino, parent, name, join(parent.path, name), entry.layer, kind)
            if entry.layer == UPPER and self.stack.upper is not None:
                node.upper_key = key
            node.pinned = st.st_nlink > 1 and kind != stat.S_IFDIR
            if entry.dirlayers is not None:
                node.layers = list(entry.dirlayers)
            self.table.add(node)
            self.make_attr(node, st)
        elif node.dead:  # another name of a file whose known names were all removed
            node.dead = False
            node.layer = entry.layer
            node.attr = None
            self.rename_node(node, node.parent, node.name, parent, name)
        elif not node.is_dir and (parent, name) not in node.names():
            self.add_alias(node, parent, name, entry)
        entry.ino = ino
        return node

    def add_alias(self, node: Node, parent: Node, name: bytes, entry: Entry) -> None:
        """Record another name of hard link ``node``; if the node was copied up while this
        name still points at the lower original, link the name to the upper copy too."""
        if node.aliases is None:
            node.aliases = []
        node.aliases.append((parent, name))
        node.pinned = True
        if node.layer == UPPER and entry.layer != UPPER:
            self.copy_up(parent)
            os.link(self.backing(node), self.upper_path(join(parent.path, name)))
            entry.layer = UPPER
            entry.below = True
            self.attributes_changed(node)

    def rename_node(
        self, node: Node, old_parent: Node | None, old_name: bytes, parent: Node, name: bytes
    ) -> None:
        """Move one of ``node``'s names; a directory's descendants get their new paths."""
        if node.parent is old_parent and node.name == old_name:
            node.parent, node.name = parent, name
            node.path = join(parent.path, name)
            if node.is_dir:
                self._repath(node)
        elif node.aliases is not None:
            node.aliases = [
                (parent, name) if (p is old_parent and n == old_name) else (p, n)
                for p, n in node.aliases
            ]

    def _repath(self, directory: Node) -> None:
        for name, entry in (directory.entries or {}).items():
            child = self.table.get(entry.ino) if entry.ino else None
            if child is not None and child.parent is directory and child.name == name:
                child.path = join(directory.path, name)
                if child.is_dir:
                    self._repath(child)

    def drop_name(self, node: Node, parent: Node, name: bytes) -> None:
        """Forget one name of ``node``; with none left it is dead (open handles keep it)."""
        if node.aliases:
            if node.parent is parent and node.name == name:
                node.parent, node.name = node.aliases.pop(0)
                node.path = join(node.parent.path, node.name)
            else:
                node.aliases = [(p, n) for p, n in node.aliases if not (p is parent and n == name)]
        else:
            node.dead = True
            if self.stack.upper is not None:
                self.table.unbind_upper(node)
        node.attr = None

    # -- copy-up ------------------------------------------------------------------------

    def require_writable(self) -> None:
        if self.stack.upper is None:
            raise fail(errno.EROFS)

    def copy_up(self, node: Node, *, data: bool = True) -> None:
        """Give ``node`` (and its parent directories) a copy in the upper layer.

        Mode, owner, times and xattrs are kept; a regular file's data is copied unless
        ``data`` is false (the caller truncates it anyway). Hard links keep their node id and
        every known name of the link is linked to the copy.
        """
        self.require_writable()
        if node.layer == UPPER:
            return
        parent = node.parent
        assert parent is not None
        self.copy_up(parent)
        parent_upper = self.upper_path(parent.path)
        parent_st = os.lstat(parent_upper)
        source = self.backing(node)
        st = os.lstat(source)
        temp = self.stack.temp_path()
        copy_object(source, temp, st, data=data and node.kind == stat.S_IFREG, fsync=self.fsync)
        target = self.upper_path(node.path)
        try:
            os.rename(temp, target)
        except OSError:
            _remove(temp)
            raise
        entry = (parent.entries or {}).get(node.name)
        if entry is not None:
            entry.layer = UPPER
            entry.below = True  # the lower original stays, hidden under the copy
            if entry.dirlayers is not None:
                entry.dirlayers.insert(0, UPPER)
        if node.is_dir:
            node.layers.insert(0, UPPER)
        node.layer = UPPER
        upper_st = os.lstat(target)
        self.table.bind_upper(node, (upper_st.st_dev, upper_st.st_ino))
        linked = False
        for alias_parent, alias_name in node.aliases or ():
            alias_entry = self.listing(alias_parent).get(alias_name)
            if alias_entry is not None and alias_entry.layer != UPPER:
                self.copy_up(alias_parent)
                os.link(target, self.upper_path(join(alias_parent.path, alias_name)))
                alias_entry.layer = UPPER
                alias_entry.below = True
                linked = True
        # The copy is not a change of the parent: keep its times as they were.
        os.utime(parent_upper, ns=(parent_st.st_atime_ns, parent_st.st_mtime_ns))
        node.attr = None
        if linked or (node.pinned and not node.aliases):
            self.attributes_changed(node)  # the copy has fewer or more links than the original


def _remove(path: bytes) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            os.rmdir(path)
        else:
            os.unlink(path)
    except OSError:
        pass  # the work dir is emptied at the next mount
