"""User-namespace id maps: a single-id map of the caller, or subordinate ranges via newuidmap.

The parent writes the maps of the child's new user namespace. Without the setuid helpers an
unprivileged process may map only its own id, and must write ``deny`` to ``setgroups`` before
``gid_map``; with ``newuidmap``/``newgidmap`` and ranges in ``/etc/subuid``/``/etc/subgid`` the
container gets ids 1..N as well, and may call setgroups.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

# The initial user namespace maps all 2**32 - 1 ids to themselves.
INITIAL_SIZE = 4294967295


@dataclass(frozen=True)
class IdRange:
    """``size`` ids starting at ``inside`` in the container map to ``outside`` on the host."""

    inside: int
    outside: int
    size: int

    def line(self) -> str:
        """The range as one line of /proc/PID/uid_map."""
        return f"{self.inside} {self.outside} {self.size}"


@dataclass(frozen=True)
class IdMapping:
    """The uid and gid maps of one container's user namespace."""

    uids: tuple[IdRange, ...]
    gids: tuple[IdRange, ...]
    use_helpers: bool

    @property
    def allows_setgroups(self) -> bool:
        """True when the container may call setgroups (only with the setuid helpers)."""
        return self.use_helpers

    def maps_uid(self, uid: int) -> bool:
        """True when container uid ``uid`` is mapped."""
        return any(r.inside <= uid < r.inside + r.size for r in self.uids)

    def maps_gid(self, gid: int) -> bool:
        """True when container gid ``gid`` is mapped."""
        return any(r.inside <= gid < r.inside + r.size for r in self.gids)


def parse_map(text: str) -> tuple[IdRange, ...]:
    """Parse /proc/PID/uid_map (or gid_map) text into its ranges."""
    ranges = []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) == 3 and all(field.isdigit() for field in fields):
            ranges.append(IdRange(int(fields[0]), int(fields[1]), int(fields[2])))
    return tuple(ranges)


def current() -> IdMapping:
    """The maps of the user namespace this process is in (the initial one maps every id)."""
    uids = parse_map(Path("/proc/self/uid_map").read_text())
    gids = parse_map(Path("/proc/self/gid_map").read_text())
    return IdMapping(uids, gids, use_helpers=False)


def setgroups_allowed_here() -> bool:
    """Whether this process's user namespace lets it call setgroups (not ``deny``)."""
    try:
        return Path("/proc/self/setgroups").read_text().strip() != "deny"
    except OSError:
        return True


def is_initial(mapping: IdMapping) -> bool:
    """True for the maps of the initial user namespace, where every id maps to itself."""
    return mapping.uids == (IdRange(0, 0, INITIAL_SIZE),)


def parse_subid(text: str, user: str, uid: int) -> IdRange | None:
    """Return the first subordinate range of ``user`` (by name or uid) in /etc/subuid text."""
    for raw in text.splitlines():
        fields = raw.strip().split(":")
        if len(fields) != 3 or fields[0] not in (user, str(uid)):
            continue
        try:
            start, count = int(fields[1]), int(fields[2])
        except ValueError:
            continue
        if count > 0:
            return IdRange(inside=1, outside=start, size=count)
    return None


def _subid(path: Path, user: str, uid: int) -> IdRange | None:
    try:
        return parse_subid(path.read_text(), user, uid)
    except OSError:
        return None


def single(uid: int | None = None, gid: int | None = None) -> IdMapping:
    """Map container root to ``uid``:``gid`` (default: the caller) and nothing else."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    return IdMapping((IdRange(0, uid, 1),), (IdRange(0, gid, 1),), use_helpers=False)


def plan(uid: int | None = None, gid: int | None = None) -> IdMapping:
    """Choose the maps for a container started by ``uid``:``gid`` (default: the caller)."""
    uid = os.geteuid() if uid is None else uid
    gid = os.getegid() if gid is None else gid
    own_uid, own_gid = IdRange(0, uid, 1), IdRange(0, gid, 1)
    try:
        name = pwd.getpwuid(uid).pw_name
    except KeyError:
        name = str(uid)
    sub_uid = _subid(Path("/etc/subuid"), name, uid)
    sub_gid = _subid(Path("/etc/subgid"), name, uid)
    helpers = shutil.which("newuidmap") is not None and shutil.which("newgidmap") is not None
    if helpers and sub_uid is not None and sub_gid is not None:
        return IdMapping((own_uid, sub_uid), (own_gid, sub_gid), use_helpers=True)
    return single(uid, gid)


def write(pid: int, mapping: IdMapping) -> None:
    """Write the maps of the user namespace that process ``pid`` has just created."""
    if mapping.use_helpers:
        for helper, ranges in (("newgidmap", mapping.gids), ("newuidmap", mapping.uids)):
            argv = [helper, str(pid)]
            for r in ranges:
                argv += [str(r.inside), str(r.outside), str(r.size)]
            subprocess.run(argv, check=True, capture_output=True, timeout=30)
        return
    proc = Path(f"/proc/{pid}")
    # The kernel refuses an unprivileged gid_map until setgroups is denied for the namespace.
    (proc / "setgroups").write_text("deny")
    (proc / "gid_map").write_text("\n".join(r.line() for r in mapping.gids) + "\n")
    (proc / "uid_map").write_text("\n".join(r.line() for r in mapping.uids) + "\n")
