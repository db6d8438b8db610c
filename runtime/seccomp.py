"""Loading a seccomp filter through libseccomp (Debian's ``libseccomp2``), with ctypes.

The library is loaded once, on first use, with ``use_errno=True``. The caller compiles the
filter before forking (:func:`compile_program`): after pivot_root the container's own files are
all that is left, and an image need not carry libseccomp. Compiling (the rules that apply to the
capabilities, then libseccomp's BPF generation) takes 15-25 ms, so a program is kept per
profile and capability set: a resident caller (the API service) pays it once, and the forked
init finds it already made. Init loads the program (:meth:`Program.load`) as late as it can;
see :mod:`runtime.init` for when. The program is exactly what ``seccomp_load`` would install:
libseccomp exports the same instructions, and loads them with no flags.

libseccomp is asked not to set no_new_privs itself (Docker leaves it off too), so loading
needs CAP_SYS_ADMIN unless the container asked for no-new-privileges.
"""

from __future__ import annotations

import ctypes
import functools
import os
import platform
from collections.abc import Iterable
from dataclasses import dataclass

from . import linux
from .errors import SeccompError
from .seccomp_profile import Action, Operator, Rule, SeccompProfile, applicable, errno_of

# Action values (seccomp.h).
_ACTIONS: dict[Action, int] = {
    Action.KILL: 0x00000000,
    Action.KILL_THREAD: 0x00000000,
    Action.KILL_PROCESS: 0x80000000,
    Action.TRAP: 0x00030000,
    Action.ERRNO: 0x00050000,
    Action.TRACE: 0x7FF00000,
    Action.LOG: 0x7FFC0000,
    Action.ALLOW: 0x7FFF0000,
}
_OPERATORS: dict[Operator, int] = {
    Operator.NOT_EQUAL: 1,
    Operator.LESS_THAN: 2,
    Operator.LESS_EQUAL: 3,
    Operator.EQUAL: 4,
    Operator.GREATER_EQUAL: 5,
    Operator.GREATER_THAN: 6,
    Operator.MASKED_EQUAL: 7,
}
_NR_SCMP_ERROR = -1
_SCMP_ARCH_NATIVE = 0
_SCMP_FLTATR_CTL_NNP = 3

# x86_64 numbers of syscalls that some libseccomp releases do not know by name (Debian 12 has
# 2.5.4), so the filter can still allow them there on the native architecture.
NEWER_SYSCALLS_X86_64: dict[str, int] = {
    "uretprobe": 335,
    "statmount": 457,
    "listmount": 458,
    "lsm_get_self_attr": 459,
    "lsm_set_self_attr": 460,
    "lsm_list_modules": 461,
    "mseal": 462,
    "setxattrat": 463,
    "getxattrat": 464,
    "listxattrat": 465,
    "removexattrat": 466,
}


class _ArgCmp(ctypes.Structure):
    _fields_ = [
        ("arg", ctypes.c_uint),
        ("op", ctypes.c_int),
        ("datum_a", ctypes.c_uint64),
        ("datum_b", ctypes.c_uint64),
    ]


@functools.cache
def library() -> ctypes.CDLL:
    """Load libseccomp once and declare the functions used; raise SeccompError if it is absent."""
    try:
        lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
    except OSError as exc:
        raise SeccompError(
            f"loading libseccomp (libseccomp.so.2, Debian's libseccomp2): {exc}"
        ) from exc
    ctx = ctypes.c_void_p
    lib.seccomp_init.argtypes = [ctypes.c_uint32]
    lib.seccomp_init.restype = ctx
    lib.seccomp_release.argtypes = [ctx]
    lib.seccomp_release.restype = None
    lib.seccomp_attr_set.argtypes = [ctx, ctypes.c_int, ctypes.c_uint32]
    lib.seccomp_arch_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_arch_resolve_name.restype = ctypes.c_uint32
    lib.seccomp_arch_add.argtypes = [ctx, ctypes.c_uint32]
    lib.seccomp_arch_remove.argtypes = [ctx, ctypes.c_uint32]
    lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
    lib.seccomp_rule_add_array.argtypes = [
        ctx,
        ctypes.c_uint32,
        ctypes.c_int,
        ctypes.c_uint,
        ctypes.POINTER(_ArgCmp),
    ]
    lib.seccomp_merge.argtypes = [ctx, ctx]
    lib.seccomp_load.argtypes = [ctx]
    lib.seccomp_export_bpf.argtypes = [ctx, ctypes.c_int]
    return lib


def _check(result: int, what: str) -> None:
    """libseccomp returns -errno on failure."""
    if result < 0:
        raise SeccompError(f"{what}: {os.strerror(-result)}", errno=-result)


def _action(action: Action, errno: int | None) -> int:
    value = _ACTIONS[action]
    if action in (Action.ERRNO, Action.TRACE):
        value |= errno_of(errno) & 0xFFFF
    return value


class _Context:
    """One libseccomp filter context, released unless handed on."""

    def __init__(self, lib: ctypes.CDLL, default: int) -> None:
        self.lib = lib
        self.handle: int | None = lib.seccomp_init(default)
        if not self.handle:
            raise SeccompError("creating the seccomp filter: seccomp_init failed")
        _check(
            lib.seccomp_attr_set(self.handle, _SCMP_FLTATR_CTL_NNP, 0),
            "creating the seccomp filter: leaving no_new_privs alone",
        )

    def release(self) -> None:
        if self.handle:
            self.lib.seccomp_release(self.handle)
            self.handle = None


class Filter:
    """A built filter, ready to load into the calling process."""

    def __init__(self, context: _Context, profile: SeccompProfile) -> None:
        self._context = context
        self.profile = profile

    def load(self) -> None:
        """Load the filter: from now on this process and its children are confined."""
        _check(
            self._context.lib.seccomp_load(self._context.handle),
            f"loading seccomp profile {self.profile.name}",
        )

    def release(self) -> None:
        """Free libseccomp's memory (the loaded filter stays)."""
        self._context.release()

    def export(self) -> bytes:
        """The BPF program that :meth:`load` would install (``struct sock_filter`` array)."""
        fd = os.memfd_create("seccomp-bpf", os.MFD_CLOEXEC)
        try:
            _check(
                self._context.lib.seccomp_export_bpf(self._context.handle, fd),
                f"compiling seccomp profile {self.profile.name}",
            )
            size = os.lseek(fd, 0, os.SEEK_END)
            return os.pread(fd, size, 0)
        finally:
            os.close(fd)


@dataclass(frozen=True)
class Program:
    """A compiled filter: BPF instructions that any process can load, no library needed."""

    code: bytes
    name: str

    def load(self) -> None:
        """Load the program: from now on this process and its children are confined."""
        try:
            linux.set_seccomp_filter(self.code)
        except OSError as exc:
            raise SeccompError(
                f"loading seccomp profile {self.name}: {exc.strerror}", errno=exc.errno
            ) from exc


@functools.lru_cache(maxsize=32)
def compile_program(profile: SeccompProfile, caps: frozenset[str]) -> Program:
    """The program of ``profile`` for a process holding ``caps``, compiled once per pair."""
    built = build(profile, caps)
    try:
        return Program(built.export(), profile.name)
    finally:
        built.release()


def _add_rule(ctx: _Context, rule: Rule, default: int, native_only: bool) -> None:
    lib = ctx.lib
    action = _action(rule.action, rule.errno)
    if action == default:
        # libseccomp refuses a rule that repeats the default action; it changes nothing anyway.
        return
    # libseccomp cannot AND two comparisons of one argument: such conditions become one rule
    # each (so they OR), as runc does.
    indexes = [c.index for c in rule.conditions]
    if len(set(indexes)) == len(indexes):
        groups = [rule.conditions]
    else:
        groups = [(c,) for c in rule.conditions]
    for name in rule.names:
        number = lib.seccomp_syscall_resolve_name(name.encode())
        if number == _NR_SCMP_ERROR:
            known = NEWER_SYSCALLS_X86_64 if platform.machine() == "x86_64" else {}
            if not native_only or name not in known:
                continue  # unknown here: skipped, as runc does
            number = known[name]
        for group in groups:
            array = (_ArgCmp * max(len(group), 1))(
                *(_ArgCmp(c.index, _OPERATORS[c.op], c.value, c.value_two) for c in group)
            )
            _check(
                lib.seccomp_rule_add_array(ctx.handle, action, number, len(group), array),
                f"adding the seccomp rule for {name}",
            )


def build(profile: SeccompProfile, caps: Iterable[str]) -> Filter:
    """Build the filter of ``profile`` for a container that holds ``caps``.

    Two contexts are built and merged: the native architecture, where syscalls newer than
    libseccomp can still be named by number, and the profile's other ABIs of this CPU (x86 and
    x32 on x86_64), where libseccomp translates each name.
    """
    lib = library()
    rules = applicable(profile, caps)
    default = _action(profile.default, profile.default_errno)
    native = _Context(lib, default)
    try:
        for rule in rules:
            _add_rule(native, rule, default, native_only=True)
        if profile.arches:
            _add_other_arches(native, profile, rules, default)
    except BaseException:
        native.release()
        raise
    return Filter(native, profile)


def _add_other_arches(
    native: _Context, profile: SeccompProfile, rules: list[Rule], default: int
) -> None:
    lib = native.lib
    others = _Context(lib, default)
    try:
        for arch in profile.arches:
            token = lib.seccomp_arch_resolve_name(arch.encode())
            if token == 0:
                raise SeccompError(f"building seccomp profile {profile.name}: unknown arch {arch}")
            _check(lib.seccomp_arch_add(others.handle, token), f"adding architecture {arch}")
        _check(lib.seccomp_arch_remove(others.handle, _SCMP_ARCH_NATIVE), "removing native arch")
        for rule in rules:
            _add_rule(others, rule, default, native_only=False)
        _check(lib.seccomp_merge(native.handle, others.handle), "merging architectures")
        # Merged: libseccomp took the second context over.
        others.handle = None
    finally:
        others.release()
