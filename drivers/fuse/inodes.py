"""The in-memory inode table: one ``Node`` per file the kernel knows, by FUSE node id.

Node ids double as ``st_ino``. They are handed out from a counter and remembered by the
identity of the backing file (``st_dev``, ``st_ino`` in its layer), so every name of a hard link
gets the same number, a copied-up file keeps the number of its lower original, and a file the
kernel forgot and looks up again gets its old number back: numbers are stable for the life of
the mount and never reused for another file.

Directory nodes and their merged listings stay for the life of the mount (a few hundred bytes
per name seen); files leave the table when the kernel forgets them.
"""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

ROOT_INO: int = pyfuse3.ROOT_INODE
Key = tuple[int, int]


class Entry:
    """One name of a merged directory listing: where it lives and what lies below it.

    ``layer`` holds the visible object; ``below`` says a lower layer would show something if it
    were removed (so removing it needs a whiteout); ``dirlayers`` are the layers a directory
    merges, nearest first; ``ino`` caches the node id once known (0 before).
    """

    __slots__ = ("below", "dirlayers", "ino", "kind", "layer", "sealed")

    def __init__(self, layer: int, kind: int, ino: int = 0) -> None:
        self.layer = layer
        self.kind = kind
        self.ino = ino
        self.below = False
        self.sealed = False  # a whiteout or non-directory ends the merge of this name
        self.dirlayers: list[int] | None = [layer] if kind == stat.S_IFDIR else None


class Node:
    """A file, directory, symlink or special file of the merged tree."""

    __slots__ = (
        "aliases",
        "attr",
        "dead",
        "entries",
        "ino",
        "kind",
        "layer",
        "layers",
        "name",
        "nlookup",
        "no_caps",
        "opens",
        "parent",
        "path",
        "pinned",
        "upper_key",
        "whiteouts",
    )

    def __init__(
        self, ino: int, parent: Node | None, name: bytes, path: bytes, layer: int, kind: int
    ) -> None:
        self.ino = ino
        self.parent = parent
        self.name = name
        self.path = path  # relative path, the same in every layer
        self.layer = layer  # index of the layer holding the visible object
        self.kind = kind  # stat.S_IFMT bits
        self.nlookup = 0
        self.opens = 0
        self.dead = False  # removed from the tree; kept while the kernel holds it
        # A hard link stays in the table even when the kernel forgets it: its other names may
        # still point at the lower original, and only this node knows it was copied up.
        self.pinned = False
        # Known to have no security.capability xattr: the kernel asks before every write.
        self.no_caps = False
        self.attr: pyfuse3.EntryAttributes | None = None
        self.upper_key: Key | None = None  # identity of the upper copy, once there is one
        self.aliases: list[tuple[Node, bytes]] | None = None  # other names of a hard link
        # Directories only: the layers merged here (nearest first), the merged listing once
        # read, and the names whited out in the upper layer.
        self.layers: list[int] = []
        self.entries: dict[bytes, Entry] | None = None
        self.whiteouts: set[bytes] = set()

    @property
    def is_dir(self) -> bool:
        return self.kind == stat.S_IFDIR

    def names(self) -> list[tuple[Node, bytes]]:
        """Every (parent, name) this node is reachable under."""
        assert self.parent is not None
        return [(self.parent, self.name), *(self.aliases or ())]


class InodeTable:
    """Node ids to nodes, and backing-file identities to node ids."""

    def __init__(self, root: Node) -> None:
        self.nodes: dict[int, Node] = {ROOT_INO: root}
        self.by_key: dict[Key, int] = {}
        self._next = ROOT_INO + 1

    def __getitem__(self, ino: int) -> Node:
        try:
            return self.nodes[ino]
        except KeyError:
            raise OSError(errno.ESTALE, os.strerror(errno.ESTALE)) from None

    def get(self, ino: int) -> Node | None:
        return self.nodes.get(ino)

    def ino_for(self, key: Key) -> int:
        """The node id of the backing file ``key``, allocating one the first time."""
        ino = self.by_key.get(key)
        if ino is None:
            ino = self._next
            self._next += 1
            self.by_key[key] = ino
        return ino

    def bind_upper(self, node: Node, key: Key) -> None:
        """Record that upper file ``key`` (a fresh copy, or a new file) is ``node``."""
        self.by_key[key] = node.ino
        node.upper_key = key

    def add(self, node: Node) -> None:
        self.nodes[node.ino] = node

    def unbind_upper(self, node: Node) -> None:
        """The upper file of ``node`` is gone: its inode number may be reused by the filesystem
        for a new file, which must not inherit this node."""
        key = node.upper_key
        if key is not None and self.by_key.get(key) == node.ino:
            del self.by_key[key]
        node.upper_key = None

    def unbind(self, key: Key) -> None:
        """Forget backing file ``key`` (it was replaced under the mount)."""
        self.by_key.pop(key, None)

    def forget(self, ino: int, count: int) -> None:
        """Drop ``count`` kernel references; unreferenced non-directories leave the table.

        Live directories stay: they carry the listing caches, and children point at them.
        """
        node = self.nodes.get(ino)
        if node is None:
            return
        node.nlookup -= count
        self.release(node)

    def release(self, node: Node) -> None:
        """Drop ``node`` from the table if neither the kernel nor an open handle uses it."""
        if node.nlookup > 0 or node.opens > 0 or node.pinned or node.ino == ROOT_INO:
            return
        if not node.is_dir or node.dead:
            self.nodes.pop(node.ino, None)
