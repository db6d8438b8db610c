"""``-u user[:group]`` resolved against the image's /etc/passwd and /etc/group, as Docker does."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from .errors import UnknownUserError
from .securejoin import resolve_in_root
from .spec import User


@dataclass(frozen=True)
class PasswdEntry:
    """One line of /etc/passwd."""

    name: str
    uid: int
    gid: int
    home: str


@dataclass(frozen=True)
class GroupEntry:
    """One line of /etc/group."""

    name: str
    gid: int
    members: tuple[str, ...]


def parse_passwd(text: str) -> list[PasswdEntry]:
    """Parse /etc/passwd text, skipping malformed lines."""
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 7 or not fields[2].isdigit() or not fields[3].isdigit():
            continue
        entries.append(PasswdEntry(fields[0], int(fields[2]), int(fields[3]), fields[5]))
    return entries


def parse_group(text: str) -> list[GroupEntry]:
    """Parse /etc/group text, skipping malformed lines."""
    entries = []
    for line in text.splitlines():
        fields = line.split(":")
        if len(fields) < 4 or not fields[2].isdigit():
            continue
        members = tuple(m for m in fields[3].split(",") if m)
        entries.append(GroupEntry(fields[0], int(fields[2]), members))
    return entries


def _read(rootfs: Path, path: str) -> str:
    try:
        return resolve_in_root(rootfs, path).read_text(errors="replace")
    except (FileNotFoundError, NotADirectoryError):
        return ""


def home_for(passwd_text: str, uid: int) -> str:
    """Return the home directory of ``uid`` in /etc/passwd text, or ``/``."""
    for entry in parse_passwd(passwd_text):
        if entry.uid == uid:
            return entry.home or "/"
    return "/"


def resolve(
    rootfs: Path, spec: str, *, container_id: str | None = None, group_add: Sequence[str] = ()
) -> User:
    """Resolve ``name|uid[:group|gid]`` in the image at ``rootfs``.

    An empty spec is root. A numeric uid need not exist in /etc/passwd (its gid is then 0), a
    name must. Supplementary groups are those of /etc/group that list the user by name, and
    ``group_add`` (``--group-add``: numbers, or names that must be in /etc/group).
    """
    user_part, _, group_part = spec.partition(":")
    passwd = parse_passwd(_read(rootfs, "/etc/passwd"))
    groups = parse_group(_read(rootfs, "/etc/group"))
    entry = next((e for e in passwd if user_part and e.name == user_part), None)
    if entry is None and user_part.isdigit():
        entry = next((e for e in passwd if e.uid == int(user_part)), None)
        if entry is None:
            entry = PasswdEntry("", int(user_part), 0, "/")
    if entry is None and user_part == "":
        entry = next((e for e in passwd if e.uid == 0), PasswdEntry("root", 0, 0, "/root"))
    if entry is None:
        raise UnknownUserError(
            f"resolving user {spec!r}: no user {user_part!r} in the image's /etc/passwd",
            container_id=container_id,
        )
    gid = entry.gid
    if group_part:
        if group_part.isdigit():
            gid = int(group_part)
        else:
            match = next((g for g in groups if g.name == group_part), None)
            if match is None:
                raise UnknownUserError(
                    f"resolving user {spec!r}: no group {group_part!r} in the image's /etc/group",
                    container_id=container_id,
                )
            gid = match.gid
    extra = {g.gid for g in groups if entry.name and entry.name in g.members and g.gid != gid}
    for wanted in group_add:
        if wanted.isdigit():
            extra.add(int(wanted))
            continue
        match = next((g for g in groups if g.name == wanted), None)
        if match is None:
            raise UnknownUserError(
                f"resolving --group-add {wanted!r}: unable to find group {wanted}: no matching"
                " entries in group file",
                container_id=container_id,
            )
        extra.add(match.gid)
    return User(uid=entry.uid, gid=gid, additional_gids=tuple(sorted(extra)))
