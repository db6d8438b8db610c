"""What ``run``/``create`` were asked for, checked, and merged with the image's own config.

:class:`RunOptions` holds the command line as typed; :func:`build_config` checks it, resolves it
against the image (entrypoint, command, environment, working directory, user, as Docker does) and
returns the :class:`ContainerConfig` the store keeps as JSON.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path, PurePosixPath

import runtime
from pydock.containers.errors import ContainerConfigError
from pydock.network import etcfiles, ports

# Docker's smallest --memory.
MIN_MEMORY = 6 * 1024 * 1024
_NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]*")
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*([bkmgtp]?)b?", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


@dataclass(frozen=True)
class Volume:
    """``-v SRC:DST[:ro]``: a host path bound into the container."""

    source: str
    destination: str
    readonly: bool = False


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
    """``-v SRC:DST[:ro|rw]``; SRC must be an existing absolute host path."""
    parts = text.split(":")
    mode = ""
    if len(parts) == 3:
        mode = parts.pop()
    if len(parts) != 2 or mode not in ("", "ro", "rw"):
        raise ContainerConfigError(f"parsing volume {text!r}: expected SRC:DST[:ro]")
    source, destination = parts
    if not source.startswith("/"):
        raise ContainerConfigError(
            f"parsing volume {text!r}: {source!r} is not an absolute path"
            " (named volumes are not supported)"
        )
    if not destination.startswith("/") or PurePosixPath(destination) == PurePosixPath("/"):
        raise ContainerConfigError(
            f"parsing volume {text!r}: the destination must be an absolute path other than /"
        )
    if not os.path.exists(source):
        raise ContainerConfigError(f"checking volume {text!r}: bind source path does not exist")
    return Volume(str(Path(source)), destination, mode == "ro")


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
    security = parse_security_options(options.security_opt)
    return ContainerConfig(
        image_name=options.image,
        entrypoint=entrypoint,
        cmd=cmd,
        env=merge_env(image.env, options.env, os.environ if host_env is None else host_env),
        workdir=workdir,
        user=options.user if options.user is not None else image.user,
        hostname=options.hostname or "",
        network=check_network_name(options.network),
        add_hosts=tuple(_add_host(text) for text in options.add_hosts),
        dns=tuple(etcfiles.check_dns(text) for text in options.dns),
        dns_search=tuple(etcfiles.check_word(t, "--dns-search") for t in options.dns_search),
        dns_options=tuple(etcfiles.check_word(t, "--dns-option") for t in options.dns_options),
        network_aliases=tuple(check_name(alias) for alias in options.network_aliases),
        publish=tuple(ports.parse_publish(text).text() for text in options.publish),
        publish_all=options.publish_all,
        exposed=tuple(image.exposed),
        read_only=options.read_only,
        volumes=tuple(parse_volume(text) for text in options.volumes),
        memory=parse_memory(options.memory) if options.memory else None,
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
    )
