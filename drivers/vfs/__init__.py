"""The vfs graph driver: one full copy of the tree per layer; works anywhere, mounts nothing."""

from __future__ import annotations

from drivers.vfs.copy import CopyError, copy_tree
from drivers.vfs.driver import VfsDriver

__all__ = ["CopyError", "VfsDriver", "copy_tree"]
