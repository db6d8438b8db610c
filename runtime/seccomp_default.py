"""The default seccomp profile: equivalent in effect to Docker's default (moby
``profiles/seccomp``), written as pydock's own data.

Everything not allowed here fails with EPERM. Allowed for every container: the syscalls of the
groups below. Allowed with conditions: ``socket`` for every family but AF_ALG and AF_VSOCK;
``personality`` only for the personas a program may ask for (Linux, 32-bit Linux, and the
query); ``clone`` without namespace flags, and ``clone3`` answering ENOSYS so the C library
falls back to ``clone``, whose flags a filter can see. A capability a container holds unlocks
the syscalls that only make sense with it: CAP_SYS_ADMIN unlocks mount, unshare, setns, bpf,
the new mount API, clone with namespace flags and clone3, and more. So without CAP_SYS_ADMIN
userfaultfd, keyctl/add_key/request_key, bpf and unshare stay refused, as with Docker.
"""

from __future__ import annotations

import errno

from . import linux
from .seccomp_profile import Action, Condition, Operator, Rule, SeccompProfile, compat_arches

# fmt: off
# Files, directories, links, descriptors and the file systems they live on (ioctl included:
# what a device allows is up to the device, as in Docker).
FILES = frozenset({
    "access", "chdir", "chmod", "chown", "close", "close_range", "copy_file_range", "creat",
    "dup", "dup2", "dup3", "faccessat", "faccessat2", "fadvise64", "fallocate", "fchdir",
    "fchmod", "fchmodat", "fchmodat2", "fchown", "fchownat", "fcntl", "fdatasync", "flock",
    "fstat", "fstatfs", "fsync", "ftruncate", "futimesat", "getcwd", "getdents", "getdents64",
    "ioctl", "lchown", "link", "linkat", "listmount", "lseek", "lstat", "mkdir", "mkdirat",
    "mknod", "mknodat", "name_to_handle_at", "newfstatat", "open", "openat", "openat2", "pread64",
    "preadv", "preadv2", "pwrite64", "pwritev", "pwritev2", "read", "readahead", "readlink",
    "readlinkat", "readv", "rename", "renameat", "renameat2", "rmdir", "sendfile", "stat",
    "statfs", "statmount", "statx", "symlink", "symlinkat", "sync", "sync_file_range", "syncfs",
    "truncate", "unlink", "unlinkat", "utime", "utimensat", "utimes", "write", "writev",
})

# Extended attributes, on paths, descriptors and (kernel 6.13+) relative to a directory.
XATTRS = frozenset({
    "fgetxattr", "flistxattr", "fremovexattr", "fsetxattr", "getxattr", "getxattrat", "lgetxattr",
    "listxattr", "listxattrat", "llistxattr", "lremovexattr", "lsetxattr", "removexattr",
    "removexattrat", "setxattr", "setxattrat",
})

# Waiting for events: poll and friends, epoll, inotify, fanotify marks, AIO and io_uring.
EVENTS = frozenset({
    "epoll_create", "epoll_create1", "epoll_ctl", "epoll_pwait", "epoll_pwait2", "epoll_wait",
    "fanotify_mark", "inotify_add_watch", "inotify_init", "inotify_init1", "inotify_rm_watch",
    "io_cancel", "io_destroy", "io_getevents", "io_pgetevents", "io_setup", "io_submit", "poll",
    "ppoll", "pselect6", "select",
})

# The process's own memory: mappings, locks, protection keys, memfd.
MEMORY = frozenset({
    "brk", "cachestat", "madvise", "map_shadow_stack", "membarrier", "memfd_create",
    "memfd_secret", "mincore", "mlock", "mlock2", "mlockall", "mmap", "mprotect", "mremap",
    "mseal", "msync", "munlock", "munlockall", "munmap", "pkey_alloc", "pkey_free",
    "pkey_mprotect", "remap_file_pages",
})

# Futexes, pipes and splicing, eventfd, and System V and POSIX IPC (the container has its
# own IPC namespace).
IPC = frozenset({
    "eventfd", "eventfd2", "futex", "futex_requeue", "futex_wait", "futex_waitv", "futex_wake",
    "get_robust_list", "mq_getsetattr", "mq_notify", "mq_open", "mq_timedreceive", "mq_timedsend",
    "mq_unlink", "msgctl", "msgget", "msgrcv", "msgsnd", "pipe", "pipe2", "semctl", "semget",
    "semop", "semtimedop", "set_robust_list", "shmat", "shmctl", "shmdt", "shmget", "splice",
    "tee", "vmsplice",
})

# Sockets once created (socket(2) itself is a rule of its own below).
SOCKETS = frozenset({
    "accept", "accept4", "bind", "connect", "getpeername", "getsockname", "getsockopt", "listen",
    "recvfrom", "recvmmsg", "recvmsg", "sendmmsg", "sendmsg", "sendto", "setsockopt", "shutdown",
    "socketpair",
})

# Signals, to the process itself and to others it may signal anyway.
SIGNALS = frozenset({
    "alarm", "kill", "pause", "pidfd_send_signal", "restart_syscall", "rt_sigaction",
    "rt_sigpending", "rt_sigprocmask", "rt_sigqueueinfo", "rt_sigreturn", "rt_sigsuspend",
    "rt_sigtimedwait", "rt_tgsigqueueinfo", "sigaltstack", "signalfd", "signalfd4", "tgkill",
    "tkill",
})

# Clocks, sleeps and timers. adjtimex and clock_adjtime only read unless CAP_SYS_TIME is
# held, which the kernel checks.
TIME = frozenset({
    "adjtimex", "clock_adjtime", "clock_getres", "clock_gettime", "clock_nanosleep", "getitimer",
    "gettimeofday", "nanosleep", "setitimer", "time", "timer_create", "timer_delete",
    "timer_getoverrun", "timer_gettime", "timer_settime", "timerfd_create", "timerfd_gettime",
    "timerfd_settime", "times",
})

# User and group ids and capabilities; the kernel checks that a change is allowed.
IDENTITY = frozenset({
    "capget", "capset", "getegid", "geteuid", "getgid", "getgroups", "getresgid", "getresuid",
    "getuid", "setfsgid", "setfsuid", "setgid", "setgroups", "setregid", "setresgid", "setresuid",
    "setreuid", "setuid",
})

# Running programs and processes: exec, fork (clone is a rule of its own), wait, exit,
# thread set-up, limits, prctl, seccomp and landlock (which only restrict the caller).
PROCESSES = frozenset({
    "execve", "execveat", "exit", "exit_group", "fork", "get_thread_area", "getcpu", "getpgid",
    "getpgrp", "getpid", "getppid", "getrandom", "getrlimit", "getrusage", "getsid", "gettid",
    "landlock_add_rule", "landlock_create_ruleset", "landlock_restrict_self", "pidfd_open",
    "prctl", "prlimit64", "process_mrelease", "rseq", "seccomp", "set_thread_area",
    "set_tid_address", "setpgid", "setrlimit", "setsid", "sysinfo", "umask", "uname", "uretprobe",
    "vfork", "wait4", "waitid", "waitpid",
})

# Priorities, CPU affinity and I/O priority; the kernel checks raising them.
SCHEDULING = frozenset({
    "getpriority", "ioprio_get", "ioprio_set", "sched_get_priority_max", "sched_get_priority_min",
    "sched_getaffinity", "sched_getattr", "sched_getparam", "sched_getscheduler",
    "sched_rr_get_interval", "sched_setaffinity", "sched_setattr", "sched_setparam",
    "sched_setscheduler", "sched_yield", "setpriority",
})

# Entry points only 32-bit programs (x86, x32 and other 32-bit ABIs) have: the *32 id calls,
# the *64 file calls, the *_time64 calls, socketcall and ipc multiplexers. libseccomp places
# them in the architectures where they exist.
COMPAT_32BIT = frozenset({
    "_llseek", "_newselect", "chown32", "clock_adjtime64", "clock_getres_time64",
    "clock_gettime64", "clock_nanosleep_time64", "epoll_ctl_old", "epoll_wait_old",
    "fadvise64_64", "fchown32", "fcntl64", "fstat64", "fstatat64", "fstatfs64", "ftruncate64",
    "futex_time64", "getegid32", "geteuid32", "getgid32", "getgroups32", "getresgid32",
    "getresuid32", "getuid32", "io_pgetevents_time64", "ipc", "lchown32", "lstat64", "mmap2",
    "mq_timedreceive_time64", "mq_timedsend_time64", "ppoll_time64", "pselect6_time64", "recv",
    "recvmmsg_time64", "riscv_hwprobe", "rt_sigtimedwait_time64", "sched_rr_get_interval_time64",
    "semtimedop_time64", "send", "sendfile64", "setfsgid32", "setfsuid32", "setgid32",
    "setgroups32", "setregid32", "setresgid32", "setresuid32", "setreuid32", "setuid32",
    "sigprocmask", "sigreturn", "socketcall", "stat64", "statfs64", "timer_gettime64",
    "timer_settime64", "timerfd_gettime64", "timerfd_settime64", "truncate64", "ugetrlimit",
    "utimensat_time64",
})
# fmt: on

ALWAYS = FILES | XATTRS | EVENTS | MEMORY | IPC | SOCKETS | SIGNALS | TIME | IDENTITY
ALWAYS |= PROCESSES | SCHEDULING | COMPAT_32BIT

# Socket families refused: AF_ALG (38, the kernel's crypto API) and AF_VSOCK (40, the host's
# virtual machine sockets); every other family, and 39 between them, is allowed.
AF_ALG = 38
AF_VSOCK = 40

# personality(2) values a program may set: PER_LINUX, PER_LINUX32, UNAME26 on either of them,
# and 0xffffffff, which only asks for the current persona.
PERSONAS = (0x0, 0x8, 0x20000, 0x20008, 0xFFFFFFFF)

NAMESPACE_FLAGS = (
    linux.CLONE_NEWNS
    | linux.CLONE_NEWUTS
    | linux.CLONE_NEWIPC
    | linux.CLONE_NEWUSER
    | linux.CLONE_NEWPID
    | linux.CLONE_NEWNET
    | linux.CLONE_NEWCGROUP
)

# Syscalls a capability unlocks; the kernel still checks the capability itself.
BY_CAPABILITY: dict[str, tuple[str, ...]] = {
    "CAP_SYS_ADMIN": (
        "bpf", "clone", "clone3", "fanotify_init", "fsconfig", "fsmount", "fsopen", "fspick",
        "lookup_dcookie", "lsm_get_self_attr", "lsm_list_modules", "lsm_set_self_attr", "mount",
        "mount_setattr", "move_mount", "open_tree", "perf_event_open", "quotactl", "quotactl_fd",
        "setdomainname", "sethostname", "setns", "syslog", "umount", "umount2", "unshare",
    ),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_BOOT": ("reboot",),
    "CAP_SYS_CHROOT": ("chroot",),
    "CAP_SYS_MODULE": ("delete_module", "init_module", "finit_module"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_PTRACE": (
        "kcmp", "pidfd_getfd", "process_madvise", "process_vm_readv", "process_vm_writev",
        "ptrace",
    ),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64"),
    "CAP_SYS_TTY_CONFIG": ("vhangup",),
    "CAP_SYS_NICE": ("get_mempolicy", "mbind", "set_mempolicy", "set_mempolicy_home_node"),
    "CAP_SYSLOG": ("syslog",),
    "CAP_BPF": ("bpf",),
    "CAP_PERFMON": ("perf_event_open",),
}  # fmt: skip

# Syscalls that only exist, or only matter, on some architectures (Go names, as profiles match).
BY_ARCH: tuple[tuple[frozenset[str], tuple[str, ...]], ...] = (
    (frozenset({"amd64", "x32"}), ("arch_prctl",)),
    (frozenset({"amd64", "x32", "x86"}), ("modify_ldt",)),
    (frozenset({"arm", "arm64"}), (
        "arm_fadvise64_64", "arm_sync_file_range", "sync_file_range2", "breakpoint",
        "cacheflush", "set_tls",
    )),
    (frozenset({"ppc64le"}), ("sync_file_range2", "swapcontext")),
    (frozenset({"s390", "s390x"}), (
        "s390_pci_mmio_read", "s390_pci_mmio_write", "s390_runtime_instr",
    )),
    (frozenset({"riscv64"}), ("riscv_flush_icache",)),
)  # fmt: skip


def _rules() -> tuple[Rule, ...]:
    rules = [Rule(tuple(sorted(ALWAYS)))]
    # Since Linux 4.8 ptrace cannot be used to get around seccomp, so Docker allows it (and
    # process_vm_*) for everyone; the kernel's own ptrace checks still apply.
    rules.append(Rule(("process_vm_readv", "process_vm_writev", "ptrace"), min_kernel=(4, 8)))
    socket_conditions = (
        Condition(0, AF_ALG, Operator.LESS_THAN),
        Condition(0, AF_ALG + 1, Operator.EQUAL),
        Condition(0, AF_VSOCK, Operator.GREATER_THAN),
    )
    rules += [Rule(("socket",), conditions=(c,)) for c in socket_conditions]
    rules += [
        Rule(("personality",), conditions=(Condition(0, persona, Operator.EQUAL),))
        for persona in PERSONAS
    ]
    for arches, names in BY_ARCH:
        rules.append(Rule(names, arches=arches))
    for cap, names in BY_CAPABILITY.items():
        rules.append(Rule(names, needs_caps=frozenset({cap})))
    no_namespaces = Condition(0, NAMESPACE_FLAGS, Operator.MASKED_EQUAL, 0)
    # s390 passes clone's flags as the second argument.
    s390_no_namespaces = Condition(1, NAMESPACE_FLAGS, Operator.MASKED_EQUAL, 0)
    s390 = frozenset({"s390", "s390x"})
    admin = frozenset({"CAP_SYS_ADMIN"})
    rules += [
        Rule(("clone",), conditions=(no_namespaces,), unless_caps=admin, unless_arches=s390),
        Rule(("clone",), conditions=(s390_no_namespaces,), unless_caps=admin, arches=s390),
        # clone3 passes its flags in memory, out of a filter's sight: ENOSYS makes the C
        # library fall back to clone.
        Rule(("clone3",), action=Action.ERRNO, errno=errno.ENOSYS, unless_caps=admin),
    ]
    return tuple(rules)


DEFAULT_PROFILE = SeccompProfile(
    default=Action.ERRNO,
    default_errno=errno.EPERM,
    rules=_rules(),
    arches=compat_arches(),
    name="default",
)
