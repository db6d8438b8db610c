"""How containers are shown: ``ps`` lines and ``inspect`` documents, in Docker's words."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from pydock.clock import parse_rfc3339
from pydock.containers import hostopts
from pydock.containers.config import ContainerConfig, Volume, security_opt_view
from pydock.containers.health import Healthcheck, current_state
from pydock.containers.state import ContainerState
from pydock.format import human_age, human_duration
from pydock.network.views import network_view
from pydock.store import ContainerRecord
from runtime.spec import DEFAULT_SHM_SIZE

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager

COMMAND_WIDTH = 20
_ZERO_TIME = "0001-01-01T00:00:00Z"


def command_text(config: ContainerConfig, *, truncate: bool = True) -> str:
    """The COMMAND column: the command line, quoted, cut to 20 characters."""
    text = " ".join(config.args)
    if truncate and len(text) > COMMAND_WIDTH:
        text = text[: COMMAND_WIDTH - 1] + "\u2026"
    return f'"{text}"'


def status_text(record: ContainerRecord, now: dt.datetime, health: str = "") -> str:
    """The STATUS column: ``Created``, ``Up 3 seconds (healthy)``, ``Exited (0) 2 minutes
    ago``; ``health`` is ``State.Health.Status`` where the container has a healthcheck."""
    if record.state == ContainerState.RUNNING and record.started:
        paused = " (Paused)" if record.paused else ""
        if health:
            paused += " (health: starting)" if health == "starting" else f" ({health})"
        return "Up " + human_duration(now - parse_rfc3339(record.started)) + paused
    if record.state == ContainerState.EXITED:
        when = human_age(parse_rfc3339(record.finished), now) if record.finished else ""
        return f"Exited ({record.exit_code if record.exit_code is not None else 0}) {when}".strip()
    if record.state == ContainerState.REMOVING:
        return "Removal In Progress"
    return "Created"


def ps_row(record: ContainerRecord, now: dt.datetime, ports: str = "") -> list[str]:
    """One ``ps`` line: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, PORTS, NAMES."""
    config = ContainerConfig.from_json(record.config)
    return [
        record.id[:12],
        config.image_name,
        command_text(config),
        human_age(parse_rfc3339(record.created), now),
        status_text(record, now),
        ports,
        record.name,
    ]


# ``ps --format 'table ...'``: the header of every field, in Docker's words.
PS_HEADERS = {
    "Command": "COMMAND",
    "CreatedAt": "CREATED AT",
    "ID": "CONTAINER ID",
    "Image": "IMAGE",
    "Labels": "LABELS",
    "LocalVolumes": "LOCAL VOLUMES",
    "Mounts": "MOUNTS",
    "Names": "NAMES",
    "Networks": "NETWORKS",
    "Ports": "PORTS",
    "RunningFor": "CREATED",
    "Size": "SIZE",
    "State": "STATE",
    "Status": "STATUS",
}
PS_DEFAULT = (
    "table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t{{.Ports}}\t{{.Names}}"
)


def ps_json(
    record: ContainerRecord,
    now: dt.datetime,
    size: str = "0B",
    ports: str = "",
    health: str = "",
) -> dict[str, str]:
    """One ``ps --format json`` object, with Docker's keys (``size``: the ``-s`` text,
    ``ports``: the PORTS text, ``health``: ``State.Health.Status``, if any)."""
    config = ContainerConfig.from_json(record.config)
    created = parse_rfc3339(record.created)
    return {
        "Command": command_text(config),
        "CreatedAt": created.strftime("%Y-%m-%d %H:%M:%S +0000 UTC"),
        "ID": record.id[:12],
        "Image": config.image_name,
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(config.label_map.items())),
        "LocalVolumes": str(sum(v.kind == "volume" for v in config.volumes)),
        "Mounts": ",".join(
            v.name if v.kind == "volume" else v.source or v.destination for v in config.volumes
        ),
        "Names": record.name,
        "Networks": config.network,
        "Ports": ports,
        "RunningFor": human_age(created, now),
        "Size": size,
        "State": "paused"
        if record.state == ContainerState.RUNNING and record.paused
        else record.state,
        "Status": status_text(record, now, health),
    }


def mount_view(volume: Volume) -> dict[str, object]:
    """One entry of ``inspect``'s ``Mounts``, as Docker shows a bind, volume or tmpfs."""
    view: dict[str, object] = {"Type": volume.kind}
    if volume.kind == "volume":
        view |= {"Name": volume.name, "Driver": "local"}
    view |= {
        "Source": volume.source,
        "Destination": volume.destination,
        "Mode": "ro" if volume.readonly and volume.kind == "bind" else "",
        "RW": not volume.readonly,
        "Propagation": "rprivate" if volume.kind == "bind" else "",
    }
    if volume.kind == "volume":
        view["Mode"] = "z"
    return view


def resource_view(config: ContainerConfig) -> dict[str, object]:
    """``HostConfig``'s limits, namespaces, devices and kernel settings, in Docker's words."""
    ulimits = []
    for entry in config.ulimits:
        name, soft, hard = hostopts.ulimit_parts(entry)
        ulimits.append({"Name": name, "Hard": hard, "Soft": soft})
    devices = [
        {"PathOnHost": source, "PathInContainer": destination, "CgroupPermissions": permissions}
        for source, destination, permissions in map(hostopts.device_parts, config.devices)
    ]
    return {
        "Ulimits": ulimits or None,
        "ShmSize": config.shm_size or DEFAULT_SHM_SIZE,
        "Sysctls": dict(item.partition("=")[::2] for item in config.sysctls) or None,
        "GroupAdd": list(config.group_add) or None,
        "CpuShares": config.cpu_shares or 0,
        "CpusetCpus": config.cpuset_cpus,
        "MemorySwap": config.memory_swap or 0,
        "MemoryReservation": config.memory_reservation or 0,
        "PidMode": config.pid_mode,
        "IpcMode": config.ipc_mode or "private",
        "UTSMode": config.uts_mode,
        "Devices": devices,
        "OomScoreAdj": config.oom_score_adj or 0,
        "CpuPeriod": config.cpu_period or 0,
        "CpuQuota": config.cpu_quota or 0,
        "CpusetMems": config.cpuset_mems,
        "CgroupnsMode": config.cgroupns_mode,
        "VolumesFrom": list(config.volumes_from) or None,
    }


def _healthcheck_view(config: ContainerConfig) -> dict[str, object]:
    """``Config.Healthcheck``, where the container (or its image) has one."""
    check = Healthcheck.from_text(config.healthcheck)
    return {"Healthcheck": check.view()} if check is not None else {}


def inspect_document(
    record: ContainerRecord,
    graph_driver: dict[str, object],
    *,
    log_path: str,
    network_settings: dict[str, object] | None = None,
    port_bindings: dict[str, object] | None = None,
    health: dict[str, object] | None = None,
) -> dict[str, object]:
    """``inspect`` of a container, shaped as Docker's ``container inspect``."""
    config = ContainerConfig.from_json(record.config)
    running = record.state == ContainerState.RUNNING
    args = config.args
    return {
        "Id": record.id,
        "Created": record.created,
        "Path": args[0] if args else "",
        "Args": list(args[1:]),
        "State": {
            "Status": "paused" if running and record.paused else record.state,
            "Running": running,
            "Paused": running and record.paused,
            "Restarting": False,
            "OOMKilled": record.oom_killed,
            "Dead": False,
            "Pid": record.pid if running and record.pid else 0,
            "ExitCode": record.exit_code if record.exit_code is not None else 0,
            "Error": record.error or "",
            "StartedAt": record.started or _ZERO_TIME,
            "FinishedAt": record.finished or _ZERO_TIME,
            **({"Health": health} if health is not None else {}),
        },
        "Image": record.image,
        "LogPath": log_path,
        "Name": "/" + record.name,
        "RestartCount": record.restart_count,
        "Driver": record.storage,
        "Mounts": [mount_view(volume) for volume in config.volumes],
        "HostConfig": {
            "AutoRemove": config.auto_remove,
            "NetworkMode": config.network,
            "PortBindings": port_bindings or {},
            "PublishAllPorts": config.publish_all,
            "ExtraHosts": list(config.add_hosts) or None,
            "Dns": list(config.dns),
            "DnsSearch": list(config.dns_search),
            "DnsOptions": list(config.dns_options),
            "ReadonlyRootfs": config.read_only,
            "Memory": config.memory or 0,
            "NanoCpus": int((config.cpus or 0) * 1e9),
            "PidsLimit": config.pids_limit,
            "Init": config.init,
            "CapAdd": list(config.cap_add) or None,
            "CapDrop": list(config.cap_drop) or None,
            "SecurityOpt": security_opt_view(config),
            "Privileged": config.privileged,
            "RestartPolicy": {
                "Name": config.restart.partition(":")[0],
                "MaximumRetryCount": int(config.restart.partition(":")[2] or 0),
            },
            "Binds": [
                f"{v.name if v.kind == 'volume' else v.source}:{v.destination}"
                + (":ro" if v.readonly else "")
                for v in config.volumes
                if v.kind != "tmpfs"
            ]
            or None,
            "Tmpfs": {v.destination: v.options for v in config.volumes if v.kind == "tmpfs"}
            or None,
            **resource_view(config),
        },
        "GraphDriver": graph_driver,
        "NetworkSettings": network_settings or {},
        "Config": {
            "Hostname": config.hostname or record.id[:12],
            "Domainname": config.domainname,
            "User": config.user,
            "Tty": config.tty,
            "AttachStdin": "stdin" in config.attach,
            "AttachStdout": "stdout" in config.attach,
            "AttachStderr": "stderr" in config.attach,
            "OpenStdin": config.interactive,
            "Env": list(config.env),
            "Cmd": list(config.cmd) or None,
            "Image": config.image_name,
            "WorkingDir": config.workdir,
            "Entrypoint": list(config.entrypoint) or None,
            "StopSignal": config.stop_signal,
            **({"StopTimeout": config.stop_timeout} if config.stop_timeout is not None else {}),
            "Labels": config.label_map,
            "ExposedPorts": {port: {} for port in config.exposed} or None,
            **_healthcheck_view(config),
        },
    }


def container_inspect(manager: ContainerManager, record: ContainerRecord) -> dict[str, object]:
    """``inspect`` of a container as the CLI and the API show it: the record with its storage
    driver's data, log path, networks, ports and health."""
    storage = manager.storage(record.storage)
    graph: dict[str, object] = {"Name": record.storage, "Data": {}}
    if storage.driver.exists(record.rw_layer):
        graph["Data"] = storage.driver.metadata(record.rw_layer)
    settings, bindings = network_view(manager.store, record)
    return inspect_document(
        record,
        graph,
        log_path=str(manager.files(record.id).stdout_log),
        network_settings=settings,
        port_bindings=bindings,
        health=current_state(manager, record),
    )
