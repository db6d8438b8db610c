"""Seccomp profiles as values: rules, Docker's JSON profile format, and the rules that apply.

A profile names what happens to a syscall no rule matches (``default``) and a list of rules.
A rule may carry argument conditions and conditions on the container: capabilities it must
hold (``needs_caps``, all of them) or must not hold (``unless_caps``, any of them), the
architecture, and a minimum kernel; :func:`applicable` keeps the rules whose conditions hold,
so the filter that is loaded only ever sees plain rules. This is the model of Docker's
profiles (moby ``profiles/seccomp``), which :func:`parse_docker_json` reads.
"""

from __future__ import annotations

import enum
import errno as errnos
import json
import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from . import capabilities
from .errors import InvalidSpecError


class Action(enum.StrEnum):
    """What the kernel does with a matching syscall (libseccomp's names, as Docker spells them)."""

    ALLOW = "SCMP_ACT_ALLOW"
    ERRNO = "SCMP_ACT_ERRNO"
    KILL = "SCMP_ACT_KILL"
    KILL_THREAD = "SCMP_ACT_KILL_THREAD"
    KILL_PROCESS = "SCMP_ACT_KILL_PROCESS"
    TRAP = "SCMP_ACT_TRAP"
    TRACE = "SCMP_ACT_TRACE"
    LOG = "SCMP_ACT_LOG"


class Operator(enum.StrEnum):
    """How an argument is compared with a rule's value."""

    NOT_EQUAL = "SCMP_CMP_NE"
    LESS_THAN = "SCMP_CMP_LT"
    LESS_EQUAL = "SCMP_CMP_LE"
    EQUAL = "SCMP_CMP_EQ"
    GREATER_EQUAL = "SCMP_CMP_GE"
    GREATER_THAN = "SCMP_CMP_GT"
    # (argument & value) == value_two
    MASKED_EQUAL = "SCMP_CMP_MASKED_EQ"


@dataclass(frozen=True)
class Condition:
    """A comparison of argument ``index`` (0 to 5) with ``value``."""

    index: int
    value: int
    op: Operator
    value_two: int = 0

    def __post_init__(self) -> None:
        if not 0 <= self.index <= 5:
            raise InvalidSpecError(f"checking seccomp rule: argument index {self.index} not 0-5")
        for number in (self.value, self.value_two):
            if not 0 <= number < 1 << 64:
                raise InvalidSpecError(f"checking seccomp rule: value {number} is not 64-bit")


@dataclass(frozen=True)
class Rule:
    """``action`` for the syscalls ``names`` when every condition holds."""

    names: tuple[str, ...]
    action: Action = Action.ALLOW
    # For ERRNO and TRACE; None means EPERM, as runc does.
    errno: int | None = None
    conditions: tuple[Condition, ...] = ()
    needs_caps: frozenset[str] = frozenset()
    unless_caps: frozenset[str] = frozenset()
    # Go architecture names (``amd64``, ``arm64``, ...), as Docker's profiles use them.
    arches: frozenset[str] = frozenset()
    unless_arches: frozenset[str] = frozenset()
    min_kernel: tuple[int, int] | None = None
    unless_min_kernel: tuple[int, int] | None = None

    def __post_init__(self) -> None:
        if not self.names:
            raise InvalidSpecError("checking seccomp rule: no syscall names")
        for attribute in ("needs_caps", "unless_caps"):
            names = getattr(self, attribute)
            object.__setattr__(self, attribute, frozenset(capabilities.normalize(n) for n in names))

    def applies(self, caps: frozenset[str], arch: str, kernel: tuple[int, int]) -> bool:
        """True when the rule's conditions on the container hold (as moby decides)."""
        if arch in self.unless_arches or self.unless_caps & caps:
            return False
        if self.unless_min_kernel is not None and kernel >= self.unless_min_kernel:
            return False
        if self.arches and arch not in self.arches:
            return False
        if not self.needs_caps <= caps:
            return False
        return self.min_kernel is None or kernel >= self.min_kernel


@dataclass(frozen=True)
class SeccompProfile:
    """A whole profile: the default action, the rules, and the extra architectures to cover.

    ``arches`` are libseccomp architecture names (``x86``, ``x32``) added to the native one, so
    the filter also judges syscalls made through the other entry points of this CPU; a syscall
    from an architecture not in the filter kills the process.
    """

    default: Action = Action.ERRNO
    default_errno: int | None = None
    rules: tuple[Rule, ...] = ()
    arches: tuple[str, ...] = ()
    # Where the profile came from, for error messages ("default", a file name).
    name: str = field(default="custom", compare=False)


def native_arch() -> str:
    """The Go name of this machine's architecture (``amd64``), which profiles match on."""
    machine = platform.machine()
    return _GO_ARCHES.get(machine, machine)


def compat_arches() -> tuple[str, ...]:
    """libseccomp names of the other ABIs of this CPU (``x86``, ``x32`` on x86_64)."""
    return tuple(_FAMILY.get(platform.machine(), {}).values())


def kernel_version() -> tuple[int, int]:
    """The running kernel's major and minor version."""
    release = os.uname().release
    parts = release.split(".")
    try:
        return int(parts[0]), int("".join(c for c in parts[1] if c.isdigit()) or 0)
    except (IndexError, ValueError):
        return (0, 0)


def applicable(
    profile: SeccompProfile,
    caps: Iterable[str],
    *,
    arch: str | None = None,
    kernel: tuple[int, int] | None = None,
) -> list[Rule]:
    """The rules of ``profile`` that apply to a container holding ``caps``."""
    held = frozenset(capabilities.normalize(c) for c in caps)
    where = arch or native_arch()
    version = kernel or kernel_version()
    return [rule for rule in profile.rules if rule.applies(held, where, version)]


# -- Docker's JSON format -------------------------------------------------------------------------

_GO_ARCHES = {"x86_64": "amd64", "aarch64": "arm64", "i686": "386", "armv7l": "arm"}
# The SCMP_ARCH_* name of each machine, and the other entry points of the same CPU.
_SCMP_NATIVE = {"x86_64": "SCMP_ARCH_X86_64", "aarch64": "SCMP_ARCH_AARCH64"}
_FAMILY = {
    "x86_64": {"SCMP_ARCH_X86": "x86", "SCMP_ARCH_X32": "x32"},
    "aarch64": {"SCMP_ARCH_ARM": "arm"},
}
_PROFILE_KEYS = {
    "defaultAction",
    "defaultErrnoRet",
    "architectures",
    "archMap",
    "syscalls",
    "flags",
    "listenerPath",
    "listenerMetadata",
}
_RULE_KEYS = {"name", "names", "action", "errnoRet", "args", "includes", "excludes", "comment"}
_FILTER_KEYS = {"caps", "arches", "minKernel"}
_ARG_KEYS = {"index", "value", "valueTwo", "op"}


def _fail(source: str, why: str) -> InvalidSpecError:
    return InvalidSpecError(f"reading seccomp profile {source}: {why}")


def _action(value: object, source: str) -> Action:
    if value == "SCMP_ACT_NOTIFY":
        raise _fail(source, "SCMP_ACT_NOTIFY (a seccomp agent) is not supported")
    try:
        return Action(str(value))
    except ValueError:
        raise _fail(source, f"unknown action {value!r}") from None


def _number(value: object, what: str, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise _fail(source, f"{what} must be a non-negative integer, not {value!r}")
    return value


def _check_keys(document: Mapping[str, object], known: set[str], where: str, source: str) -> None:
    unknown = sorted(set(document) - known)
    if unknown:
        raise _fail(source, f"{where}: unknown field {unknown[0]!r}")


def _kernel(value: object, source: str) -> tuple[int, int]:
    text = str(value)
    major, _, minor = text.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise _fail(source, f"minKernel {value!r} is not like 5.8")
    return int(major), int(minor)


def _filter(document: object, source: str) -> tuple[frozenset[str], frozenset[str], object]:
    """caps, arches and minKernel of an ``includes`` or ``excludes`` object."""
    if document is None:
        return frozenset(), frozenset(), None
    if not isinstance(document, dict):
        raise _fail(source, "includes and excludes must be objects")
    _check_keys(document, _FILTER_KEYS, "includes/excludes", source)
    caps = document.get("caps") or []
    arches = document.get("arches") or []
    if not isinstance(caps, list) or not isinstance(arches, list):
        raise _fail(source, "includes/excludes caps and arches must be lists")
    try:
        names = frozenset(capabilities.normalize(str(c)) for c in caps)
    except InvalidSpecError as exc:
        raise _fail(source, str(exc)) from exc
    return names, frozenset(str(a) for a in arches), document.get("minKernel")


def _condition(document: object, source: str) -> Condition:
    if not isinstance(document, dict):
        raise _fail(source, "each of args must be an object")
    _check_keys(document, _ARG_KEYS, "args", source)
    try:
        op = Operator(str(document.get("op")))
    except ValueError:
        raise _fail(source, f"unknown argument operator {document.get('op')!r}") from None
    try:
        return Condition(
            index=_number(document.get("index"), "args index", source),
            value=_number(document.get("value", 0), "args value", source),
            op=op,
            value_two=_number(document.get("valueTwo", 0), "args valueTwo", source),
        )
    except InvalidSpecError as exc:
        raise _fail(source, str(exc).partition(": ")[2]) from exc


def _rule(document: object, source: str) -> Rule:
    if not isinstance(document, dict):
        raise _fail(source, "each of syscalls must be an object")
    _check_keys(document, _RULE_KEYS, "syscalls", source)
    names = document.get("names") or ([document["name"]] if document.get("name") else [])
    if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
        raise _fail(source, "a syscalls entry needs a list of names")
    action = _action(document.get("action"), source)
    errno = document.get("errnoRet")
    args = document.get("args") or []
    if not isinstance(args, list):
        raise _fail(source, "args must be a list")
    needs, arches, min_kernel = _filter(document.get("includes"), source)
    unless, not_arches, unless_kernel = _filter(document.get("excludes"), source)
    return Rule(
        names=tuple(names),
        action=action,
        errno=None if errno is None else _number(errno, "errnoRet", source),
        conditions=tuple(_condition(arg, source) for arg in args),
        needs_caps=needs,
        unless_caps=unless,
        arches=arches,
        unless_arches=not_arches,
        min_kernel=None if min_kernel is None else _kernel(min_kernel, source),
        unless_min_kernel=None if unless_kernel is None else _kernel(unless_kernel, source),
    )


def _arches(document: Mapping[str, object], source: str) -> tuple[str, ...]:
    """The libseccomp names of the other architectures of this CPU that the profile covers."""
    machine = platform.machine()
    family = _FAMILY.get(machine, {})
    named: list[str] = []
    arch_map = document.get("archMap")
    if arch_map is not None:
        if not isinstance(arch_map, list):
            raise _fail(source, "archMap must be a list")
        for entry in arch_map:
            if not isinstance(entry, dict):
                raise _fail(source, "each of archMap must be an object")
            if entry.get("architecture") == _SCMP_NATIVE.get(machine):
                named += [str(a) for a in entry.get("subArchitectures") or []]
    listed = document.get("architectures")
    if listed is not None:
        if not isinstance(listed, list):
            raise _fail(source, "architectures must be a list")
        named += [str(a) for a in listed]
    return tuple(dict.fromkeys(family[a] for a in named if a in family))


def parse_docker_json(text: str | bytes, source: str = "custom") -> SeccompProfile:
    """Read a profile in Docker's JSON format (``docker run --security-opt seccomp=FILE``).

    Supported: ``defaultAction``, ``defaultErrnoRet``, ``architectures``, ``archMap``, and per
    entry of ``syscalls``: ``names`` (or ``name``), ``action``, ``errnoRet``, ``args`` and
    ``includes``/``excludes`` with ``caps``, ``arches`` and ``minKernel``. A seccomp agent
    (``SCMP_ACT_NOTIFY``, ``listenerPath``) and filter ``flags`` are refused.
    """
    try:
        document = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise _fail(source, f"not JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise _fail(source, "the profile must be a JSON object")
    _check_keys(document, _PROFILE_KEYS, "profile", source)
    for unsupported in ("listenerPath", "listenerMetadata"):
        if document.get(unsupported):
            raise _fail(source, f"{unsupported} (a seccomp agent) is not supported")
    if document.get("flags"):
        raise _fail(source, "filter flags are not supported")
    if "defaultAction" not in document:
        raise _fail(source, "defaultAction is missing")
    syscalls = document.get("syscalls") or []
    if not isinstance(syscalls, list):
        raise _fail(source, "syscalls must be a list")
    default_errno = document.get("defaultErrnoRet")
    return SeccompProfile(
        default=_action(document["defaultAction"], source),
        default_errno=None if default_errno is None else _number(default_errno, "errno", source),
        rules=tuple(_rule(entry, source) for entry in syscalls),
        arches=_arches(document, source),
        name=source,
    )


def errno_of(errno: int | None) -> int:
    """The errno an ERRNO or TRACE action returns (EPERM unless given)."""
    return errnos.EPERM if errno is None else errno
