"""System commands: info, system check, system df (``system prune`` is in ``prune``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TextIO

from pydock.engine import Engine
from pydock.format import human_size, table


def cmd_info(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show the versions, the storage drivers of this host and where data lives."""
    facts = engine.info()
    counts = _container_counts(engine)
    version = "2" if Path("/sys/fs/cgroup/cgroup.controllers").exists() else "1"
    facts |= {
        "Containers": sum(counts.values()),
        "ContainersRunning": counts["running"],
        "ContainersPaused": counts["paused"],
        "ContainersStopped": counts["stopped"],
        "CgroupDriver": "cgroupfs",
        "CgroupVersion": version,
    }
    if args.format == "json":
        out.write(json.dumps(facts) + "\n")
        return 0
    lines = [
        "Client:",
        f" Version: {facts['Version']}",
        f" Python: {facts['Python']}",
        f" SQLite: {facts['SQLite']} (sqlite-utils {facts['SqliteUtils']})",
        f"Storage Driver: {facts['Driver']}",
    ]
    lines += [f" {key}: {value}" for key, value in _pairs(facts["DriverStatus"])]
    lines.append("Drivers:")
    for driver in _dicts(facts["Drivers"]):
        state = "supported" if driver["Supported"] else f"not supported: {driver['Reason']}"
        lines.append(f" {driver['Name']}: {state}")
    lines += [
        f"Root Dir: {facts['RootDir']}",
        f"Run Root: {facts['RunRoot']}",
        f"Store: {facts['Store']}",
        f"Rootless: {str(facts['Rootless']).lower()}",
        f"Containers: {sum(counts.values())}",
        f" Running: {counts['running']}",
        f" Paused: {counts['paused']}",
        f" Stopped: {counts['stopped']}",
        f"Images: {facts['Images']}",
        f"Layers: {facts['Layers']}",
        "Cgroup Driver: cgroupfs",
        f"Cgroup Version: {version}",
        f"Kernel Version: {facts['KernelVersion']}",
        f"Architecture: {facts['Architecture']}",
    ]
    out.write("\n".join(lines) + "\n")
    return 0


def _container_counts(engine: Engine) -> dict[str, int]:
    """Containers by what the store says they do (read only: ``info`` starts no runtime; the
    monitor's exit command keeps the rows current)."""
    counts = {"running": 0, "paused": 0, "stopped": 0}
    for record in engine.store.containers.list_containers():
        if record.state in ("creating", "removing"):
            continue
        if record.state == "running":
            counts["paused" if record.paused else "running"] += 1
        else:
            counts["stopped"] += 1
    return counts


def _pairs(value: object) -> list[tuple[str, str]]:
    items = value if isinstance(value, list) else []
    return [(str(item[0]), str(item[1])) for item in items if len(item) == 2]


def _dicts(value: object) -> list[dict[str, object]]:
    items = value if isinstance(value, list) else []
    return [item for item in items if isinstance(item, dict)]


def cmd_system_check(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Check that the store agrees with the disk (--repair: fix what can be fixed)."""
    from pydock import syscheck  # only this command needs it

    findings, alone = syscheck.check(engine)
    left = 0
    for finding in findings:
        if args.repair and finding.repair is not None:
            finding.repair()
            out.write(f"repaired: {finding.text}\n")
        else:
            out.write(f"{finding.text}\n")
            left += 1
    if not alone:
        out.write("other pydock commands are running: mounts, directories and blobs that may be "
                  "their work in progress were not checked\n")  # fmt: skip
    if not findings:
        out.write("no problems found\n")
    return 1 if left else 0


def cmd_system_df(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Show how much disk images, layers and blobs use."""
    usage = engine.images.disk_usage()
    if args.format == "json":
        for kind, facts in usage.items():
            out.write(json.dumps({"Type": kind, **facts}) + "\n")
        return 0
    cells = []
    for kind, facts in usage.items():
        size = facts["Size"]
        spare = facts.get("Reclaimable")
        share = f" ({100 * spare // size}%)" if spare is not None and size else ""
        reclaim = "-" if spare is None else human_size(spare) + share
        cells.append([kind, str(facts["Total"]), str(facts["Active"]), human_size(size), reclaim])
    out.write(table(["TYPE", "TOTAL", "ACTIVE", "SIZE", "RECLAIMABLE"], cells) + "\n")
    return 0
