"""Layer tars built in memory, entry by entry, with names and link targets exactly as given.

Nothing is cleaned up on the way in: ``../x``, ``/abs`` and ``.wh..`` reach the archive as
written, which is what the breakout cases need.
"""

from __future__ import annotations

import io
import os
import tarfile

DEFAULT_MTIME = 1_600_000_000


class LayerTar:
    """A PAX tar under construction; entries are owned by the calling user unless told."""

    def __init__(self, *, mtime: int = DEFAULT_MTIME) -> None:
        self._entries: list[tuple[tarfile.TarInfo, bytes | None]] = []
        self._mtime = mtime

    def _info(self, name: str, kind: bytes, mode: int) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.mtime = self._mtime
        info.uid = os.getuid()
        info.gid = os.getgid()
        return info

    def file(
        self,
        name: str,
        data: bytes = b"",
        *,
        mode: int = 0o644,
        owner: tuple[int, int] | None = None,
        pax: dict[str, str] | None = None,
    ) -> LayerTar:
        info = self._info(name, tarfile.REGTYPE, mode)
        info.size = len(data)
        if owner is not None:
            info.uid, info.gid = owner
        if pax:
            info.pax_headers = dict(pax)
        self._entries.append((info, data))
        return self

    def dir(self, name: str, *, mode: int = 0o755) -> LayerTar:
        self._entries.append((self._info(name, tarfile.DIRTYPE, mode), None))
        return self

    def symlink(self, name: str, target: str) -> LayerTar:
        info = self._info(name, tarfile.SYMTYPE, 0o777)
        info.linkname = target
        self._entries.append((info, None))
        return self

    def hardlink(self, name: str, target: str) -> LayerTar:
        info = self._info(name, tarfile.LNKTYPE, 0o644)
        info.linkname = target
        self._entries.append((info, None))
        return self

    def device(self, name: str, major: int, minor: int, *, block: bool = False) -> LayerTar:
        info = self._info(name, tarfile.BLKTYPE if block else tarfile.CHRTYPE, 0o666)
        info.devmajor, info.devminor = major, minor
        self._entries.append((info, None))
        return self

    def whiteout(self, name: str) -> LayerTar:
        """An empty file entry; ``name`` carries the ``.wh.`` prefix itself."""
        return self.file(name, b"", mode=0o600)

    def getvalue(self) -> bytes:
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in self._entries:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        return buffer.getvalue()


def member_offsets(data: bytes) -> list[tuple[str, int, int]]:
    """``(name, header offset, data offset)`` of each member of an uncompressed tar."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [(m.name, m.offset, m.offset_data) for m in tar.getmembers()]
