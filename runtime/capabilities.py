"""Capability names, Docker's defaults, ``--cap-add``/``--cap-drop`` resolution, and applying a set.

Names are kept in the OCI spelling (``CAP_CHOWN``); user input may omit the prefix and use any
case, as Docker accepts.
"""

from __future__ import annotations

from collections.abc import Iterable

from . import linux
from .errors import InvalidSpecError

# Numbers from linux/capability.h.
CAPABILITY_NUMBERS: dict[str, int] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

# The 14 capabilities Docker grants a container unless told otherwise.
DEFAULT_CAPABILITIES: frozenset[str] = frozenset(
    {
        "CAP_CHOWN",
        "CAP_DAC_OVERRIDE",
        "CAP_FSETID",
        "CAP_FOWNER",
        "CAP_MKNOD",
        "CAP_NET_RAW",
        "CAP_SETGID",
        "CAP_SETUID",
        "CAP_SETFCAP",
        "CAP_SETPCAP",
        "CAP_NET_BIND_SERVICE",
        "CAP_SYS_CHROOT",
        "CAP_KILL",
        "CAP_AUDIT_WRITE",
    }
)

ALL = "ALL"


def normalize(name: str) -> str:
    """Return the OCI spelling of a capability name, or ``ALL``; reject unknown names."""
    upper = name.strip().upper()
    if upper == ALL:
        return ALL
    full = upper if upper.startswith("CAP_") else f"CAP_{upper}"
    if full not in CAPABILITY_NUMBERS:
        raise InvalidSpecError(f"resolving capabilities: unknown capability {name!r}")
    return full


def resolve(
    add: Iterable[str] = (),
    drop: Iterable[str] = (),
    base: Iterable[str] = DEFAULT_CAPABILITIES,
) -> frozenset[str]:
    """Apply ``--cap-add`` and ``--cap-drop`` to ``base`` as Docker does.

    ``ALL`` in ``add`` grants every capability but the dropped ones; ``ALL`` in ``drop`` starts
    from nothing and keeps only the added ones; otherwise drops are taken from the base and then
    the adds are put in.
    """
    adds = {normalize(name) for name in add}
    drops = {normalize(name) for name in drop}
    if ALL in adds:
        return frozenset(CAPABILITY_NUMBERS) - drops
    if ALL in drops:
        return frozenset(adds)
    return (frozenset(normalize(name) for name in base) - drops) | adds


def mask(caps: Iterable[str]) -> int:
    """Return the bit mask of a set of capability names, as /proc/PID/status shows it."""
    value = 0
    for name in caps:
        value |= 1 << CAPABILITY_NUMBERS[normalize(name)]
    return value


def last_cap() -> int:
    """Return the highest capability number the running kernel knows."""
    with open("/proc/sys/kernel/cap_last_cap") as f:
        return int(f.read())


def bounding() -> frozenset[str]:
    """The capabilities in this process's bounding set: what a container can be given at most."""
    highest = last_cap()
    return frozenset(
        name
        for name, number in CAPABILITY_NUMBERS.items()
        if number <= highest and linux.prctl(linux.PR_CAPBSET_READ, number) == 1
    )


def drop_bounding(keep: int, highest: int) -> None:
    """Drop every capability not in the mask ``keep`` from the bounding set."""
    for number in range(highest + 1):
        if not keep & (1 << number) and linux.prctl(linux.PR_CAPBSET_READ, number) == 1:
            linux.prctl(linux.PR_CAPBSET_DROP, number)


def set_process_caps(keep: int) -> None:
    """Make ``keep`` the effective and permitted sets and empty the inheritable set."""
    linux.capset(linux.CapSets(effective=keep, permitted=keep, inheritable=0))
