"""The command's identity: rlimits, groups, uid/gid, capabilities, no-new-privileges.

The order follows runc: the bounding set is reduced while the process still holds
CAP_SETPCAP; KEEPCAPS keeps the permitted set across the switch to a non-root uid; then capset
leaves exactly the wanted capabilities permitted and effective, with nothing inheritable.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Callable

from . import capabilities, linux
from .errors import SetupError
from .spec import Rlimit, User


def apply_rlimits(rlimits: tuple[Rlimit, ...]) -> None:
    """Set each resource limit (before privileges are dropped, so hard limits can rise)."""
    for limit in rlimits:
        try:
            resource.setrlimit(limit.resource, (limit.soft, limit.hard))
        except (OSError, ValueError) as exc:
            raise SetupError(f"setting rlimit {limit.name}: {exc}") from exc


def switch_user(user: User, caps: frozenset[str], *, setgroups_allowed: bool) -> None:
    """Become ``user`` holding exactly ``caps`` in the bounding, permitted and effective sets."""
    highest = capabilities.last_cap()
    keep = capabilities.mask(caps) & ((1 << (highest + 1)) - 1)
    try:
        capabilities.drop_bounding(keep, highest)
    except OSError as exc:
        raise SetupError(f"dropping capabilities: {exc.strerror}", errno=exc.errno) from exc
    linux.prctl(linux.PR_SET_KEEPCAPS, 1)
    if setgroups_allowed:
        groups = list(user.additional_gids)
        _checked(f"setting groups {groups}", os.setgroups, groups)
    elif user.additional_gids:
        raise SetupError(
            "setting additional groups: setgroups is denied in this user namespace "
            "(no newgidmap with /etc/subgid ranges)"
        )
    _checked(f"setting gid {user.gid}", os.setresgid, user.gid, user.gid, user.gid)
    _checked(f"setting uid {user.uid}", os.setresuid, user.uid, user.uid, user.uid)
    linux.prctl(linux.PR_SET_KEEPCAPS, 0)
    try:
        capabilities.set_process_caps(keep)
    except OSError as exc:
        raise SetupError(f"setting capabilities: {exc.strerror}", errno=exc.errno) from exc


def _checked(what: str, func: Callable[..., None], *args: object) -> None:
    try:
        func(*args)
    except OSError as exc:
        raise SetupError(f"{what}: {exc.strerror}", errno=exc.errno) from exc


def forbid_new_privileges() -> None:
    """Set no_new_privs: setuid binaries and file capabilities grant nothing from now on."""
    linux.prctl(linux.PR_SET_NO_NEW_PRIVS, 1)
