"""The ``-o`` options of ``pydock-fuse-overlay``: fuse-overlayfs's names, parsed into one value.

``lowerdir``, ``upperdir`` and ``workdir`` name the layers; the kernel mount flags (``ro``,
``nodev``, ``noatime``, ...) pass through to the FUSE mount; the fuse-overlayfs tuning knobs that
change nothing here (``threaded``, ``fast_ino``, ``writeback``, ``noacl``) are accepted and
ignored; the ones that would change what files look like (id mappings, squashing, plugins) are
refused, so a caller never gets a mount that silently differs from the one it asked for.
The options that ``mount(8)`` and ``/etc/fstab`` add for their own use (``_netdev``, ``nofail``,
``defaults``, ``x-*``, ...) are dropped; any other unknown option gives a warning and is
ignored, as fuse-overlayfs does, so an fstab line written for fuse-overlayfs mounts here too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from drivers.fuse.errors import InvalidOptionError

# Mount flags libfuse understands and hands to mount(2); they change nothing in this filesystem.
KERNEL_FLAGS = frozenset(
    {"ro", "rw", "dev", "nodev", "suid", "nosuid", "exec", "noexec", "sync", "async",
     "dirsync", "atime", "noatime"}
)  # fmt: skip
# Flags mount(8) knows but libfuse does not: the atime flavours become libfuse's "atime" (the
# kernel's relatime); the rest mean nothing for a FUSE mount, whose atimes live in memory only.
TRANSLATED_FLAGS = {"relatime": "atime", "strictatime": "atime"}
IGNORED_MOUNT_FLAGS = frozenset(
    {"diratime", "nodiratime", "norelatime", "nostrictatime", "lazytime", "nolazytime"}
)
# What mount(8) and fstab mean for themselves, not for the filesystem.
FSTAB_ONLY = frozenset(
    {"_netdev", "nofail", "defaults", "auto", "noauto", "user", "users", "nouser", "owner",
     "group", "loud", "silent"}
)  # fmt: skip
# fuse-overlayfs knobs that only tune its own implementation.
IGNORED_NUMERIC = frozenset({"threaded", "fast_ino", "writeback"})
IGNORED_FLAGS = frozenset({"noacl", "default_permissions"})
REFUSED = frozenset(
    {"uidmapping", "gidmapping", "squash_to_root", "squash_to_uid", "squash_to_gid", "plugins"}
)
DEFAULT_TIMEOUT = 1_000_000.0


@dataclass(frozen=True)
class FsOptions:
    """How to serve a mount: durability, caching and the kernel mount flags."""

    fsync: bool = True
    allow_other: bool | None = None  # None: only when running as root
    static_nlink: bool = False
    user_xattr: bool = False
    timeout: float = DEFAULT_TIMEOUT
    kernel: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class MountSpec:
    """What a command line asks for: the layers (absolute paths) and how to serve them."""

    lowers: tuple[str, ...]
    upper: str | None
    work: str | None
    options: FsOptions
    warnings: tuple[str, ...] = ()


def split_escaped(text: str, sep: str) -> list[str]:
    """Split at ``sep`` except where it is escaped with a backslash (as mount(8) allows).

    Only ``\\<sep>`` is unescaped; other escapes stay for the next level to split on
    (``lowerdir`` values are split again at ``:``).
    """
    parts: list[str] = []
    current: list[str] = []
    chars = iter(text)
    for char in chars:
        if char == "\\":
            following = next(chars, "")
            current.append(following if following == sep else char + following)
        elif char == sep:
            parts.append("".join(current))
            current = []
        else:
            current.append(char)
    parts.append("".join(current))
    return parts


def unescape(text: str) -> str:
    """Drop the backslash of every remaining escape."""
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "") if char == "\\" else char)
    return "".join(out)


def _number(key: str, value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise InvalidOptionError(f"option {key} needs a number, not {value!r}") from None


def _is_dropped(key: str, has_value: bool) -> bool:
    """Whether an option is accepted and means nothing to this filesystem."""
    if key in FSTAB_ONLY or key.startswith(("x-", "comment=")):
        return True
    return not has_value and (key in IGNORED_FLAGS or key in IGNORED_MOUNT_FLAGS)


def parse(option_strings: list[str], *, cwd: str | None = None) -> MountSpec:
    """Parse one or more ``-o`` strings; relative layer paths are taken from ``cwd``."""
    base = cwd if cwd is not None else os.getcwd()
    lowers: list[str] = []
    upper = work = None
    fsync, static_nlink, user_xattr = True, False, False
    allow_other: bool | None = None
    timeout = DEFAULT_TIMEOUT
    kernel: list[str] = []
    warnings: list[str] = []
    for text in option_strings:
        for item in split_escaped(text, ","):
            if not item:
                continue
            key, has_value, value = item.partition("=")
            if key == "lowerdir" and has_value:
                lowers = [os.path.join(base, unescape(p)) for p in split_escaped(value, ":") if p]
            elif key == "upperdir" and has_value:
                upper = os.path.join(base, unescape(value))
            elif key == "workdir" and has_value:
                work = os.path.join(base, unescape(value))
            elif key == "fsync" and has_value:
                fsync = _number(key, value) != 0
            elif key == "volatile" and not has_value:
                fsync = False
            elif key == "timeout" and has_value:
                try:
                    timeout = float(value)
                except ValueError:
                    message = f"option timeout needs seconds, not {value!r}"
                    raise InvalidOptionError(message) from None
            elif key == "allow_other" and not has_value:
                allow_other = True
            elif key == "static_nlink" and not has_value:
                static_nlink = True
            elif key == "userxattr" and not has_value:
                user_xattr = True
            elif key in KERNEL_FLAGS and not has_value:
                kernel.append(key)
            elif key in TRANSLATED_FLAGS and not has_value:
                kernel.append(TRANSLATED_FLAGS[key])
            elif _is_dropped(key, bool(has_value)):
                continue
            elif key in IGNORED_NUMERIC and has_value:
                _number(key, value)
            elif key in ("noxattrs", "xattr_permissions") and has_value:
                if _number(key, value) != 0:
                    raise InvalidOptionError(f"option {item} is not supported")
            elif key == "redirect_dir" and has_value:
                if value not in ("off", "nofollow"):
                    raise InvalidOptionError(f"option {item} is not supported (only off)")
            elif key in ("fsname", "subtype") and has_value:
                kernel.append(item)
            elif key in REFUSED:
                raise InvalidOptionError(f"option {key} is not supported")
            else:
                warnings.append(f"unknown option {item!r} ignored")
    if not lowers:
        raise InvalidOptionError("no lowerdir given (-o lowerdir=DIR[:DIR...])")
    if (upper is None) != (work is None):
        raise InvalidOptionError("upperdir and workdir must be given together")
    options = FsOptions(
        fsync=fsync,
        allow_other=allow_other,
        static_nlink=static_nlink,
        user_xattr=user_xattr,
        timeout=timeout,
        kernel=tuple(kernel),
    )
    return MountSpec(
        lowers=tuple(lowers), upper=upper, work=work, options=options, warnings=tuple(warnings)
    )
