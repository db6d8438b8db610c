"""Probes of what the kernel and the backing filesystem can do for overlay2, cached per home.

Each probe answers once per home: overlay is in /proc/filesystems; the backing filesystem is
not overlay itself and supports d_type; a real test mount works (with the new mount API where
the kernel has it); whiteouts come back as 0/0 character devices, so the native differ can read
upper dirs; and whether ``userxattr`` is needed (not in the initial user namespace, where
trusted.* xattrs are refused).

The answer is kept in memory for the process and in ``<home>/.probed.json`` for the next ones,
under a key of what could change it (kernel release, the home's device and filesystem type,
the user namespace's mapping): a command does not pay for a test mount, nor write anything,
when an earlier one has asked already, which keeps commands working on a full disk.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import platform
import shutil
import stat
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from drivers.overlay2 import mount as mnt
from graphdriver import NotSupportedError, mountutil, syscalls

_OVERLAY_MAGIC = 0x794C7630
_CACHE_FILE = ".probed.json"
_cache: dict[str, Probe] = {}


@dataclass(frozen=True)
class Probe:
    """What the host supports for an overlay home."""

    new_mount_api: bool
    userxattr: bool
    native_diff: bool
    redirect_dir: bool
    metacopy: bool


def _module_flag(name: str) -> bool:
    try:
        return Path(f"/sys/module/overlay/parameters/{name}").read_text().strip() in ("Y", "on")
    except OSError:
        return False


class _StatFs(ctypes.Structure):
    _fields_ = [("f_type", ctypes.c_long), ("rest", ctypes.c_byte * 120)]


def _filesystem_magic(path: Path) -> int | None:
    """The statfs magic number of ``path``'s filesystem."""
    buf = _StatFs()
    libc = syscalls.libc()
    if libc.statfs(os.fsencode(path), ctypes.byref(buf)) != 0:
        return None
    return int(buf.f_type) & 0xFFFFFFFF


_SYS_GETDENTS64 = {"x86_64": 217, "aarch64": 61}
_DT_UNKNOWN = 0


def supports_d_type(directory: Path) -> bool:
    """Whether ``directory``'s filesystem fills in d_type (overlay needs it; old xfs lacks it)."""
    number = _SYS_GETDENTS64.get(platform.machine())
    if number is None:
        return True  # cannot ask directly here; the test mount will tell
    libc = syscalls.libc()
    buf = ctypes.create_string_buffer(8192)
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        size = libc.syscall(number, fd, buf, len(buf))
    finally:
        os.close(fd)
    if size <= 0:
        return True
    data = buf.raw[:size]
    offset = 0
    while offset < size:
        reclen = int.from_bytes(data[offset + 16 : offset + 18], "little")
        d_type = data[offset + 18]
        name = data[offset + 19 : offset + reclen].split(b"\0", 1)[0]
        if name not in (b".", b"..") and d_type == _DT_UNKNOWN:
            return False
        offset += reclen
    return True


def probe(home: Path) -> Probe:
    """Check overlay support for ``home`` (cached); ``NotSupportedError`` names the reason."""
    key = os.path.realpath(home)
    cached = _cache.get(key)
    if cached is not None:
        return cached
    home = Path(key)
    try:
        home.mkdir(parents=True, exist_ok=True)
        fingerprint = _fingerprint(home)
    except OSError as exc:
        raise NotSupportedError(
            f"preparing {home}: {exc.strerror}", driver="overlay2", path=home
        ) from exc
    result = _load_cached(home, fingerprint)
    if result is None:
        result = _probe(home)
        _save_cached(home, fingerprint, result)
    _cache[key] = result
    return result


def _fingerprint(home: Path) -> str:
    """What the answer depends on; a change of any part probes again."""
    try:
        uid_map = " ".join(Path("/proc/self/uid_map").read_text().split())
    except OSError:
        uid_map = "?"
    magic = _filesystem_magic(home)
    return f"{os.uname().release}|{os.stat(home).st_dev}|{magic}|{uid_map}"


def _load_cached(home: Path, fingerprint: str) -> Probe | None:
    try:
        stored = json.loads((home / _CACHE_FILE).read_text())
        return Probe(**stored[fingerprint])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _save_cached(home: Path, fingerprint: str, result: Probe) -> None:
    """Keep the answer for the next process (best effort: a full disk just probes again)."""
    path = home / _CACHE_FILE
    try:
        stored = json.loads(path.read_text())
        if not isinstance(stored, dict):
            stored = {}
    except (OSError, ValueError):
        stored = {}
    stored[fingerprint] = asdict(result)
    temporary = home / f"{_CACHE_FILE}.{os.getpid()}"
    try:
        temporary.write_text(json.dumps(stored, sort_keys=True))
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()


def _probe(home: Path) -> Probe:
    try:
        with open("/proc/filesystems") as handle:
            if "overlay" not in handle.read().split():
                raise NotSupportedError("overlay is not in /proc/filesystems", driver="overlay2")
    except OSError as exc:
        raise NotSupportedError(f"reading /proc/filesystems: {exc}", driver="overlay2") from exc
    if _filesystem_magic(home) == _OVERLAY_MAGIC:
        raise NotSupportedError(
            f"backing filesystem of {home} is overlay itself", driver="overlay2", path=home
        )
    userxattr = not mountutil.in_initial_user_namespace()
    try:
        scratch = Path(tempfile.mkdtemp(prefix=".probe-", dir=home))
    except OSError as exc:
        raise NotSupportedError(
            f"probing overlay in {home}: {exc.strerror}", driver="overlay2", path=home
        ) from exc
    try:
        return _test_mount(scratch, userxattr)
    except OSError as exc:
        raise NotSupportedError(
            f"probing overlay in {home}: {exc.strerror}", driver="overlay2", path=home
        ) from exc
    finally:
        merged = scratch / "merged"
        if os.path.ismount(merged):
            mnt.umount2(os.fspath(merged), mnt.MNT_DETACH)
        shutil.rmtree(scratch, ignore_errors=True)


def _test_mount(scratch: Path, userxattr: bool) -> Probe:
    lower1, lower2, upper, work, merged = (
        scratch / name for name in ("lower1", "lower2", "upper", "work", "merged")
    )
    for directory in (lower1, lower2, upper, work, merged):
        directory.mkdir()
    (lower2 / "doomed").write_text("x")
    (lower1 / "kept").write_text("y")
    if not supports_d_type(lower1):
        raise NotSupportedError(f"backing filesystem of {scratch} lacks d_type", driver="overlay2")
    new_api = True
    try:
        mnt.mount_overlay_new_api(merged, [lower1, lower2], upper, work, userxattr=userxattr)
    except OSError as exc:
        new_api = False
        options = mnt.legacy_options(
            scratch, ["lower1", "lower2"], upper, work, userxattr=userxattr
        )
        try:
            mnt.mount_overlay_legacy(merged, scratch, options)
        except OSError as legacy_exc:
            raise NotSupportedError(
                f"test mount of overlay failed: {legacy_exc.strerror} (new API: {exc.strerror})",
                driver="overlay2",
                path=scratch,
            ) from legacy_exc
    try:
        os.unlink(merged / "doomed")
        whiteout = os.lstat(upper / "doomed")
        native = stat.S_ISCHR(whiteout.st_mode) and whiteout.st_rdev == 0
    finally:
        mnt.umount2(os.fspath(merged), mnt.MNT_DETACH)
    return Probe(
        new_mount_api=new_api,
        userxattr=userxattr,
        native_diff=native,
        redirect_dir=_module_flag("redirect_dir"),
        metacopy=_module_flag("metacopy"),
    )
