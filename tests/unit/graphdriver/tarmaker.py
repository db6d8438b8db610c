"""Build small layer tars in memory for tests (entries as plain tuples)."""

from __future__ import annotations

import io
import tarfile
from dataclasses import dataclass, field


@dataclass
class Item:
    name: str
    kind: str = "file"  # file | dir | symlink | hardlink | fifo | chr
    data: bytes = b""
    link: str = ""
    mode: int = 0o644
    uid: int = 0
    gid: int = 0
    mtime: float = 1_700_000_000.25
    xattrs: dict[str, str] = field(default_factory=dict)
    device: tuple[int, int] = (1, 3)  # for chr: /dev/null's numbers


_TYPES = {
    "file": tarfile.REGTYPE,
    "dir": tarfile.DIRTYPE,
    "symlink": tarfile.SYMTYPE,
    "hardlink": tarfile.LNKTYPE,
    "fifo": tarfile.FIFOTYPE,
    "chr": tarfile.CHRTYPE,
}


def make_tar(items: list[Item], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar of ``items`` in the order given."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for item in items:
            info = tarfile.TarInfo(item.name)
            info.type = _TYPES[item.kind]
            info.mode = item.mode
            info.uid, info.gid = item.uid, item.gid
            info.mtime = item.mtime
            info.linkname = item.link
            if item.kind == "chr":
                info.devmajor, info.devminor = item.device
            if item.xattrs:
                info.pax_headers = {f"SCHILY.xattr.{k}": v for k, v in item.xattrs.items()}
            if item.kind == "file":
                info.size = len(item.data)
                tar.addfile(info, io.BytesIO(item.data))
            else:
                tar.addfile(info)
    return buf.getvalue()
