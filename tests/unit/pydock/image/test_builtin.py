"""The built-in busybox image made from the host's static busybox."""

from __future__ import annotations

import io
import stat
import tarfile
from pathlib import Path

import pytest

from pydock.errors import LayerInputError
from pydock.image.builtin import is_builtin, open_builtin, write_busybox_rootfs

needs_busybox = pytest.mark.skipif(
    not Path("/bin/busybox").is_file(), reason="no /bin/busybox (install busybox-static)"
)


@needs_busybox
def test_busybox_rootfs_has_the_binary_applets_and_directories() -> None:
    with open_builtin("builtin:busybox") as stream:
        data = stream.read()
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        members = {member.name: member for member in tar.getmembers()}
        busybox = members["bin/busybox"]
        assert busybox.isreg() and busybox.mode == 0o755
        assert busybox.size == Path("/bin/busybox").stat().st_size
        assert members["bin/sh"].issym() and members["bin/sh"].linkname == "/bin/busybox"
        assert members["tmp"].isdir() and members["tmp"].mode == 0o1777 | 0
        assert stat.S_IMODE(members["root"].mode) == 0o700
        for directory in ("proc", "sys", "dev", "etc", "var", "usr/bin"):
            assert members[directory].isdir(), directory
        passwd = tar.extractfile("etc/passwd")
        assert passwd is not None and passwd.read().startswith(b"root:x:0:0:")
        assert "etc/group" in members
        names = list(members)
    assert names == sorted(names)


@needs_busybox
def test_busybox_rootfs_is_reproducible() -> None:
    with open_builtin("builtin:busybox") as first, open_builtin("builtin:busybox") as second:
        assert first.read() == second.read()


def test_missing_busybox_says_what_to_install(tmp_path: Path) -> None:
    with pytest.raises(LayerInputError, match="install busybox-static"):
        write_busybox_rootfs(io.BytesIO(), tmp_path / "busybox")


def test_dynamic_busybox_is_refused(tmp_path: Path) -> None:
    with pytest.raises(LayerInputError, match="dynamically linked"):
        write_busybox_rootfs(io.BytesIO(), Path("/bin/ls"))


def test_unknown_builtin() -> None:
    assert is_builtin("builtin:nope") and not is_builtin("busybox.tar")
    with pytest.raises(LayerInputError, match="no such built-in image"):
        open_builtin("builtin:nope")
