"""Docker's documents, to and from pydock's: create bodies, list entries, inspect additions.

Everything here is synchronous and runs with an engine in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import shlex
import signal
from typing import TYPE_CHECKING, Any

from pydock.api.http import HttpError
from pydock.clock import parse_rfc3339
from pydock.containers.config import ContainerConfig, RunOptions
from pydock.containers.state import ContainerState
from pydock.network import defaults
from pydock.store import ContainerRecord

if TYPE_CHECKING:
    from pydock.containers.health import HealthFlags
    from pydock.containers.manager import ContainerManager
    from pydock.engine import Engine

# HostConfig.NetworkMode "default" (or none given) is what ``pydock run`` does without
# --network: the default network (pydock.network.defaults), the bridge unless the host chose
# another.
DEFAULT_NETWORK = ("", "default")
RESTART_POLICIES = ("no", "always", "unless-stopped", "on-failure")
STORAGE_KEYS = ("driver", "storage")


def _strings(value: object, what: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return tuple(value)
    raise HttpError(400, f"invalid {what}: expected a list of strings")


def _dict(document: dict[str, object], key: str) -> dict[str, object]:
    value = document.get(key) or {}
    if not isinstance(value, dict):
        raise HttpError(400, f"invalid {key}: expected an object")
    return value


def storage_choice(host: dict[str, object]) -> tuple[str | None, dict[str, str]]:
    """``HostConfig.StorageOpt``: ``driver=NAME`` picks the container's storage driver;
    ``DRIVER.KEY=VALUE`` keys are that driver's options (as ``--storage-opt`` of pydock)."""
    options = _dict(host, "StorageOpt")
    driver: str | None = None
    rest: dict[str, str] = {}
    for key, value in options.items():
        if key in STORAGE_KEYS:
            driver = str(value)
        elif "." in key:
            rest[key] = str(value)
        else:
            raise HttpError(
                400,
                f"--storage-opt {key} is not supported by pydock (use driver=overlay2|vfs|fuse"
                " or DRIVER.OPTION=VALUE)",
            )
    return driver, rest


def run_options(name: str | None, body: dict[str, object]) -> RunOptions:
    """Docker's create body as the options of ``pydock create``."""
    host = _dict(body, "HostConfig")
    image = body.get("Image")
    if not isinstance(image, str) or not image:
        raise HttpError(400, "config error: no image given")
    entrypoint_words = _strings(body.get("Entrypoint"), "Entrypoint")
    command = _strings(body.get("Cmd"), "Cmd")
    entrypoint: str | None = None
    if body.get("Entrypoint") is not None:
        # pydock keeps one entrypoint word; the others go in front of the command.
        entrypoint = entrypoint_words[0] if entrypoint_words else ""
        command = entrypoint_words[1:] + command
    # ``-e NAME`` is the client's to resolve; a bare name never reads the service's environment.
    env = tuple(item for item in _strings(body.get("Env"), "Env") if "=" in item)
    publish = publish_options(host)
    network, aliases = network_choice(body, host, publishing=bool(publish))
    memory = int(host.get("Memory") or 0)  # type: ignore[call-overload]
    nano_cpus = int(host.get("NanoCpus") or 0)  # type: ignore[call-overload]
    quota = int(host.get("CpuQuota") or 0)  # type: ignore[call-overload]
    period = int(host.get("CpuPeriod") or 0) or 100_000  # type: ignore[call-overload]
    cpus = nano_cpus / 1e9 if nano_cpus else (quota / period if quota > 0 else 0)
    pids = host.get("PidsLimit")
    return RunOptions(
        image=image,
        command=command,
        name=name or None,
        env=env,
        workdir=str(body.get("WorkingDir") or "") or None,
        user=str(body.get("User") or "") or None,
        hostname=str(body.get("Hostname") or "") or None,
        network=network,
        add_hosts=_strings(host.get("ExtraHosts"), "ExtraHosts"),
        dns=_strings(host.get("Dns"), "Dns"),
        dns_search=_strings(host.get("DnsSearch"), "DnsSearch"),
        dns_options=_strings(host.get("DnsOptions"), "DnsOptions"),
        network_aliases=aliases,
        publish=publish,
        publish_all=bool(host.get("PublishAllPorts")),
        expose=tuple(_dict(body, "ExposedPorts")),
        domainname=str(body.get("Domainname") or "") or None,
        restart=restart_policy(host),
        read_only=bool(host.get("ReadonlyRootfs")),
        volumes=_strings(host.get("Binds"), "Binds"),
        memory=str(memory) if memory else None,
        cpus=f"{cpus:.9g}" if cpus else None,
        pids_limit=int(pids) if isinstance(pids, int) and pids > 0 else None,
        init=bool(host.get("Init")),
        entrypoint=entrypoint,
        cap_add=_strings(host.get("CapAdd"), "CapAdd"),
        cap_drop=_strings(host.get("CapDrop"), "CapDrop"),
        security_opt=_strings(host.get("SecurityOpt"), "SecurityOpt"),
        privileged=bool(host.get("Privileged")),
        tty=bool(body.get("Tty")),
        interactive=bool(body.get("OpenStdin")),
        auto_remove=bool(host.get("AutoRemove")),
        labels=tuple(f"{key}={value}" for key, value in _dict(body, "Labels").items()),
        stop_signal=str(body.get("StopSignal") or "") or None,
        stop_timeout=_int_or_none(body.get("StopTimeout"), "StopTimeout"),
        health=health_flags(body),
        **_resource_options(host),
    )


def _int_or_none(value: object, field: str) -> int | None:
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool):
        raise HttpError(400, f"invalid {field}: expected a number")
    return value


def _resource_options(host: dict[str, object]) -> dict[str, Any]:
    """The ``HostConfig`` fields that ``pydock run``'s resource and namespace flags take, as
    those flags' values (checked by the same code as the CLI's)."""
    options: dict[str, Any] = {}
    ulimits = host.get("Ulimits") or []
    if not isinstance(ulimits, list) or not all(isinstance(u, dict) for u in ulimits):
        raise HttpError(400, "invalid Ulimits: expected a list of objects")
    options["ulimits"] = tuple(
        f"{u.get('Name')}={u.get('Soft')}:{u.get('Hard', u.get('Soft'))}" for u in ulimits
    )
    if shm := _int_or_none(host.get("ShmSize"), "ShmSize"):
        options["shm_size"] = str(shm)
    options["sysctls"] = tuple(f"{k}={v}" for k, v in _dict(host, "Sysctls").items())
    options["group_add"] = _strings(host.get("GroupAdd"), "GroupAdd")
    options["cpu_shares"] = _int_or_none(host.get("CpuShares"), "CpuShares") or None
    options["cpuset_cpus"] = str(host.get("CpusetCpus") or "") or None
    if swap := _int_or_none(host.get("MemorySwap"), "MemorySwap"):
        options["memory_swap"] = str(swap)
    if reservation := _int_or_none(host.get("MemoryReservation"), "MemoryReservation"):
        options["memory_reservation"] = str(reservation)
    for field, key in (("PidMode", "pid_mode"), ("IpcMode", "ipc_mode"), ("UTSMode", "uts_mode")):
        mode = str(host.get(field) or "")
        if mode not in ("", "private", "shareable"):
            options[key] = mode
    devices = host.get("Devices") or []
    if not isinstance(devices, list) or not all(isinstance(d, dict) for d in devices):
        raise HttpError(400, "invalid Devices: expected a list of objects")
    options["devices"] = tuple(
        f"{d.get('PathOnHost')}:{d.get('PathInContainer') or d.get('PathOnHost')}"
        f":{d.get('CgroupPermissions') or 'rwm'}"
        for d in devices
    )
    options["tmpfs"] = tuple(
        f"{path}:{opts}" if opts else str(path) for path, opts in _dict(host, "Tmpfs").items()
    )
    options["oom_score_adj"] = _int_or_none(host.get("OomScoreAdj"), "OomScoreAdj") or None
    options["cpuset_mems"] = str(host.get("CpusetMems") or "") or None
    options["cgroupns_mode"] = str(host.get("CgroupnsMode") or "") or None
    options["volumes_from"] = _strings(host.get("VolumesFrom"), "VolumesFrom")
    return options


def health_flags(body: dict[str, object]) -> HealthFlags:
    """``Config.Healthcheck`` as the ``--health-*`` flags (durations in ns, 0: the image's)."""
    from pydock.containers.health import HealthFlags

    check = _dict(body, "Healthcheck")
    test = _strings(check.get("Test"), "Healthcheck.Test")
    if test[:1] == ("NONE",):
        return HealthFlags(disabled=True)
    if test[:1] == ("CMD",):
        cmd: str | None = shlex.join(test[1:])
    elif test[:1] == ("CMD-SHELL",):
        cmd = " ".join(test[1:])
    elif not test:
        cmd = None
    else:
        raise HttpError(400, f"invalid Healthcheck.Test: {test[0]} is not CMD, CMD-SHELL or NONE")

    def duration(key: str) -> str | None:
        value = _int_or_none(check.get(key), f"Healthcheck.{key}")
        return f"{value}ns" if value else None

    retries = _int_or_none(check.get("Retries"), "Healthcheck.Retries")
    return HealthFlags(
        cmd=cmd,
        interval=duration("Interval"),
        timeout=duration("Timeout"),
        retries=retries or None,
        start_period=duration("StartPeriod"),
    )


def publish_options(host: dict[str, object]) -> tuple[str, ...]:
    """``HostConfig.PortBindings`` as ``-p IP:HOST:CONTAINER/PROTO`` options (an empty
    ``HostIp`` is every address, an empty ``HostPort`` a free port)."""
    published: list[str] = []
    for port, bindings in _dict(host, "PortBindings").items():
        if bindings is None:
            continue
        if not isinstance(bindings, list) or not all(isinstance(b, dict) for b in bindings):
            raise HttpError(400, f"invalid PortBindings of {port}: expected a list of objects")
        for binding in bindings:
            host_ip = str(binding.get("HostIp") or "")
            host_port = str(binding.get("HostPort") or "")
            published.append(f"{host_ip}:{host_port}:{port}")
    return tuple(published)


def network_warning(body: dict[str, object]) -> str | None:
    """What ``Warnings`` says of the default network's fallback (see network_choice)."""
    host = _dict(body, "HostConfig")
    if str(host.get("NetworkMode") or "") not in DEFAULT_NETWORK:
        return None
    bridged = bool(publish_options(host)) or bool(host.get("PublishAllPorts"))
    return defaults.choose(None, publishing=bridged).warning


def network_choice(
    body: dict[str, object], host: dict[str, object], *, publishing: bool
) -> tuple[str, tuple[str, ...]]:
    """``HostConfig.NetworkMode`` and ``NetworkingConfig.EndpointsConfig``: the network to
    join and the container's aliases on it, as ``--network`` and ``--network-alias``."""
    mode = str(host.get("NetworkMode") or "")
    if mode in DEFAULT_NETWORK:
        bridged = publishing or bool(host.get("PublishAllPorts"))
        network = defaults.choose(None, publishing=bridged).network
    else:
        network = mode
    endpoints = _dict(_dict(body, "NetworkingConfig"), "EndpointsConfig")
    if len(endpoints) > 1:
        names = ", ".join(sorted(endpoints))
        raise HttpError(
            400,
            f"Container cannot be connected to network endpoints: {names}"
            " (pydock joins one network at create; use network connect for more)",
        )
    aliases: tuple[str, ...] = ()
    for name, endpoint in endpoints.items():
        if name not in (mode, network, *DEFAULT_NETWORK):
            raise HttpError(
                400, f"endpoint {name} is not the container's network mode {mode or 'default'}"
            )
        if endpoint is None:
            continue
        if not isinstance(endpoint, dict):
            raise HttpError(400, f"invalid EndpointsConfig of {name}: expected an object")
        ipam = endpoint.get("IPAMConfig") or {}
        if not isinstance(ipam, dict) or any(ipam.values()):
            raise HttpError(
                400, "a fixed address (--ip, --ip6, IPAMConfig) is not supported by pydock"
            )
        if endpoint.get("Links"):
            raise HttpError(400, "links (--link) are not supported by pydock")
        aliases = _strings(endpoint.get("Aliases"), "Aliases")
    if host.get("Links"):
        raise HttpError(400, "links (--link) are not supported by pydock")
    return network, aliases


def restart_policy(host: dict[str, object]) -> str:
    """``HostConfig.RestartPolicy`` as ``--restart`` (``on-failure:N``)."""
    policy = _dict(host, "RestartPolicy")
    name = str(policy.get("Name") or "no")
    retries = policy.get("MaximumRetryCount") or 0
    if name not in RESTART_POLICIES:
        raise HttpError(400, f"invalid restart policy '{name}'")
    if not isinstance(retries, int) or retries < 0:
        raise HttpError(400, "maximum retry count cannot be negative")
    if name != "on-failure":
        if retries:
            raise HttpError(400, f"maximum retry count cannot be used with restart policy '{name}'")
        return name
    return f"on-failure:{retries}" if retries else name


def unix_time(text: str | None) -> int:
    """An RFC 3339 time as seconds since the epoch (0 for none)."""
    return int(parse_rfc3339(text).timestamp()) if text else 0


def port_entries(ports: dict[str, object]) -> list[dict[str, object]]:
    """``Ports`` of a list entry from inspect's ``NetworkSettings.Ports``: one entry per
    binding, and one without a public port for a port only exposed."""
    entries: list[dict[str, object]] = []
    for key, bindings in ports.items():
        number, _, protocol = key.partition("/")
        private: dict[str, object] = {"PrivatePort": int(number), "Type": protocol or "tcp"}
        if not isinstance(bindings, list) or not bindings:
            entries.append(private)
            continue
        for binding in bindings:
            entries.append(
                {"IP": binding["HostIp"], **private, "PublicPort": int(binding["HostPort"])}
            )
    return entries


def list_entry(
    manager: ContainerManager, record: ContainerRecord, now: dt.datetime
) -> dict[str, object]:
    """One entry of ``GET /containers/json``."""
    from pydock.containers import health, views
    from pydock.network.views import network_view

    store = manager.store
    config = ContainerConfig.from_json(record.config)
    settings, _ = network_view(store, record)
    ports = settings["Ports"]
    networks = settings["Networks"]
    assert isinstance(ports, dict) and isinstance(networks, dict)
    return {
        "Id": record.id,
        "Names": ["/" + record.name],
        "Image": config.image_name,
        "ImageID": record.image,
        "Command": " ".join(config.args),
        "Created": unix_time(record.created),
        "Ports": port_entries(ports),
        "Labels": config.label_map,
        "State": str(record.state),
        "Status": views.status_text(record, now, health.current_status(manager, record)),
        "HostConfig": {"NetworkMode": config.network},
        "NetworkSettings": {"Networks": {name: _endpoint(e) for name, e in networks.items()}},
        "Mounts": [
            {
                "Type": "bind",
                "Source": v.source,
                "Destination": v.destination,
                "Mode": "ro" if v.readonly else "",
                "RW": not v.readonly,
                "Propagation": "rprivate",
            }
            for v in config.volumes
        ],
    }


def matches(record: ContainerRecord, filters: dict[str, list[str]], image_name: str) -> bool:
    """Whether a container passes ``filters`` (id, name, status, ancestor, exited, label)."""
    for key, wanted in filters.items():
        if not wanted:
            continue
        if key == "id" and not any(record.id.startswith(w) for w in wanted):
            return False
        if key == "name" and not any(w.lstrip("/") in record.name for w in wanted):
            return False
        if key == "status" and str(record.state) not in wanted:
            return False
        if key == "ancestor" and not any(w in (image_name, record.image) for w in wanted):
            return False
        if key == "exited" and (
            record.state != ContainerState.EXITED or str(record.exit_code) not in wanted
        ):
            return False
        if key not in ("id", "name", "status", "ancestor", "exited", "label"):
            raise HttpError(400, f"invalid filter '{key}'")
        if key == "label":
            labels = ContainerConfig.from_json(record.config).label_map
            for label in wanted:  # every one must match, as Docker's
                name, equals, value = label.partition("=")
                if name not in labels or (equals and labels[name] != value):
                    return False
    return True


def _endpoint(shown: object) -> dict[str, object]:
    """A network of ``NetworkSettings.Networks`` with the fields Docker's has and pydock's
    inspect leaves out."""
    assert isinstance(shown, dict)
    return {
        "IPAMConfig": None,
        "Links": None,
        "NetworkID": "",
        "EndpointID": "",
        "IPv6Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "MacAddress": "",
        "DriverOpts": None,
        **shown,
    }


def inspect_additions(document: dict[str, object], record: ContainerRecord) -> None:
    """What Docker's clients read from ``inspect`` beyond what ``pydock inspect`` shows."""
    config = ContainerConfig.from_json(record.config)
    network = document.setdefault("NetworkSettings", {})
    assert isinstance(network, dict)
    networks = network.get("Networks") or {}
    assert isinstance(networks, dict)
    network.update(
        Networks={name: _endpoint(shown) for name, shown in networks.items()},
        Bridge="",
        SandboxID="",
        HairpinMode=False,
        LinkLocalIPv6Address="",
        LinkLocalIPv6PrefixLen=0,
        SandboxKey="",
        EndpointID="",
        GlobalIPv6Address="",
        GlobalIPv6PrefixLen=0,
        IPv6Gateway="",
        MacAddress="",
    )
    for key, empty in (("Ports", {}), ("IPAddress", ""), ("IPPrefixLen", 0), ("Gateway", "")):
        network.setdefault(key, empty)
    document["Platform"] = "linux"
    document["ResolvConfPath"] = ""
    document["HostnamePath"] = ""
    document["HostsPath"] = ""
    document["MountLabel"] = ""
    document["ProcessLabel"] = ""
    document["AppArmorProfile"] = ""
    document["ExecIDs"] = None
    host = document.setdefault("HostConfig", {})
    assert isinstance(host, dict)
    host.setdefault("StorageOpt", {"driver": record.storage})
    host.setdefault("RestartPolicy", {"Name": "no", "MaximumRetryCount": 0})
    host.setdefault("LogConfig", {"Type": "json-file", "Config": {}})
    settings = document.setdefault("Config", {})
    assert isinstance(settings, dict)
    settings.update(
        AttachStdin=False,
        AttachStdout=False,
        AttachStderr=False,
        StdinOnce=False,
        Labels=config.label_map,
        Volumes=None,
        OnBuild=None,
    )
    if config.tty:
        settings["Tty"] = True


def info(engine: Engine) -> dict[str, object]:
    """``GET /info``: Docker's fields, from ``pydock info`` and the store."""
    from pydock.containers import lifecycle

    facts = engine.info()
    manager = engine.containers
    states = {"running": 0, "paused": 0, "exited": 0, "created": 0}
    for record in manager.store.containers.list_containers():
        current = lifecycle.refresh(manager, record, auto_remove=False)
        if current is not None and str(current.state) in states:
            states[str(current.state)] += 1
    uname = os.uname()
    return {
        "ID": "",
        "Containers": sum(states.values()),
        "ContainersRunning": states["running"],
        "ContainersPaused": 0,
        "ContainersStopped": states["exited"] + states["created"],
        "Images": facts.get("Images", 0),
        "Driver": facts.get("Driver", ""),
        "DriverStatus": facts.get("DriverStatus", []),
        "Plugins": {"Volume": [], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": True,
        "SwapLimit": False,
        "CpuCfsPeriod": True,
        "CpuCfsQuota": True,
        "PidsLimit": True,
        "IPv4Forwarding": False,
        "Debug": False,
        "NFd": len(os.listdir("/proc/self/fd")),
        "NGoroutines": 0,
        "SystemTime": dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z"),
        "LoggingDriver": "json-file",
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": "2",
        "KernelVersion": uname.release,
        "OperatingSystem": "pydock",
        "OSVersion": "",
        "OSType": "linux",
        "Architecture": platform.machine(),
        "NCPU": os.cpu_count() or 1,
        "MemTotal": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
        "DockerRootDir": str(engine.root),
        "Name": uname.nodename,
        "Labels": [],
        "ExperimentalBuild": False,
        "ServerVersion": str(facts.get("Version", "")),
        "Runtimes": {"pydock": {"path": "pydock"}},
        "DefaultRuntime": "pydock",
        "Swarm": {"LocalNodeState": "inactive"},
        "LiveRestoreEnabled": True,
        "Isolation": "",
        "InitBinary": "",
        "SecurityOptions": ["name=seccomp,profile=default"]
        + (["name=rootless"] if facts.get("Rootless") else []),
        "Warnings": None,
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {}},
    }


def signal_number(text: str) -> int:
    """``kill?signal=``: a name (``KILL``, ``SIGKILL``) or a number."""
    if not text:
        return int(signal.SIGKILL)
    if text.isdigit():
        return int(text)
    name = text.upper()
    name = name if name.startswith("SIG") else "SIG" + name
    try:
        return int(signal.Signals[name])
    except KeyError as exc:
        raise HttpError(400, f"invalid signal: {text}") from exc
