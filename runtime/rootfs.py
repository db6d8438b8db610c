"""The container's root filesystem: default mounts, devices, volumes, pivot_root, masking.

Runs inside the container's new mount namespace. Before pivot_root every target is resolved
inside the rootfs (see :mod:`runtime.securejoin`) and pinned with an O_PATH descriptor whose
real path is checked, so a symlink in the image cannot send a mount to the host. The special
file systems (``/proc``, ``/dev``, ``/sys``) refuse a target that is a symlink in the image at
all, as runc does.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from . import linux
from .errors import SetupError
from .securejoin import is_within, make_dirs_in_root, make_file_in_root, resolve_in_root
from .spec import BindMount, ContainerSpec, Device, NetworkMode, TmpfsMount

_DEVICES = (
    ("null", 1, 3),
    ("zero", 1, 5),
    ("full", 1, 7),
    ("random", 1, 8),
    ("urandom", 1, 9),
    ("tty", 5, 0),
)
# Host /dev entries a privileged container does not get (it has its own).
_HOST_DEV_SKIP = frozenset({"pts", "shm", "mqueue", "fd", "console", "ptmx", ".lxc", ".udev"})
_DEV_LINKS = (
    ("fd", "/proc/self/fd"),
    ("stdin", "/proc/self/fd/0"),
    ("stdout", "/proc/self/fd/1"),
    ("stderr", "/proc/self/fd/2"),
    ("ptmx", "pts/ptmx"),
)
# Flags that a bind remount must repeat, or a user namespace refuses it (they are locked).
_LOCKED = (
    (os.ST_NOSUID, linux.MS_NOSUID),
    (os.ST_NODEV, linux.MS_NODEV),
    (os.ST_NOEXEC, linux.MS_NOEXEC),
    (os.ST_NOATIME, linux.MS_NOATIME),
    (os.ST_NODIRATIME, linux.MS_NODIRATIME),
    (os.ST_RELATIME, linux.MS_RELATIME),
)
_SECURE = linux.MS_NOSUID | linux.MS_NOEXEC | linux.MS_NODEV


def _mount(
    source: str | Path | None,
    target: str | Path,
    fstype: str | None,
    flags: int,
    data: str | None,
    what: str,
) -> None:
    try:
        linux.mount(source, target, fstype, flags, data)
    except OSError as exc:
        raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno, path=target) from exc


def locked_flags(path: str | Path) -> int:
    """Return the MS_* flags of the mount at ``path`` that a remount has to keep."""
    current = os.statvfs(path).f_flag
    return sum(ms for st, ms in _LOCKED if current & st)


def remount_readonly(path: str | Path, what: str) -> None:
    """Make the bind mount at ``path`` read-only, keeping its locked flags."""
    flags = linux.MS_BIND | linux.MS_REMOUNT | linux.MS_RDONLY | locked_flags(path)
    _mount(None, path, None, flags, None, what)


@contextmanager
def _pinned(root: Path, target: Path, what: str) -> Iterator[str]:
    """Yield a /proc/self/fd path for ``target`` after checking that it is inside ``root``."""
    fd = os.open(target, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        real = Path(os.readlink(f"/proc/self/fd/{fd}"))
        if not is_within(root, real):
            raise SetupError(f"{what}: the target resolves to {real}, outside the rootfs")
        yield f"/proc/self/fd/{fd}"
    finally:
        os.close(fd)


def _special(root: Path, dest: str, fstype: str, source: str, flags: int, data: str | None) -> Path:
    """Mount a kernel file system on ``dest``, refusing a target that is a symlink."""
    what = f"mounting {fstype} on {dest}"
    target = root / dest.lstrip("/")
    if resolve_in_root(root, dest) != target:
        raise SetupError(f"{what}: {dest} is a symlink in the image, refusing to follow it")
    make_dirs_in_root(root, dest)
    with _pinned(root, target, what) as at:
        _mount(source, at, fstype, flags, data, what)
    return target


def _sys(root: Path, bind: bool, writable: bool) -> None:
    if not bind:
        readonly = 0 if writable else linux.MS_RDONLY
        _special(root, "/sys", "sysfs", "sysfs", readonly | _SECURE, None)
        return
    # A user namespace that does not own a network namespace may not mount sysfs: bind it.
    what = "binding /sys read-only"
    target = root / "sys"
    if resolve_in_root(root, "/sys") != target:
        raise SetupError(f"{what}: /sys is a symlink in the image, refusing to follow it")
    make_dirs_in_root(root, "/sys")
    with _pinned(root, target, what) as at:
        _mount("/sys", at, None, linux.MS_BIND | linux.MS_REC, None, what)
    if not writable:
        remount_readonly(target, what)


def _devices(dev: Path, bind: bool, skip: frozenset[str] = frozenset()) -> None:
    for name, major, minor in _DEVICES:
        if f"/dev/{name}" in skip:
            continue  # a --device of the same name replaces it
        path = dev / name
        if bind:
            # mknod is not allowed in a user namespace: bind the host's node instead.
            os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o666))
            _mount(f"/dev/{name}", path, None, linux.MS_BIND, None, f"binding /dev/{name}")
        elif _mknod(path, stat.S_IFCHR | 0o666, os.makedev(major, minor), f"/dev/{name}"):
            os.chmod(path, 0o666)
    for name, target in _DEV_LINKS:
        os.symlink(target, dev / name)


def _host_devices(dev: Path, bind: bool, host: Path = Path("/dev")) -> None:
    """``--privileged``: every device node of the host's /dev that is not there yet.

    The container's own /dev/pts, /dev/shm, /dev/mqueue and console stay its own, as in runc.
    """
    for entry in os.scandir(host):
        if entry.name in _HOST_DEV_SKIP or entry.is_symlink():
            continue
        target = dev / entry.name
        if entry.is_dir():
            _host_devices_below(dev, bind, Path(entry.path), target)
            continue
        mode = entry.stat(follow_symlinks=False)
        if not (stat.S_ISCHR(mode.st_mode) or stat.S_ISBLK(mode.st_mode)) or target.exists():
            continue
        what = f"adding host device {entry.path}"
        if bind:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            _mount(entry.path, target, None, linux.MS_BIND, None, what)
            continue
        try:
            os.mknod(target, mode.st_mode, mode.st_rdev)
            os.chown(target, mode.st_uid, mode.st_gid)
            os.chmod(target, stat.S_IMODE(mode.st_mode))
        except OSError as exc:
            raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno, path=target) from exc


def _host_devices_below(dev: Path, bind: bool, host: Path, target: Path) -> None:
    if not target.exists():
        target.mkdir(mode=0o755)
    _host_devices(target, bind, host)


def _mknod(path: Path, mode: int, device: int, host_path: str) -> bool:
    """Make a device node; where the devices cgroup forbids that (``--device`` without ``m``),
    bind the host's node instead, as runc does. True when the node was made."""
    try:
        os.mknod(path, mode, device)
        return True
    except PermissionError:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
        _mount(host_path, path, None, linux.MS_BIND, None, f"binding {host_path}")
        return False


def _host_shm(root: Path) -> None:
    """``--ipc host``: the host's /dev/shm, as the host's IPC namespace goes with it."""
    what = "binding the host's /dev/shm"
    target = root / "dev" / "shm"
    if resolve_in_root(root, "/dev/shm") != target:
        raise SetupError(f"{what}: /dev/shm is a symlink in the image, refusing to follow it")
    make_dirs_in_root(root, "/dev/shm")
    with _pinned(root, target, what) as at:
        _mount("/dev/shm", at, None, linux.MS_BIND | linux.MS_REC, None, what)


def _device(root: Path, device: Device, *, bind: bool) -> None:
    """``--device``: the host's node made (or, in a user namespace, bound) in the container,
    with the host's type, numbers, mode and owner, as runc makes it."""
    what = f"adding device {device.source} as {device.destination}"
    try:
        info = os.stat(device.source)
        if not (stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode)):
            raise SetupError(f"{what}: not a device node", path=device.source)
        parent = make_dirs_in_root(root, str(PurePosixPath(device.destination).parent))
        target = parent / PurePosixPath(device.destination).name
        if target.is_symlink() or target.exists():
            # The image (or the default /dev) has one there already: the host's wins.
            target.unlink()
        if bind:
            os.close(os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_CLOEXEC, 0o600))
            _mount(device.source, target, None, linux.MS_BIND, None, what)
            return
        if _mknod(target, info.st_mode, info.st_rdev, str(device.source)):
            os.chown(target, info.st_uid, info.st_gid)
            os.chmod(target, stat.S_IMODE(info.st_mode))
    except OSError as exc:
        raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno, path=device.source) from exc


def _volume(root: Path, volume: BindMount) -> None:
    what = f"binding volume {volume.source} on {volume.destination}"
    try:
        is_dir = stat.S_ISDIR(os.stat(volume.source).st_mode)
    except OSError as exc:
        raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno, path=volume.source) from exc
    try:
        if is_dir:
            target = make_dirs_in_root(root, volume.destination)
        else:
            target = make_file_in_root(root, volume.destination)
    except OSError as exc:
        # Say where in the container, never the host path of the root file system.
        found = Path(exc.filename) if exc.filename else None
        inside = volume.destination
        if found is not None and found.is_relative_to(root):
            inside = "/" + str(found.relative_to(root))
        leads = "" if inside == volume.destination else f" (it leads to {inside})"
        why = (exc.strerror or str(exc)).lower()
        if exc.errno == errno.ENOTDIR:
            why = "a directory cannot be mounted on a file"
        raise SetupError(f"{what}: {volume.destination}{leads}: {why}", errno=exc.errno) from exc
    with _pinned(root, target, what) as at:
        _mount(volume.source, at, None, linux.MS_BIND | linux.MS_REC, None, what)
    if volume.readonly:
        remount_readonly(target, what)


_TMPFS_FLAGS = {
    "ro": (linux.MS_RDONLY, True),
    "rw": (linux.MS_RDONLY, False),
    "noexec": (linux.MS_NOEXEC, True),
    "exec": (linux.MS_NOEXEC, False),
    "nosuid": (linux.MS_NOSUID, True),
    "suid": (linux.MS_NOSUID, False),
    "nodev": (linux.MS_NODEV, True),
    "dev": (linux.MS_NODEV, False),
}


def _tmpfs(root: Path, mount: TmpfsMount) -> None:
    """A tmpfs on ``mount.destination``: nosuid and nodev unless asked otherwise, as Docker."""
    what = f"mounting tmpfs on {mount.destination}"
    flags = linux.MS_NOSUID | linux.MS_NODEV
    data = []
    for option in filter(None, mount.options.split(",")):
        if option in _TMPFS_FLAGS:
            bit, wanted = _TMPFS_FLAGS[option]
            flags = flags | bit if wanted else flags & ~bit
        else:
            data.append(option)
    try:
        target = make_dirs_in_root(root, mount.destination)
    except OSError as exc:
        raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno) from exc
    with _pinned(root, target, what) as at:
        _mount("tmpfs", at, "tmpfs", flags, ",".join(data) or None, what)


def prepare(spec: ContainerSpec, root: Path, *, in_userns: bool, pts_gid: int | None) -> None:
    """Set up every mount below ``root`` that must exist before pivot_root."""
    _mount(None, "/", None, linux.MS_REC | linux.MS_PRIVATE, None, "making / private")
    _mount(root, root, None, linux.MS_BIND | linux.MS_REC, None, f"binding {root} onto itself")
    _special(root, "/proc", "proc", "proc", _SECURE, None)
    _special(
        root,
        "/dev",
        "tmpfs",
        "tmpfs",
        linux.MS_NOSUID | linux.MS_STRICTATIME,
        "mode=755,size=65536k",
    )
    pts = "newinstance,ptmxmode=0666,mode=0620" + (f",gid={pts_gid}" if pts_gid is not None else "")
    _special(root, "/dev/pts", "devpts", "devpts", linux.MS_NOSUID | linux.MS_NOEXEC, pts)
    if "ipc" in spec.host_namespaces:
        _host_shm(root)
    else:
        size = f"mode=1777,size={max(1, spec.shm_size // 1024)}k"
        _special(root, "/dev/shm", "tmpfs", "shm", _SECURE, size)
    _special(root, "/dev/mqueue", "mqueue", "mqueue", _SECURE, None)
    _sys(root, bind=in_userns and spec.network is NetworkMode.HOST, writable=spec.writable_sysfs)
    _devices(root / "dev", bind=in_userns, skip=frozenset(d.destination for d in spec.devices))
    if spec.host_devices:
        _host_devices(root / "dev", bind=in_userns)
    for device in spec.devices:
        _device(root, device, bind=in_userns)
    for volume in spec.mounts:
        _volume(root, volume)
    for mount in spec.tmpfs:
        _tmpfs(root, mount)
    try:
        make_dirs_in_root(root, spec.cwd)
    except OSError as exc:
        raise SetupError(
            f"creating working directory {spec.cwd}: {exc.strerror}", errno=exc.errno
        ) from exc


def pivot(root: Path) -> None:
    """Make ``root`` the root of the mount namespace and detach the old root."""
    os.chdir(root)
    try:
        linux.pivot_root(".", ".")
        # The old root now sits on top of the new one; lazily detach it.
        linux.umount2(".", linux.MNT_DETACH)
    except OSError as exc:
        raise SetupError(f"pivoting to {root}: {exc.strerror}", errno=exc.errno) from exc
    os.chdir("/")


def mask(paths: tuple[str, ...]) -> None:
    """Hide ``paths`` (after pivot_root): /dev/null over files, a read-only tmpfs over dirs."""
    for path in paths:
        try:
            is_dir = stat.S_ISDIR(os.stat(path).st_mode)
        except (FileNotFoundError, NotADirectoryError):
            continue
        if is_dir:
            _mount("tmpfs", path, "tmpfs", linux.MS_RDONLY, None, f"masking {path}")
        else:
            _mount("/dev/null", path, None, linux.MS_BIND, None, f"masking {path}")


def make_readonly(paths: tuple[str, ...]) -> None:
    """Bind each of ``paths`` (after pivot_root) onto itself read-only."""
    for path in paths:
        if not os.path.exists(path):
            continue
        what = f"making {path} read-only"
        _mount(path, path, None, linux.MS_BIND | linux.MS_REC, None, what)
        remount_readonly(path, what)


def bind_console(slave_path: str) -> None:
    """Bind the container's terminal onto /dev/console (after pivot_root)."""
    os.close(os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_CLOEXEC, 0o600))
    _mount(slave_path, "/dev/console", None, linux.MS_BIND, None, "binding /dev/console")
