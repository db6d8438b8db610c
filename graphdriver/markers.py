"""The overlay markers, defined once: how a layer says a name was deleted or a directory hides
the layers below it. Stdlib only: the FUSE filesystem process imports it at start-up.

- a deleted name: a 0/0 character device of that name, or an empty ``.wh.NAME`` file (OCI);
- an opaque directory: ``trusted.overlay.opaque`` (root) or ``user.overlay.opaque``
  (``userxattr``) = ``y``, or a ``.wh..wh..opq`` file inside it (OCI);
- ``.wh..wh.*`` names are the markers' own namespace (aufs hard-link dirs, the opaque file).

Byte forms (``*_B``) serve code that works on raw file names.
"""

from __future__ import annotations

import os
import stat

WHITEOUT_PREFIX = ".wh."
META_PREFIX = ".wh..wh."
OPAQUE_MARKER = ".wh..wh..opq"
OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")

WHITEOUT_PREFIX_B = WHITEOUT_PREFIX.encode()
META_PREFIX_B = META_PREFIX.encode()
OPAQUE_MARKER_B = OPAQUE_MARKER.encode()
OPAQUE_XATTRS_B = tuple(name.encode() for name in OPAQUE_XATTRS)


def is_whiteout(st: os.stat_result) -> bool:
    """A 0/0 character device: a deleted name."""
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
