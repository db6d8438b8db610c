"""Built-in images made on this host: ``pydock import builtin:busybox NAME``.

The busybox image is a root filesystem around the host's static busybox (Debian's
``busybox-static``): ``/bin/busybox``, a symlink per applet, a minimal ``/etc/passwd`` and
``/etc/group``, and the directories a container expects. Entries are sorted and stamped with
the binary's mtime, so the same binary always gives the same layer (and is unpacked once).
"""

from __future__ import annotations

import io
import struct
import subprocess
import tarfile
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO, cast

from pydock.errors import LayerInputError

PREFIX = "builtin:"
BUSYBOX = Path("/bin/busybox")

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
nobody:x:65534:65534:nobody:/nonexistent:/bin/false
"""
GROUP = """\
root:x:0:
daemon:x:1:
tty:x:5:
nogroup:x:65534:
"""
# Directories and their modes; applet directories are added as needed.
DIRECTORIES = {
    "bin": 0o755,
    "dev": 0o755,
    "etc": 0o755,
    "home": 0o755,
    "proc": 0o555,
    "root": 0o700,
    "sys": 0o555,
    "tmp": 0o1777,
    "usr": 0o755,
    "var": 0o755,
    "var/tmp": 0o1777,
}


def is_builtin(source: str) -> bool:
    """Whether ``source`` names a built-in image (``builtin:NAME``)."""
    return source.startswith(PREFIX)


def builtin_names() -> list[str]:
    """Names of the built-in images."""
    return sorted(_BUILDERS)


def image_settings(source: str) -> tuple[float, dict[str, object]]:
    """The creation time and container settings of built-in image ``source``.

    Taken from what the image is made of (the busybox binary's mtime; ``CMD ["sh"]`` as Docker
    Hub's busybox has), so the same busybox-static gives the same image id on every machine.
    """
    return BUSYBOX.stat().st_mtime, {"Cmd": ["sh"]}


def open_builtin(source: str) -> BinaryIO:
    """A readable temporary file holding the root filesystem tar of ``builtin:NAME``."""
    name = source.removeprefix(PREFIX)
    builder = _BUILDERS.get(name)
    if builder is None:
        known = ", ".join(PREFIX + known for known in builtin_names())
        raise LayerInputError(f"building {source}: no such built-in image (known: {known})")
    out = cast(BinaryIO, tempfile.TemporaryFile())  # noqa: SIM115 - the caller closes it
    try:
        builder(out)
        out.seek(0)
    except BaseException:
        out.close()
        raise
    return out


def write_busybox_rootfs(out: BinaryIO, busybox: Path = BUSYBOX) -> None:
    """Write the busybox root filesystem tar to ``out``."""
    where = f"building {PREFIX}busybox"
    try:
        stat = busybox.stat()
        data = busybox.read_bytes()
    except FileNotFoundError as exc:
        raise LayerInputError(f"{where}: {busybox} not found (install busybox-static)") from exc
    except OSError as exc:
        raise LayerInputError(f"{where}: reading {busybox}: {exc.strerror}") from exc
    if _is_dynamic_elf(data):
        raise LayerInputError(f"{where}: {busybox} is dynamically linked (install busybox-static)")
    mtime = int(stat.st_mtime)
    links = _applet_paths(busybox, where)
    directories = dict(DIRECTORIES)
    for path in links:
        parent = path.rpartition("/")[0]
        while parent:
            directories.setdefault(parent, 0o755)
            parent = parent.rpartition("/")[0]
    entries: dict[str, tarfile.TarInfo] = {}
    for path, mode in directories.items():
        entries[path] = _info(path, tarfile.DIRTYPE, mode, mtime)
    for path in links:
        entries[path] = _info(path, tarfile.SYMTYPE, 0o777, mtime, linkname="/bin/busybox")
    files = {"bin/busybox": (data, 0o755), "etc/passwd": (PASSWD.encode(), 0o644)}
    files["etc/group"] = (GROUP.encode(), 0o644)
    for path, (content, mode) in files.items():
        entries[path] = _info(path, tarfile.REGTYPE, mode, mtime, size=len(content))
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(entries):
            content = files.get(path, (b"", 0))[0]
            tar.addfile(entries[path], io.BytesIO(content) if path in files else None)


def _applet_paths(busybox: Path, where: str) -> list[str]:
    try:
        listed = subprocess.run(
            [str(busybox), "--list-full"], capture_output=True, check=True, timeout=30
        ).stdout.decode()
    except (OSError, subprocess.SubprocessError) as exc:
        raise LayerInputError(f"{where}: listing applets of {busybox}: {exc}") from exc
    paths = {line.strip().lstrip("/") for line in listed.splitlines() if line.strip()}
    paths.discard("bin/busybox")
    return sorted(path for path in paths if ".." not in path.split("/"))


def _info(
    path: str, kind: bytes, mode: int, mtime: int, *, size: int = 0, linkname: str = ""
) -> tarfile.TarInfo:
    info = tarfile.TarInfo(path)
    info.type = kind
    info.mode = mode
    info.mtime = mtime
    info.size = size
    info.linkname = linkname
    info.uid = info.gid = 0
    info.uname = info.gname = "root"
    return info


def _is_dynamic_elf(data: bytes) -> bool:
    """Whether an ELF image asks for a program interpreter (a dynamic loader)."""
    if data[:4] != b"\x7fELF" or len(data) < 64:
        return False
    endian = "<" if data[5] == 1 else ">"
    if data[4] == 2:  # 64-bit
        (phoff,) = struct.unpack_from(endian + "Q", data, 0x20)
        entry_size, count = struct.unpack_from(endian + "HH", data, 0x36)
    else:
        (phoff,) = struct.unpack_from(endian + "I", data, 0x1C)
        entry_size, count = struct.unpack_from(endian + "HH", data, 0x2A)
    for index in range(count):
        offset = phoff + index * entry_size
        if offset + 4 > len(data):
            break
        if struct.unpack_from(endian + "I", data, offset)[0] == 3:  # PT_INTERP
            return True
    return False


_BUILDERS: dict[str, Callable[[BinaryIO], None]] = {"busybox": write_busybox_rootfs}
