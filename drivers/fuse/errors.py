"""Errors of the userspace overlay filesystem and its command."""

from __future__ import annotations

from graphdriver import InvalidOptionError, MountError

__all__ = ["InvalidOptionError", "MountError", "SetupError"]


class SetupError(MountError):
    """The filesystem cannot be mounted as asked: a bad layer, mountpoint or missing /dev/fuse.

    Raised before anything is mounted, so there is never a half-made mount to clean up.
    """
