"""The endpoints of a container's run and files: top, stats, archive (``cp``), pause, unpause,
update, rename; and ``image prune``. Each calls the engine code the CLI's verb calls."""

from __future__ import annotations

import json
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import trio

from pydock.api import shapes
from pydock.api.http import HttpConnection, HttpError, Request
from pydock.api.routes import C, _filters, _lookup, _send_file
from pydock.api.service import Service

if TYPE_CHECKING:
    from pydock.containers.copy import PathStat
    from pydock.engine import Engine

STATS_INTERVAL = 1.0  # seconds between streamed samples, as Docker's
PATH_STAT_HEADER = "X-Docker-Container-Path-Stat"


def register(service: Service) -> None:
    """The endpoints of this module."""
    route = service.route
    route("GET", C + "/top")(container_top)
    route("GET", C + "/stats")(container_stats)
    route("HEAD", C + "/archive")(archive_stat)
    route("GET", C + "/archive")(archive_get)
    route("PUT", C + "/archive")(archive_put)
    route("POST", C + "/pause")(container_pause)
    route("POST", C + "/unpause")(container_unpause)
    route("POST", C + "/update")(container_update)
    route("POST", C + "/rename")(container_rename)
    route("POST", "/images/prune")(images_prune)


# -- top and stats ---------------------------------------------------------------------------


def _top(engine: Engine, name: str, ps_args: str) -> dict[str, object]:
    from pydock.containers import control

    record = _lookup(engine, name)
    return shapes.top_document(control.top(engine.containers, record, tuple(ps_args.split())))


async def container_top(service: Service, http: HttpConnection, request: Request) -> None:
    document = await service.call(_top, request.params["name"], request.arg("ps_args"))
    await http.json(200, document)


def _sample(engine: Engine, container_id: str) -> tuple[str, str, shapes.StatsSample | None]:
    """The container's id, name and one sample (None when it does not run)."""
    from pydock.containers import control
    from pydock.containers.errors import ContainerConflictError

    record = _lookup(engine, container_id)
    if str(record.state) != "running":
        return record.id, record.name, None
    try:
        current, usage = control.cgroup_usage(engine.containers, record)
    except ContainerConflictError:
        if _still_running(engine, record.id):
            raise  # running without a cgroup: nothing to read
        return record.id, record.name, None
    config = engine.containers.config_of(current)
    sample = shapes.StatsSample(
        read_ns=time.time_ns(),
        cpu_ns=usage.cpu_ns,
        system_cpu_ns=control.host_cpu_ns(),
        memory=usage.memory,
        memory_limit=usage.memory_limit or control.host_memory(),
        pids=usage.pids,
        pids_limit=config.pids_limit or 0,
        online_cpus=len(os.sched_getaffinity(0)),
    )
    return record.id, record.name, sample


def _still_running(engine: Engine, container_id: str) -> bool:
    """Whether the container still runs (a failed reading may just mean it stopped)."""
    from pydock.containers import lifecycle

    record = engine.store.containers.get(container_id)
    if record is None:
        return False
    current = lifecycle.refresh(engine.containers, record)
    return current is not None and str(current.state) == "running"


async def container_stats(service: Service, http: HttpConnection, request: Request) -> None:
    """Docker's stats: one document (``stream=false``: two readings apart, so that the CPU
    share can be computed; ``one-shot``: a single reading) or one a second until the
    container stops or the client leaves."""
    stream = request.flag("stream", True)
    container_id, name, sample = await service.call(_sample, request.params["name"])
    if not stream:
        before = None
        if sample is not None and not request.flag("one-shot"):
            await trio.sleep(STATS_INTERVAL)
            before = sample
            _, _, sample = await service.call(_sample, container_id)
        await http.json(200, shapes.stats_document(container_id, name, sample, before))
        return
    await http.start_stream()
    before = None
    while True:
        await http.write(
            json.dumps(shapes.stats_document(container_id, name, sample, before)).encode() + b"\n"
        )
        if sample is None:
            break
        await trio.sleep(STATS_INTERVAL)
        before = sample
        _, _, sample = await service.call(_sample, container_id)
    await http.end_stream()


# -- archive (cp) ----------------------------------------------------------------------------


def _path(request: Request) -> str:
    path = request.arg("path")
    if not path:
        raise HttpError(400, "the path parameter is required")
    return path


def _not_found(name: str, path: str) -> HttpError:
    return HttpError(404, f"Could not find the file {path} in container {name}")


def _stat_header(facts: PathStat) -> tuple[str, str]:
    value = shapes.path_stat_header(
        facts.name, facts.size, facts.mode, facts.mtime_ns, facts.link_target
    )
    return PATH_STAT_HEADER, value


def _path_stat(engine: Engine, name: str, path: str) -> PathStat:
    from pydock.containers import copy
    from pydock.containers.errors import ContainerPathError

    record = _lookup(engine, name)
    try:
        return copy.path_stat(engine.containers, record, path)
    except ContainerPathError as exc:
        raise _not_found(name, path) from exc


async def archive_stat(service: Service, http: HttpConnection, request: Request) -> None:
    facts = await service.call(_path_stat, request.params["name"], _path(request))
    await http.respond(200, headers=[_stat_header(facts)])


def _scratch(service: Service) -> Path:
    scratch = Path(service.config.root) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    return scratch


async def archive_get(service: Service, http: HttpConnection, request: Request) -> None:
    name, path = request.params["name"], _path(request)
    fd, spool = tempfile.mkstemp(dir=_scratch(service), prefix="api-archive-")
    os.close(fd)
    try:

        def pack(engine: Engine) -> PathStat:
            from pydock.containers import copy
            from pydock.containers.errors import ContainerPathError

            record = _lookup(engine, name)
            with open(spool, "wb") as out:
                try:
                    return copy.archive(engine.containers, record, path, out)
                except ContainerPathError as exc:
                    raise _not_found(name, path) from exc

        facts = await service.call(pack)
        await _send_file(http, Path(spool), "application/x-tar", [_stat_header(facts)])
    finally:
        Path(spool).unlink(missing_ok=True)


async def archive_put(service: Service, http: HttpConnection, request: Request) -> None:
    name, path = request.params["name"], _path(request)
    copy_owner = request.flag("copyUIDGID")
    keep_kinds = request.flag("noOverwriteDirNonDir")
    fd, spool = tempfile.mkstemp(dir=_scratch(service), prefix="api-archive-")
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in http.body_chunks():
                await trio.to_thread.run_sync(out.write, chunk)

        def unpack(engine: Engine) -> None:
            from pydock.containers import copy
            from pydock.containers.errors import ContainerPathError

            record = _lookup(engine, name)
            owner = None if copy_owner else (0, 0)  # Docker's default: root's in the container
            with open(spool, "rb") as tar:
                try:
                    copy.copy_in(
                        engine.containers, record, "-", path, tar,
                        owner=owner, keep_kinds=keep_kinds,
                    )  # fmt: skip
                except ContainerPathError as exc:
                    raise _not_found(name, path) from exc

        await service.call(unpack)
    finally:
        Path(spool).unlink(missing_ok=True)
    await http.respond(200)


# -- pause, unpause, update, rename ----------------------------------------------------------


def _pause(engine: Engine, name: str, frozen: bool) -> str:
    from pydock.containers import control

    record = _lookup(engine, name)
    if frozen:
        control.pause(engine.containers, record)
    else:
        control.unpause(engine.containers, record)
    return record.id


async def container_pause(service: Service, http: HttpConnection, request: Request) -> None:
    container_id = await service.call(_pause, request.params["name"], True)
    service.event("container", "pause", container_id)
    await http.respond(204)


async def container_unpause(service: Service, http: HttpConnection, request: Request) -> None:
    container_id = await service.call(_pause, request.params["name"], False)
    service.event("container", "unpause", container_id)
    await http.respond(204)


def _update(engine: Engine, name: str, wanted: shapes.UpdateRequest) -> str:
    from pydock.containers import control

    record = _lookup(engine, name)
    if not wanted.is_empty():
        control.update(
            engine.containers,
            record,
            memory=wanted.memory,
            cpus=wanted.cpus,
            pids_limit=wanted.pids_limit,
            restart=wanted.restart,
        )
    return record.id


async def container_update(service: Service, http: HttpConnection, request: Request) -> None:
    wanted = shapes.update_request(await http.json_body())
    container_id = await service.call(_update, request.params["name"], wanted)
    service.event("container", "update", container_id)
    await http.json(200, {"Warnings": list(wanted.warnings) or None})


def _rename(engine: Engine, name: str, new_name: str) -> str:
    from pydock.containers import control

    record = _lookup(engine, name)
    control.rename(engine.containers, record, new_name)
    return record.id


async def container_rename(service: Service, http: HttpConnection, request: Request) -> None:
    new_name = request.arg("name")
    if not new_name:
        raise HttpError(400, "Neither old nor new names may be empty")
    container_id = await service.call(_rename, request.params["name"], new_name)
    service.event("container", "rename", container_id, name=new_name.removeprefix("/"))
    await http.respond(204)


# -- image prune -----------------------------------------------------------------------------


def _prune_images(engine: Engine, every_unused: bool) -> tuple[list[dict[str, str]], int]:
    report, reclaimed = engine.images.prune_images(every_unused=every_unused)
    deleted = []
    for line in report:
        key, _, value = line.partition(": ")
        deleted.append({key: value})
    return deleted, reclaimed


def _dangling_only(filters: dict[str, list[str]]) -> bool:
    for key in filters:
        if key != "dangling":
            raise HttpError(400, f"invalid filter '{key}': pydock's image prune has dangling only")
    values = {value.lower() for value in filters.get("dangling", ["true"])}
    if values <= {"true", "1"}:
        return True
    if values <= {"false", "0"}:
        return False
    raise HttpError(400, f"invalid filter 'dangling={','.join(sorted(values))}'")


async def images_prune(service: Service, http: HttpConnection, request: Request) -> None:
    every_unused = not _dangling_only(_filters(request))
    deleted, reclaimed = await service.call(_prune_images, every_unused)
    for entry in deleted:
        for key, value in entry.items():
            service.event("image", "untag" if key == "Untagged" else "delete", value)
    await http.json(200, {"ImagesDeleted": deleted or None, "SpaceReclaimed": reclaimed})
