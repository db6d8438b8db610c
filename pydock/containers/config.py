"""What ``run``/``create`` were asked for, checked, and merged with the image's own config.

:class:`RunOptions` holds the command line as typed; :func:`build_config` checks it, resolves it
against the image (entrypoint, command, environment, working directory, user, as Docker does) and
returns the :class:`ContainerConfig` the store keeps as JSON.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path, PurePosixPath

import runtime
from pydock.containers import health, hostopts
from pydock.containers.errors import ContainerConfigError
from pydock.containers.health import Healthcheck, HealthFlags
from pydock.network import etcfiles, ports

# Docker's smallest --memory.
MIN_MEMORY = 6 * 1024 * 1024
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_VOLUME_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class Volume:
    """A mount of the container: ``-v``, ``--mount`` or ``--tmpfs``.

    ``kind`` is Docker's mount type: ``bind`` (``source`` a host path), ``volume`` (``name``
    a named volume, empty until an anonymous one is made; ``source`` its directory once known)
    or ``tmpfs`` (``options`` its mount options).
    """

    source: str
    destination: str
    readonly: bool = False
    kind: str = "bind"
    name: str = ""
    options: str = ""


@dataclass(frozen=True)
class RunOptions:
    """The options of ``run`` and ``create`` as the command line gave them."""

    image: str
    command: tuple[str, ...] = ()
    name: str | None = None
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    hostname: str | None = None
    network: str = "none"
    add_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    network_aliases: tuple[str, ...] = ()
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    read_only: bool = False
    volumes: tuple[str, ...] = ()
    memory: str | None = None
    cpus: str | None = None
    pids_limit: int | None = None
    init: bool = False
    entrypoint: str | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    security_opt: tuple[str, ...] = ()
    privileged: bool = False
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    stop_signal: str | None = None
    stop_timeout: int | None = None
    restart: str = "no"
    labels: tuple[str, ...] = ()
    env_files: tuple[str, ...] = ()
    mounts: tuple[str, ...] = ()
    tmpfs: tuple[str, ...] = ()
    expose: tuple[str, ...] = ()
    label_files: tuple[str, ...] = ()
    ulimits: tuple[str, ...] = ()
    shm_size: str | None = None
    sysctls: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    domainname: str | None = None
    cpu_shares: int | None = None
    cpuset_cpus: str | None = None
    memory_swap: str | None = None
    memory_reservation: str | None = None
    pid_mode: str | None = None
    ipc_mode: str | None = None
    uts_mode: str | None = None
    devices: tuple[str, ...] = ()
    oom_score_adj: int | None = None
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_mems: str | None = None
    cgroupns_mode: str | None = None
    volumes_from: tuple[str, ...] = ()
    attach: tuple[str, ...] = ()
    detach: bool = False
    health: HealthFlags = field(default_factory=HealthFlags)


@dataclass(frozen=True)
class ContainerConfig:
    """A container's settings, as kept in the store and used at every start."""

    image_name: str
    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = "/"
    user: str = ""
    hostname: str = ""
    network: str = "none"
    # ``--add-host`` as "NAME:IP" lines, ``--dns`` addresses.
    add_hosts: tuple[str, ...] = ()
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    # ``--network-alias``; ``network connect`` adds "NAME" or "NAME:ALIAS,ALIAS" entries.
    network_aliases: tuple[str, ...] = ()
    more_networks: tuple[str, ...] = ()
    # ``-p`` as IP:HOST:CONTAINER/PROTO (HOST empty: a free port); ``-P``; the image's EXPOSE.
    publish: tuple[str, ...] = ()
    publish_all: bool = False
    exposed: tuple[str, ...] = ()
    read_only: bool = False
    volumes: tuple[Volume, ...] = ()
    memory: int | None = None
    cpus: float | None = None
    pids_limit: int | None = None
    init: bool = False
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    no_new_privileges: bool = False
    # "" the default profile, "unconfined", or a profile's JSON text (as Docker keeps it).
    seccomp: str = ""
    privileged: bool = False
    tty: bool = False
    interactive: bool = False
    auto_remove: bool = False
    stop_signal: str = "SIGTERM"
    # Seconds ``stop`` waits before SIGKILL when not given -t (Docker's default: 10).
    stop_timeout: int | None = None
    # Restart policy: "no", "always", "unless-stopped" or "on-failure[:N]".
    restart: str = "no"
    # ``KEY=VALUE`` entries, in the order given (``--label-file``, then ``--label``).
    labels: tuple[str, ...] = ()
    # ``--ulimit`` as ``NAME=SOFT:HARD`` (-1: unlimited).
    ulimits: tuple[str, ...] = ()
    # ``--shm-size`` in bytes (None: Docker's 64 MiB).
    shm_size: int | None = None
    # ``--sysctl`` as ``NAME=VALUE``.
    sysctls: tuple[str, ...] = ()
    # ``--group-add``: group names (of the image's /etc/group) or numbers.
    group_add: tuple[str, ...] = ()
    domainname: str = ""
    cpu_shares: int | None = None
    cpuset_cpus: str = ""
    # ``--memory-swap``: memory plus swap in bytes, -1 for unlimited swap.
    memory_swap: int | None = None
    memory_reservation: int | None = None
    # ``--pid``, ``--ipc``, ``--uts``: "host" or "" (the container's own).
    pid_mode: str = ""
    ipc_mode: str = ""
    uts_mode: str = ""
    # ``--device`` as ``HOST:CONTAINER:PERMS``.
    devices: tuple[str, ...] = ()
    oom_score_adj: int | None = None
    # ``--cpu-period``, ``--cpu-quota`` in microseconds (quota -1: none).
    cpu_period: int | None = None
    cpu_quota: int | None = None
    cpuset_mems: str = ""
    # ``--cgroupns``: "private" (a cgroup namespace of its own) or "host".
    cgroupns_mode: str = "private"
    # ``--volumes-from`` as given (CONTAINER[:ro|rw]); its mounts are in ``volumes``.
    volumes_from: tuple[str, ...] = ()
    # The streams a foreground run attaches (``-a``; none given: stdout, stderr and, with
    # ``-i``, stdin); none with ``-d``.
    attach: tuple[str, ...] = ("stdout", "stderr")
    # Docker's ``Config.Healthcheck`` as JSON text ("": none; see pydock.containers.health).
    healthcheck: str = ""

    @property
    def label_map(self) -> dict[str, str]:
        """``Config.Labels``: the labels as a mapping (a later one wins)."""
        return dict(item.partition("=")[::2] for item in self.labels)

    @property
    def args(self) -> tuple[str, ...]:
        """The command line the container executes: entrypoint, then command."""
        return self.entrypoint + self.cmd

    def to_json(self) -> str:
        """The JSON text the store keeps."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> ContainerConfig:
        """Read back what :meth:`to_json` wrote (unknown keys are ignored)."""
        document = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {key: value for key, value in document.items() if key in known}
        for key in (
            "entrypoint",
            "cmd",
            "env",
            "cap_add",
            "cap_drop",
            "add_hosts",
            "dns",
            "dns_search",
            "dns_options",
            "network_aliases",
            "more_networks",
            "publish",
            "exposed",
            "labels",
            "ulimits",
            "sysctls",
            "group_add",
            "devices",
            "volumes_from",
            "attach",
        ):
            values[key] = tuple(values.get(key, ()))
        values["volumes"] = tuple(Volume(**item) for item in values.get("volumes", ()))
        return cls(**values)


@dataclass(frozen=True)
class ImageDefaults:
    """The parts of an image's config that a container starts from."""

    entrypoint: tuple[str, ...] = ()
    cmd: tuple[str, ...] = ()
    env: tuple[str, ...] = ()
    workdir: str = ""
    user: str = ""
    exposed: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None

    @classmethod
    def from_config(cls, config: Mapping[str, object]) -> ImageDefaults:
        """Read ``Entrypoint``, ``Cmd``, ``Env``, ``WorkingDir`` and ``User``."""
        return cls(
            entrypoint=_strings(config.get("Entrypoint")),
            cmd=_strings(config.get("Cmd")),
            env=_strings(config.get("Env")),
            workdir=str(config.get("WorkingDir") or ""),
            user=str(config.get("User") or ""),
            exposed=tuple(ports.exposed_ports(dict(config))),
            healthcheck=health.from_image(config),
        )


def _strings(value: object) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(item) for item in value)
    return ()


def parse_memory(text: str) -> int:
    """``--memory``: bytes, or a number with a unit (``512m``, ``1g``, ``1.5GB``)."""
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ContainerConfigError(f"parsing --memory {text!r}: not a size like 512m or 1g")
    value = int(float(match.group(1)) * _UNITS[match.group(2).lower()])
    if value < MIN_MEMORY:
        raise ContainerConfigError(
            f"parsing --memory {text!r}: the minimum memory limit allowed is 6MB"
        )
    return value


def parse_cpus(text: str, available: int | None = None) -> float:
    """``--cpus``: a positive number of CPUs, at most those of this host."""
    available = available or os.cpu_count() or 1
    try:
        value = float(text)
    except ValueError as exc:
        raise ContainerConfigError(f"parsing --cpus {text!r}: not a number") from exc
    if not 0.01 <= value <= available:
        raise ContainerConfigError(
            f"parsing --cpus {text!r}: the range of CPUs is from 0.01 to {available:.2f},"
            f" as there are only {available} CPUs available"
        )
    return value


def parse_volume(text: str) -> Volume:
    """``-v SRC:DST[:ro|rw]`` (SRC an existing absolute host path, or a volume name), or
    ``-v DST`` for an anonymous volume."""
    parts = text.split(":")
    mode = ""
    if len(parts) == 3 or (len(parts) == 2 and parts[1] in ("ro", "rw")):
        mode = parts.pop()
    if len(parts) == 1:
        return Volume("", _destination(parts[0], text), mode == "ro", kind="volume")
    if len(parts) != 2 or mode not in ("", "ro", "rw"):
        raise ContainerConfigError(f"parsing volume {text!r}: expected SRC:DST[:ro]")
    source, destination = parts
    destination = _destination(destination, text)
    if not source.startswith("/"):
        return Volume("", destination, mode == "ro", kind="volume", name=_volume_name(source))
    if not os.path.exists(source):
        raise ContainerConfigError(f"checking volume {text!r}: bind source path does not exist")
    return Volume(str(Path(source)), destination, mode == "ro")


def _destination(destination: str, text: str) -> str:
    if not destination.startswith("/") or PurePosixPath(destination) == PurePosixPath("/"):
        raise ContainerConfigError(
            f"parsing volume {text!r}: the destination must be an absolute path other than /"
        )
    return str(PurePosixPath(destination))


def _volume_name(name: str) -> str:
    if not _VOLUME_NAME.fullmatch(name):
        raise ContainerConfigError(
            f"parsing volume {name!r}: a volume name is [a-zA-Z0-9][a-zA-Z0-9_.-]+"
            " (a host path must be absolute)"
        )
    return name


def check_volume_name(name: str) -> str:
    """A volume name as Docker allows: ``[a-zA-Z0-9][a-zA-Z0-9_.-]+``."""
    return _volume_name(name)


_MOUNT_KEYS = {"src": "source", "dst": "target", "destination": "target", "ro": "readonly"}
_TMPFS_FLAGS = {"ro", "rw", "exec", "noexec", "suid", "nosuid", "dev", "nodev"}
_TMPFS_DATA = re.compile(r"(size|mode|uid|gid|nr_inodes|nr_blocks)=[0-9a-zA-Z%]+")


def parse_mount(text: str) -> Volume:
    """``--mount type=bind|volume|tmpfs,source=...,target=...[,readonly][,tmpfs-size=...]``."""
    fields: dict[str, str] = {}
    for item in text.split(","):
        key, equals, value = item.partition("=")
        key = _MOUNT_KEYS.get(key.strip(), key.strip())
        if key == "readonly" and not equals:
            value = "true"
        fields[key] = value
    kind = fields.pop("type", "volume")
    target = fields.pop("target", "")
    source = fields.pop("source", "")
    readonly_text = fields.pop("readonly", "false").lower()
    if readonly_text not in ("true", "false", "1", "0"):
        raise ContainerConfigError(f"parsing --mount {text!r}: readonly is true or false")
    readonly = readonly_text in ("true", "1")
    if not target:
        raise ContainerConfigError(f"parsing --mount {text!r}: target is required")
    destination = _destination(target, text)
    options = []
    if kind == "tmpfs":
        if source:
            raise ContainerConfigError(f"parsing --mount {text!r}: a tmpfs has no source")
        if "tmpfs-size" in fields:
            options.append("size=" + str(_tmpfs_size(fields.pop("tmpfs-size"), text)))
        if "tmpfs-mode" in fields:
            options.append(f"mode={fields.pop('tmpfs-mode')}")
    fields.pop("bind-propagation", None)
    if fields:
        raise ContainerConfigError(
            f"parsing --mount {text!r}: unsupported field {sorted(fields)[0]!r}"
        )
    if kind == "bind":
        if not source.startswith("/"):
            raise ContainerConfigError(f"parsing --mount {text!r}: source must be an absolute path")
        if not os.path.exists(source):
            raise ContainerConfigError(
                f"checking --mount {text!r}: bind source path does not exist: {source}"
            )
        return Volume(str(Path(source)), destination, readonly)
    if kind == "volume":
        name = _volume_name(source) if source else ""
        return Volume("", destination, readonly, kind="volume", name=name)
    if kind == "tmpfs":
        flags = ["ro"] if readonly else []
        return Volume("", destination, readonly, kind="tmpfs", options=",".join(flags + options))
    raise ContainerConfigError(
        f"parsing --mount {text!r}: type must be bind, volume or tmpfs, not {kind!r}"
    )


def _tmpfs_size(text: str, whole: str) -> int:
    match = _SIZE.fullmatch(text.strip())
    if match is None:
        raise ContainerConfigError(f"parsing --mount {whole!r}: bad tmpfs-size {text!r}")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def parse_tmpfs(text: str) -> Volume:
    """``--tmpfs /path[:opt,...]``: ro, noexec, size=64m, mode=1777, uid=, gid=, ..."""
    destination, _, options = text.partition(":")
    destination = _destination(destination, text)
    for option in filter(None, options.split(",")):
        if option not in _TMPFS_FLAGS and not _TMPFS_DATA.fullmatch(option):
            raise ContainerConfigError(f"parsing --tmpfs {text!r}: unknown option {option!r}")
    readonly = "ro" in options.split(",")
    return Volume("", destination, readonly, kind="tmpfs", options=options)


def parse_mounts(options: RunOptions) -> tuple[Volume, ...]:
    """Every mount of ``-v``, ``--mount`` and ``--tmpfs``; two on one destination are refused."""
    found = (
        [parse_volume(text) for text in options.volumes]
        + [parse_mount(text) for text in options.mounts]
        + [parse_tmpfs(text) for text in options.tmpfs]
    )
    seen: set[str] = set()
    for volume in found:
        if volume.destination in seen:
            raise ContainerConfigError(
                f"checking mounts: duplicate mount point: {volume.destination}"
            )
        seen.add(volume.destination)
    return tuple(found)


@dataclass(frozen=True)
class SecurityOptions:
    """What ``--security-opt`` asked for."""

    no_new_privileges: bool = False
    seccomp: str = ""


def parse_security_options(options: Sequence[str]) -> SecurityOptions:
    """``--security-opt``: ``no-new-privileges[=|:true|false]``, ``seccomp=unconfined|FILE``.

    As Docker's CLI, a profile file is read now and kept as compact JSON, so the container does
    not depend on the file later.
    """
    wanted = False
    seccomp = ""
    for option in options:
        key, equals, value = option.partition("=")
        if not equals and ":" in option:
            key, _, value = option.partition(":")
        if key == "no-new-privileges" and value.lower() in ("", "true", "false"):
            wanted = value.lower() != "false"
        elif key == "seccomp" and value:
            seccomp = value if value == "unconfined" else _read_profile(value)
        else:
            raise ContainerConfigError(
                f"parsing --security-opt {option!r}: only no-new-privileges and"
                " seccomp=unconfined|PROFILE.json are supported"
            )
    return SecurityOptions(wanted, seccomp)


def parse_security_opts(options: Sequence[str]) -> bool:
    """``--security-opt`` checked; returns whether no-new-privileges was asked for."""
    return parse_security_options(options).no_new_privileges


def _read_profile(path: str) -> str:
    """The compact JSON text of the seccomp profile in ``path``, checked."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ContainerConfigError(f"reading seccomp profile {path}: {why.lower()}") from exc
    try:
        runtime.parse_seccomp_profile(text, source=path)
    except runtime.InvalidSpecError as exc:
        raise ContainerConfigError(str(exc)) from exc
    return json.dumps(json.loads(text), separators=(",", ":"))


def capabilities_of(config: ContainerConfig) -> frozenset[str]:
    """The container's capabilities: ``--cap-add/--cap-drop``, or with ``--privileged`` every
    capability this process may hand on (a host may withhold some, CAP_MAC_OVERRIDE say)."""
    if config.privileged:
        return runtime.bounding_capabilities()
    return runtime.resolve_capabilities(config.cap_add, config.cap_drop)


def seccomp_of(config: ContainerConfig) -> runtime.SeccompProfile | None:
    """The container's seccomp profile; None for ``--privileged`` and ``seccomp=unconfined``."""
    if config.privileged or config.seccomp == "unconfined":
        return None
    if not config.seccomp:
        return runtime.DEFAULT_SECCOMP_PROFILE
    return runtime.parse_seccomp_profile(config.seccomp, source="given with --security-opt")


def security_opt_view(config: ContainerConfig) -> list[str] | None:
    """``HostConfig.SecurityOpt`` as Docker shows it."""
    shown = ["no-new-privileges"] if config.no_new_privileges else []
    if config.seccomp:
        shown.append(f"seccomp={config.seccomp}")
    return shown or None


def _add_host(text: str) -> str:
    entry = etcfiles.parse_add_host(text)
    return f"{entry.names[0]}:{entry.address}"


def check_network_name(name: str) -> str:
    """``--network``: none, host, bridge or a network's name (checked to exist at start)."""
    if name.startswith("container:"):
        raise ContainerConfigError(
            f"checking --network {name!r}: sharing another container's network is not supported"
        )
    if not _NAME.fullmatch(name):
        raise ContainerConfigError(f"checking --network {name!r}: not a network name")
    return name


def check_name(name: str) -> str:
    """A container name as Docker allows: ``[a-zA-Z0-9][a-zA-Z0-9_.-]*``."""
    if not _NAME.fullmatch(name):
        raise ContainerConfigError(
            f"checking name {name!r}: only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name


def merge_env(
    base: Sequence[str], overrides: Sequence[str], host: Mapping[str, str]
) -> tuple[str, ...]:
    """The image's environment with ``-e`` entries on top; ``-e NAME`` copies the host's value."""
    merged: dict[str, str] = {}
    for item in base:
        key, _, value = item.partition("=")
        merged[key] = value
    for item in overrides:
        key, equals, value = item.partition("=")
        if not key:
            raise ContainerConfigError(f"parsing -e {item!r}: the variable name is empty")
        if equals:
            merged[key] = value
        elif key in host:
            merged[key] = host[key]
    return tuple(f"{key}={value}" for key, value in merged.items())


def parse_labels(items: Sequence[str]) -> tuple[str, ...]:
    """``--label KEY=VALUE`` (or ``KEY``, an empty value), checked."""
    labels = []
    for item in items:
        key, _, value = item.partition("=")
        if not key.strip():
            raise ContainerConfigError(f"parsing --label {item!r}: the label name is empty")
        labels.append(f"{key}={value}")
    return tuple(labels)


def read_env_files(paths: Sequence[str]) -> tuple[str, ...]:
    """``--env-file``: ``NAME=VALUE`` or ``NAME`` lines; blank lines and ``#`` comments skipped.

    As Docker, values are taken as written: no quotes are removed and nothing is expanded.
    """
    entries: list[str] = []
    for path in paths:
        try:
            text = Path(path).read_text()
        except (OSError, UnicodeDecodeError) as exc:
            why = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise ContainerConfigError(f"reading env file {path}: {why.lower()}") from exc
        for number, line in enumerate(text.splitlines(), start=1):
            stripped = line.lstrip()
            if not stripped or stripped.startswith("#"):
                continue
            name = stripped.partition("=")[0]
            if not name or any(char.isspace() for char in name):
                raise ContainerConfigError(
                    f"reading env file {path}: line {number}: variable {name!r} contains"
                    " whitespaces"
                )
            entries.append(stripped)
    return tuple(entries)


def build_config(
    options: RunOptions, image: ImageDefaults, *, host_env: Mapping[str, str] | None = None
) -> ContainerConfig:
    """Check ``options`` and resolve them against the image's defaults."""
    if options.entrypoint is not None:
        # As Docker: a new entrypoint drops the image's command too.
        entrypoint: tuple[str, ...] = (options.entrypoint,) if options.entrypoint else ()
        cmd = options.command
    else:
        entrypoint = image.entrypoint
        cmd = options.command or image.cmd
    if not entrypoint + cmd:
        raise ContainerConfigError(
            f"creating a container from {options.image}: no command specified"
        )
    workdir = options.workdir or image.workdir or "/"
    if not workdir.startswith("/"):
        raise ContainerConfigError(
            f"checking -w {workdir!r}: the working directory must be absolute"
        )
    if options.hostname is not None and not 0 < len(options.hostname) <= 64:
        raise ContainerConfigError(f"checking --hostname {options.hostname!r}: 1 to 64 characters")
    pids = options.pids_limit if options.pids_limit and options.pids_limit > 0 else None
    memory = parse_memory(options.memory) if options.memory else None
    network = check_network_name(options.network)
    modes = {
        flag: hostopts.parse_namespace_mode(flag, text)
        for flag, text in (
            ("pid", options.pid_mode),
            ("ipc", options.ipc_mode),
            ("uts", options.uts_mode),
        )
    }
    if modes["uts"] == "host" and options.hostname:
        raise ContainerConfigError(
            f"checking --hostname {options.hostname!r}: conflicting options: hostname and the"
            " UTS mode"
        )
    domainname = options.domainname or ""
    if len(domainname) > 64:
        raise ContainerConfigError(f"checking --domainname {domainname!r}: 1 to 64 characters")
    if domainname and modes["uts"] == "host":
        raise ContainerConfigError(
            f"checking --domainname {domainname!r}: conflicting options: domainname and the"
            " UTS mode"
        )
    for group in options.group_add:
        if not group or ":" in group or "\n" in group:
            raise ContainerConfigError(f"checking --group-add {group!r}: not a group name or id")
    security = parse_security_options(options.security_opt)
    check = health.resolve(options.health, image.healthcheck)
    cpu_period, cpu_quota = hostopts.parse_cfs(
        options.cpu_period, options.cpu_quota, cpus=bool(options.cpus)
    )
    restart = parse_restart_policy(options.restart)
    if restart.name != "no" and options.auto_remove:
        raise ContainerConfigError(
            f"checking --restart {options.restart}: it conflicts with --rm (as in Docker)"
        )
    return ContainerConfig(
        image_name=options.image,
        entrypoint=entrypoint,
        cmd=cmd,
        env=merge_env(
            image.env,
            read_env_files(options.env_files) + options.env,
            os.environ if host_env is None else host_env,
        ),
        workdir=workdir,
        user=options.user if options.user is not None else image.user,
        hostname=options.hostname or "",
        network=network,
        add_hosts=tuple(_add_host(text) for text in options.add_hosts),
        dns=tuple(etcfiles.check_dns(text) for text in options.dns),
        dns_search=tuple(etcfiles.check_word(t, "--dns-search") for t in options.dns_search),
        dns_options=tuple(etcfiles.check_word(t, "--dns-option") for t in options.dns_options),
        network_aliases=tuple(check_name(alias) for alias in options.network_aliases),
        publish=tuple(ports.parse_publish(text).text() for text in options.publish),
        publish_all=options.publish_all,
        exposed=tuple(sorted({*image.exposed, *hostopts.parse_expose(options.expose)})),
        read_only=options.read_only,
        volumes=parse_mounts(options),
        memory=memory,
        cpus=parse_cpus(options.cpus) if options.cpus else None,
        pids_limit=pids,
        init=options.init,
        cap_add=options.cap_add,
        cap_drop=options.cap_drop,
        no_new_privileges=security.no_new_privileges,
        seccomp=security.seccomp,
        privileged=options.privileged,
        tty=options.tty,
        interactive=options.interactive,
        auto_remove=options.auto_remove,
        stop_signal=signal_name(options.stop_signal) if options.stop_signal else "SIGTERM",
        stop_timeout=options.stop_timeout,
        restart=str(restart),
        labels=parse_labels(hostopts.read_label_files(options.label_files) + options.labels),
        ulimits=hostopts.ulimits_of(options.ulimits),
        shm_size=hostopts.parse_shm_size(options.shm_size) if options.shm_size else None,
        sysctls=hostopts.parse_sysctls(options.sysctls, network=network, ipc_mode=modes["ipc"]),
        group_add=options.group_add,
        domainname=domainname,
        cpu_shares=hostopts.parse_cpu_shares(options.cpu_shares),
        cpuset_cpus=hostopts.parse_cpuset(options.cpuset_cpus) if options.cpuset_cpus else "",
        memory_swap=hostopts.parse_memory_swap(options.memory_swap, memory),
        memory_reservation=hostopts.parse_memory_reservation(options.memory_reservation, memory),
        pid_mode=modes["pid"],
        ipc_mode=modes["ipc"],
        uts_mode=modes["uts"],
        devices=tuple(hostopts.parse_device(text) for text in options.devices),
        oom_score_adj=hostopts.parse_oom_score_adj(options.oom_score_adj),
        cpu_period=cpu_period,
        cpu_quota=cpu_quota,
        cpuset_mems=hostopts.parse_cpuset_mems(options.cpuset_mems) if options.cpuset_mems else "",
        cgroupns_mode=hostopts.parse_cgroupns(options.cgroupns_mode),
        volumes_from=tuple(
            ":".join(filter(None, hostopts.parse_volumes_from(text)))
            for text in options.volumes_from
        ),
        attach=_attached_streams(options),
        healthcheck=check.to_text() if check is not None else "",
    )


def _attached_streams(options: RunOptions) -> tuple[str, ...]:
    """As Docker's CLI: ``-a``'s streams, else stdout and stderr; stdin too with ``-i``."""
    streams = hostopts.parse_attach(options.attach, detach=options.detach)
    if options.detach:
        return ()
    if not streams:
        streams = ("stdout", "stderr")
    if options.interactive and "stdin" not in streams:
        streams = ("stdin", *streams)
    return streams


@dataclass(frozen=True)
class RestartPolicy:
    """``--restart``: when the monitor's exit command starts the container again."""

    name: str = "no"
    maximum: int = 0  # on-failure: restarts at most (0: no bound)

    def __str__(self) -> str:
        return f"{self.name}:{self.maximum}" if self.maximum else self.name

    def wants_restart(self, status: int, restarts: int, *, stopped: bool) -> bool:
        """Whether a run that ended with ``status`` after ``restarts`` restarts goes again."""
        if stopped or self.name == "no":
            return False
        if self.name == "on-failure":
            return status != 0 and (self.maximum == 0 or restarts < self.maximum)
        return True


RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")


def parse_restart_policy(text: str) -> RestartPolicy:
    """``no``, ``always``, ``unless-stopped`` or ``on-failure[:N]``."""
    name, colon, count = text.partition(":")
    if name not in RESTART_POLICIES or (colon and name != "on-failure"):
        raise ContainerConfigError(
            f"checking --restart {text!r}: expected no, always, unless-stopped or on-failure[:N]"
        )
    if colon and not (count.isdigit() and int(count) >= 0):
        raise ContainerConfigError(f"checking --restart {text!r}: N must be a whole number")
    return RestartPolicy(name, int(count) if colon else 0)


def signal_name(text: str) -> str:
    """A signal by number or name (``KILL``, ``SIGTERM``, ``9``) as its ``SIG...`` name."""
    import signal

    if text.isdigit():
        number = int(text)
        if 0 < number < signal.NSIG:
            with contextlib.suppress(ValueError):
                return signal.Signals(number).name
    else:
        name = text.upper()
        name = name if name.startswith("SIG") else f"SIG{name}"
        if isinstance(getattr(signal.Signals, name, None), signal.Signals):
            return name
    raise ContainerConfigError(f"parsing signal {text!r}: no such signal")
