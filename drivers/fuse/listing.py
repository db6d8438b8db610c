"""Merging one directory's entries over its layers into the listing the mount shows.

Read once per directory and kept (in ``Node.entries``), so a lookup is a dictionary access and a
listing costs one ``scandir`` per layer the directory spans, not one per name per layer.
"""

from __future__ import annotations

import os
import stat

from drivers.fuse.inodes import Entry
from drivers.fuse.layers import LayerStack, has_opaque_xattr
from graphdriver.markers import META_PREFIX_B as META_PREFIX
from graphdriver.markers import OPAQUE_MARKER_B as OPAQUE_MARKER
from graphdriver.markers import WHITEOUT_PREFIX_B as WHITEOUT_PREFIX
from graphdriver.markers import is_whiteout

S_IFDIR, S_IFREG, S_IFLNK = stat.S_IFDIR, stat.S_IFREG, stat.S_IFLNK


class Merged:
    """The result of a merge: layers used, visible entries, names whited out in the upper."""

    __slots__ = ("entries", "layers", "upper_whiteouts")

    def __init__(
        self, layers: list[int], entries: dict[bytes, Entry], upper_whiteouts: set[bytes]
    ) -> None:
        self.layers = layers
        self.entries = entries
        self.upper_whiteouts = upper_whiteouts


def merge(stack: LayerStack, path: bytes, candidates: list[int]) -> Merged:
    """Merge directory ``path`` over ``candidates`` (layer indexes where it is a directory,
    nearest first), honouring whiteouts and stopping below the first opaque layer."""
    entries: dict[bytes, Entry] = {}
    hidden: set[bytes] = set()  # whited out by a layer above the one being read
    used: list[int] = []
    upper_whiteouts: set[bytes] = set()
    last = len(candidates) - 1
    for position, index in enumerate(candidates):
        directory = stack.layers[index].path(path)
        try:
            scan = os.scandir(directory)
        except (FileNotFoundError, NotADirectoryError):
            continue  # changed under the mount since the parent was read
        used.append(index)
        opaque = False
        whiteouts: list[bytes] = []
        with scan:
            for item in scan:
                name = item.name
                if name.startswith(WHITEOUT_PREFIX):
                    if name == OPAQUE_MARKER:
                        opaque = True
                    elif not name.startswith(META_PREFIX):
                        whiteouts.append(name[4:])
                    continue
                if item.is_dir(follow_symlinks=False):
                    kind = S_IFDIR
                elif item.is_file(follow_symlinks=False):
                    kind = S_IFREG
                elif item.is_symlink():
                    kind = S_IFLNK
                else:
                    st = item.stat(follow_symlinks=False)
                    if is_whiteout(st):
                        whiteouts.append(name)
                        continue
                    kind = stat.S_IFMT(st.st_mode)
                found = entries.get(name)
                if found is None:
                    if name not in hidden:
                        entries[name] = Entry(index, kind)
                elif not found.sealed:
                    found.below = True
                    if found.dirlayers is not None and kind == S_IFDIR:
                        found.dirlayers.append(index)
                    else:
                        found.sealed = True
        for name in whiteouts:
            found = entries.get(name)
            if found is None:
                hidden.add(name)
            else:
                found.sealed = True  # also a name both deleted and recreated in this layer
        if index == 0 and stack.has_upper:
            upper_whiteouts.update(whiteouts)
        if position < last and (opaque or has_opaque_xattr(directory)):
            break
    return Merged(used, entries, upper_whiteouts)
