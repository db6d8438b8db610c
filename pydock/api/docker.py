"""Docker's documents, to and from pydock's: create bodies, list entries, inspect additions.

Everything here is synchronous and runs with an engine in a worker thread.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import signal
from typing import TYPE_CHECKING

from pydock.api.http import HttpError
from pydock.clock import parse_rfc3339
from pydock.containers.config import ContainerConfig, RunOptions
from pydock.containers.state import ContainerState
from pydock.store import ContainerRecord

if TYPE_CHECKING:
    from pydock.engine import Engine

# HostConfig.NetworkMode: pydock has a container's own network namespace (none) and the host's.
NETWORKS = {"": "none", "default": "none", "bridge": "none", "none": "none", "host": "host"}
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
    network_mode = str(host.get("NetworkMode") or "")
    if network_mode not in NETWORKS:
        raise HttpError(400, f"network {network_mode} not found (pydock has none and host)")
    restart = _dict(host, "RestartPolicy")
    if restart.get("Name") not in (None, "", "no"):
        raise HttpError(400, f"restart policy {restart.get('Name')!r} is not supported by pydock")
    if any(_dict(host, "PortBindings").values()):
        raise HttpError(400, "port bindings are not supported by pydock (no bridge network)")
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
        network=NETWORKS[network_mode],
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
    )


def unix_time(text: str | None) -> int:
    """An RFC 3339 time as seconds since the epoch (0 for none)."""
    return int(parse_rfc3339(text).timestamp()) if text else 0


def list_entry(record: ContainerRecord, now: dt.datetime) -> dict[str, object]:
    """One entry of ``GET /containers/json``."""
    from pydock.containers import views

    config = ContainerConfig.from_json(record.config)
    return {
        "Id": record.id,
        "Names": ["/" + record.name],
        "Image": config.image_name,
        "ImageID": record.image,
        "Command": " ".join(config.args),
        "Created": unix_time(record.created),
        "Ports": [],
        "Labels": {},
        "State": str(record.state),
        "Status": views.status_text(record, now),
        "HostConfig": {"NetworkMode": config.network},
        "NetworkSettings": {"Networks": {}},
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
    """Whether a container passes ``filters`` (id, name, status, ancestor, exited)."""
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
            return False  # pydock keeps no labels: nothing carries one
    return True


def inspect_additions(document: dict[str, object], record: ContainerRecord) -> None:
    """What Docker's clients read from ``inspect`` beyond what ``pydock inspect`` shows."""
    config = ContainerConfig.from_json(record.config)
    document["NetworkSettings"] = {"Networks": {}, "Ports": {}, "IPAddress": "", "Gateway": ""}
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
        Labels={},
        Domainname="",
        ExposedPorts=None,
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
        "Plugins": {"Volume": [], "Network": ["host", "none"], "Log": ["json-file"]},
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
