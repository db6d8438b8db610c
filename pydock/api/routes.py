"""The endpoints: Docker Engine API paths onto pydock's engine services."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import secrets
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, TextIO, cast

import trio

from pydock.api import docker
from pydock.api.http import (
    CHUNK,
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    HttpConnection,
    HttpError,
    Request,
    frame,
)
from pydock.api.service import (
    API_VERSION,
    ExecRecord,
    Handler,
    Service,
    describe,
    json_dumps,
)
from pydock.api.streams import Client, Fds, Session
from pydock.errors import ImageUnknownError, PydockError

if TYPE_CHECKING:
    import runtime
    from pydock.engine import Engine
    from pydock.store import ContainerRecord

C = r"/containers/(?P<name>[^/]+)"
I = r"/images/(?P<name>.+)"  # noqa: E741 - image names hold slashes
POLL = 0.1
STDERR_FRAME = 2
NOT_DONE = {
    ("POST", "/build"): "build",
}


def register(service: Service) -> None:
    """Every endpoint of the service."""
    route = service.route
    route("GET", "/_ping")(ping)
    route("GET", "/version")(version)
    route("GET", "/info")(info)
    route("GET", "/system/df")(system_df)
    route("GET", "/events")(events)
    route("GET", "/images/json")(images_list)
    route("POST", "/images/create")(images_create)
    route("POST", "/images/load")(images_load)
    route("GET", "/images/get")(images_get)
    route("GET", I + "/json")(image_inspect)
    route("GET", I + "/history")(image_history)
    route("GET", I + "/get")(images_get)
    route("POST", I + "/tag")(image_tag)
    route("POST", I + "/push")(image_push)
    route("GET", "/containers/json")(containers_list)
    route("POST", "/containers/create")(container_create)
    route("POST", "/containers/prune")(containers_prune)
    route("GET", C + "/json")(container_inspect)
    route("POST", C + "/start")(container_start)
    route("POST", C + "/stop")(container_stop)
    route("POST", C + "/restart")(container_restart)
    route("POST", C + "/kill")(container_kill)
    route("POST", C + "/wait")(container_wait)
    route("POST", C + "/attach")(container_attach)
    route("POST", C + "/resize")(container_resize)
    route("GET", C + "/logs")(container_logs)
    route("GET", C + "/changes")(container_changes)
    route("GET", C + "/export")(container_export)
    route("DELETE", C)(container_remove)
    route("POST", C + "/exec")(exec_create)
    route("POST", r"/exec/(?P<name>[^/]+)/start")(exec_start)
    route("POST", r"/exec/(?P<name>[^/]+)/resize")(exec_resize)
    route("GET", r"/exec/(?P<name>[^/]+)/json")(exec_inspect)
    route("POST", "/commit")(commit)
    for (method, path), verb in NOT_DONE.items():
        route(method, path)(_not_done(verb))
    route("DELETE", I)(image_remove)
    from pydock.api import objects, verbs  # they use this module's helpers

    verbs.register(service)
    objects.register(service)


def _not_done(verb: str) -> Handler:
    async def handler(service: Service, http: HttpConnection, request: Request) -> None:
        await http.error(501, f"{verb} is not implemented by pydock's API service yet")

    return handler


# -- system ----------------------------------------------------------------------------------


def _version_headers() -> list[tuple[str, str]]:
    return [
        ("API-Version", API_VERSION),
        ("Docker-Experimental", "false"),
        ("OSType", "linux"),
        ("Cache-Control", "no-cache, no-store, must-revalidate"),
        ("Pragma", "no-cache"),
    ]


async def ping(service: Service, http: HttpConnection, request: Request) -> None:
    body = b"" if request.method == "HEAD" else b"OK"
    await http.respond(200, body, "text/plain; charset=utf-8", _version_headers())


async def version(service: Service, http: HttpConnection, request: Request) -> None:
    import platform

    from pydock.info import package_version

    number = package_version("pydock")
    uname = os.uname()
    await http.json(
        200,
        {
            "Platform": {"Name": "pydock"},
            "Components": [
                {
                    "Name": "Engine",
                    "Version": number,
                    "Details": {
                        "ApiVersion": API_VERSION,
                        "MinAPIVersion": API_VERSION,
                        "Os": "linux",
                        "Arch": _arch(),
                        "KernelVersion": uname.release,
                        "GoVersion": "python" + platform.python_version(),
                        "GitCommit": "",
                        "BuildTime": "",
                        "Experimental": "false",
                    },
                }
            ],
            "Version": number,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": API_VERSION,
            "GitCommit": "",
            "GoVersion": "python" + platform.python_version(),
            "Os": "linux",
            "Arch": _arch(),
            "KernelVersion": uname.release,
            "BuildTime": "",
        },
    )


def _arch() -> str:
    machine = os.uname().machine
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


async def info(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(docker.info))


def _df(engine: Engine) -> dict[str, object]:
    from pydock.clock import utc_now

    images = []
    for image in engine.store.images.list_images():
        images.append(
            {
                "Id": image.id,
                "ParentId": "",
                "RepoTags": list(image.tags),
                "RepoDigests": [],
                "Created": docker.unix_time(image.created),
                "Size": image.size,
                "SharedSize": -1,
                "VirtualSize": image.size,
                "Labels": {},
                "Containers": len(engine.store.containers_using(image.id)),
            }
        )
    now = utc_now()
    containers = [
        docker.list_entry(engine.containers, record, now) | {"SizeRw": 0, "SizeRootFs": 0}
        for record in engine.store.containers.list_containers()
    ]
    usage = engine.images.disk_usage()
    layers = usage.get("Layers", {}).get("Size", 0)
    return {
        "LayersSize": layers,
        "Images": images,
        "Containers": containers,
        "Volumes": [],
        "BuildCache": [],
    }


async def system_df(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_df))


async def events(service: Service, http: HttpConnection, request: Request) -> None:
    since = request.number("since", None)
    until = request.number("until", None)
    send, receive = trio.open_memory_channel[dict[str, object]](256)
    service.watchers.append(send)
    try:
        await http.start_stream()
        for event in list(service.events):
            stamp = int(str(event["time"]))
            if (since is None or stamp >= since) and (until is None or stamp <= until):
                await http.write(json_dumps(event))
        if until is not None:
            with trio.move_on_at(_deadline(until)):
                async for event in receive:
                    await http.write(json_dumps(event))
        else:
            async for event in receive:
                await http.write(json_dumps(event))
        await http.end_stream()
    finally:
        service.watchers.remove(send)


def _deadline(until: int) -> float:
    import time

    return trio.current_time() + max(0.0, until - time.time())


# -- images ----------------------------------------------------------------------------------


def _images_list(engine: Engine) -> list[dict[str, object]]:
    from pydock.image.reference import parse_reference

    listed: list[dict[str, object]] = []
    for image in engine.store.images.list_images():
        tags = [parse_reference(tag).familiar for tag in image.tags]
        listed.append(
            {
                "Id": image.id,
                "ParentId": "",
                "RepoTags": tags or None,
                "RepoDigests": engine.images.repo_digests(image.id),
                "Created": docker.unix_time(image.created),
                "Size": image.size,
                "SharedSize": -1,
                "VirtualSize": image.size,
                "Labels": {},
                "Containers": -1,
            }
        )
    return listed


async def images_list(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_images_list))


def _image_inspect(engine: Engine, name: str) -> dict[str, object]:
    try:
        document = engine.images.inspect_image(name)
    except ImageUnknownError as exc:
        raise HttpError(404, f"No such image: {name}") from exc
    document.setdefault("ContainerConfig", document.get("Config"))
    document.setdefault("DockerVersion", "")
    document.setdefault("VirtualSize", document.get("Size"))
    return document


async def image_inspect(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_image_inspect, request.params["name"]))


def _image_history(engine: Engine, name: str) -> list[dict[str, object]]:
    try:
        rows = engine.images.image_history(name)
    except ImageUnknownError as exc:
        raise HttpError(404, f"No such image: {name}") from exc
    return [
        {
            "Id": row.image,
            "Created": docker.unix_time(row.created),
            "CreatedBy": row.created_by,
            "Tags": None,
            "Size": row.size,
            "Comment": row.comment,
        }
        for row in rows
    ]


async def image_history(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_image_history, request.params["name"]))


def _tag(engine: Engine, name: str, target: str) -> None:
    try:
        engine.images.tag_image(name, target)
    except ImageUnknownError as exc:
        raise HttpError(404, f"No such image: {name}") from exc


async def image_tag(service: Service, http: HttpConnection, request: Request) -> None:
    repo, tag = request.arg("repo"), request.arg("tag")
    if not repo:
        raise HttpError(400, "repository name must have at least one component")
    target = f"{repo}:{tag}" if tag else repo
    await service.call(_tag, request.params["name"], target)
    service.event("image", "tag", request.params["name"], name=target)
    await http.respond(201)


def _image_remove(engine: Engine, name: str, force: bool) -> list[str]:
    try:
        return engine.images.remove_image(name, force=force)
    except ImageUnknownError as exc:
        raise HttpError(404, f"No such image: {name}") from exc


async def image_remove(service: Service, http: HttpConnection, request: Request) -> None:
    name = request.params["name"]
    lines = await service.call(_image_remove, name, request.flag("force"))
    report = []
    for line in lines:
        key, _, value = line.partition(": ")
        report.append({key: value})
        service.event("image", "untag" if key == "Untagged" else "delete", value)
    await http.json(200, report)


class _Lines:
    """A text stream for pydock's progress that hands each line to the service (as JSON)."""

    def __init__(self, send: trio.MemorySendChannel[bytes], token: trio.lowlevel.TrioToken):
        self._send = send
        self._token = token
        self._partial = ""

    def isatty(self) -> bool:
        return False

    def write(self, text: str) -> int:
        self._partial += text
        *lines, self._partial = self._partial.split("\n")
        for line in lines:
            if line.strip():
                trio.from_thread.run(self._send.send, _progress(line), trio_token=self._token)
        return len(text)

    def flush(self) -> None:
        pass


def _progress(line: str) -> bytes:
    short, colon, status = line.partition(": ")
    if colon and len(short) == 12 and all(c in "0123456789abcdef" for c in short):
        return json_dumps({"status": status, "progressDetail": {}, "id": short})
    return json_dumps({"status": line})


def _local(reference: str) -> bool:
    """A registry on 127.0.0.0/8 or localhost: plain HTTP, as Docker's default insecure list."""
    from pydock.image.reference import parse_reference

    domain = parse_reference(reference).domain.rpartition(":")[0] or ""
    host = domain or parse_reference(reference).domain
    return host == "localhost" or host.startswith("127.")


async def _stream_work(http: HttpConnection, work: object, *, first: bytes | None = None) -> None:
    """Run ``work(out)`` in a thread; its progress lines go out as a JSON stream.

    A failure before anything was sent is an error response; after, an ``errorDetail`` line.
    """
    send, receive = trio.open_memory_channel[bytes](64)
    token = trio.lowlevel.current_trio_token()
    failure: list[BaseException] = []
    result: list[bytes] = []

    def thread() -> None:
        try:
            tail = work(_Lines(send, token))  # type: ignore[operator]
            if tail:
                result.append(tail)
        except BaseException as exc:
            failure.append(exc)
        finally:
            trio.from_thread.run(send.aclose, trio_token=token)

    started = False
    async with trio.open_nursery() as nursery:
        nursery.start_soon(trio.to_thread.run_sync, thread)
        async with receive:
            async for line in receive:
                if not started:
                    await http.start_stream()
                    started = True
                    if first:
                        await http.write(first)
                await http.write(line)
    if failure:
        if not started:
            raise failure[0]
        _, message = describe(failure[0])
        await http.write(json_dumps({"errorDetail": {"message": message}, "error": message}))
    elif not started:
        await http.start_stream()
        if first:
            await http.write(first)
    for tail in result:
        await http.write(tail)
    await http.end_stream()


async def images_create(service: Service, http: HttpConnection, request: Request) -> None:
    image = request.arg("fromImage")
    if not image:
        raise HttpError(400, "pydock's API service pulls images (fromImage); import is not done")
    tag = request.arg("tag")
    reference = image if not tag else (f"{image}@{tag}" if ":" in tag else f"{image}:{tag}")
    platform = request.arg("platform") or None
    config = service.config

    def work(out: _Lines) -> bytes:
        from pydock.engine import Engine

        with Engine(config) as engine:
            ref, result = engine.images.pull_image(
                reference,
                platform=platform,
                tls_verify=not _local(reference),
                out=cast(TextIO, out),
            )
        status = "Downloaded newer image" if result.downloaded else "Image is up to date"
        return json_dumps({"status": f"Digest: {result.digest}"}) + json_dumps(
            {"status": f"Status: {status} for {ref.familiar}"}
        )

    await _stream_work(http, work)
    service.event("image", "pull", reference)


async def image_push(service: Service, http: HttpConnection, request: Request) -> None:
    name = request.params["name"]
    tag = request.arg("tag")
    target = f"{name}:{tag}" if tag else name
    config = service.config

    def work(out: _Lines) -> bytes:
        from pydock.engine import Engine

        with Engine(config) as engine:
            ref, result = engine.images.push_image(
                target, target, tls_verify=not _local(target), out=cast(TextIO, out)
            )
        line = f"{ref.tag or 'latest'}: digest: {result.digest} size: {result.size}"
        aux = {"Tag": ref.tag or "latest", "Digest": result.digest, "Size": result.size}
        return json_dumps({"status": line}) + json_dumps({"progressDetail": {}, "aux": aux})

    await _stream_work(http, work)
    service.event("image", "push", target)


async def images_load(service: Service, http: HttpConnection, request: Request) -> None:
    scratch = Path(service.config.root) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, name = tempfile.mkstemp(dir=scratch, prefix="api-load-")
    try:
        with os.fdopen(fd, "wb") as spool:
            async for chunk in http.body_chunks():
                await trio.to_thread.run_sync(spool.write, chunk)

        def load(engine: Engine) -> list[str]:
            return engine.images.load_images(name)

        lines = await service.call(load)
    finally:
        Path(name).unlink(missing_ok=True)
    body = b"".join(json_dumps({"stream": line + "\n"}) for line in lines)
    for line in lines:
        service.event("image", "load", line.partition(": ")[2])
    await http.respond(200, body)


async def images_get(service: Service, http: HttpConnection, request: Request) -> None:
    names = request.query.get("names", []) or [request.params.get("name", "")]
    names = [name for name in names if name]
    if not names:
        raise HttpError(400, "no image names given")
    scratch = Path(service.config.root) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, path = tempfile.mkstemp(dir=scratch, prefix="api-save-")
    os.close(fd)
    try:

        def save(engine: Engine) -> None:
            try:
                engine.images.save_images(names, path)
            except ImageUnknownError as exc:
                raise HttpError(404, f"No such image: {' '.join(names)}") from exc

        await service.call(save)
        await _send_file(http, Path(path), "application/x-tar")
    finally:
        Path(path).unlink(missing_ok=True)


async def _send_file(
    http: HttpConnection,
    path: Path,
    content_type: str,
    headers: list[tuple[str, str]] | None = None,
) -> None:
    await http.start_stream(200, content_type, headers)
    async with await trio.open_file(path, "rb") as source:
        while chunk := await source.read(CHUNK):
            await http.write(chunk)
    await http.end_stream()


# -- containers ------------------------------------------------------------------------------


def _lookup(engine: Engine, name: str) -> ContainerRecord:
    from pydock.containers import lifecycle
    from pydock.containers.errors import ContainerUnknownError

    manager = engine.containers
    try:
        record = manager.lookup(name, doing="finding")
    except ContainerUnknownError as exc:
        raise HttpError(404, f"No such container: {name}") from exc
    current = lifecycle.refresh(manager, record)
    if current is None:
        raise HttpError(404, f"No such container: {name}")
    return current


def _containers_list(
    engine: Engine, everything: bool, filters: dict[str, list[str]], limit: int | None
) -> list[dict[str, object]]:
    from pydock.clock import utc_now
    from pydock.containers import lifecycle
    from pydock.containers.config import ContainerConfig
    from pydock.containers.state import ContainerState

    manager = engine.containers
    now = utc_now()
    listed: list[dict[str, object]] = []
    for record in reversed(manager.store.containers.list_containers()):
        if record.state in (ContainerState.CREATING, ContainerState.REMOVING):
            continue
        current = lifecycle.refresh(manager, record)
        if current is None:
            continue
        if not everything and current.state != ContainerState.RUNNING and "status" not in filters:
            continue
        image_name = ContainerConfig.from_json(current.config).image_name
        if docker.matches(current, filters, image_name):
            listed.append(docker.list_entry(manager, current, now))
    return listed[:limit] if limit and limit > 0 else listed


def _filters(request: Request) -> dict[str, list[str]]:
    text = request.arg("filters")
    if not text:
        return {}
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise HttpError(400, f"invalid filters: {exc}") from exc
    if not isinstance(document, dict):
        raise HttpError(400, "invalid filters")
    filters: dict[str, list[str]] = {}
    for key, value in document.items():
        filters[key] = list(value) if isinstance(value, (list, dict)) else [str(value)]
    return filters


async def containers_list(service: Service, http: HttpConnection, request: Request) -> None:
    listed = await service.call(
        _containers_list, request.flag("all"), _filters(request), request.number("limit")
    )
    await http.json(200, listed)


def _create(engine: Engine, name: str | None, body: dict[str, object]) -> ContainerRecord:
    from pydock.network.errors import NetworkUnknownError

    options = docker.run_options(name, body)
    try:
        return engine.containers.create(options)
    except ImageUnknownError as exc:
        raise HttpError(404, f"No such image: {options.image}") from exc
    except NetworkUnknownError as exc:
        # Not 404: Docker's clients take a 404 from create for a missing image and pull it.
        raise HttpError(400, str(exc)) from exc


async def container_create(service: Service, http: HttpConnection, request: Request) -> None:
    body = await http.json_body()
    host = body.get("HostConfig") or {}
    if not isinstance(host, dict):
        raise HttpError(400, "invalid HostConfig")
    driver, options = docker.storage_choice(host)
    record = await service.call(
        _create, request.arg("name") or None, body, storage=driver, storage_options=options
    )
    service.event("container", "create", record.id, name=record.name, image=str(body["Image"]))
    warning = docker.network_warning(body)
    await http.json(201, {"Id": record.id, "Warnings": [warning] if warning else []})


def _inspect(engine: Engine, name: str) -> dict[str, object]:
    from pydock.containers import views

    record = _lookup(engine, name)
    document = views.container_inspect(engine.containers, record)
    docker.inspect_additions(document, record)
    return document


async def container_inspect(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_inspect, request.params["name"]))


def _start(
    engine: Engine, name: str, clients: Callable[[str], tuple[bool, bool]]
) -> tuple[str, str, Fds, int] | None:
    """Start container ``name``; its streams come back to the service when ``clients`` (of its
    id) says attach clients wait (and whether one gives input). Returns the container's id and
    name, those streams and a pidfd of its monitor; None when it runs already."""
    from pydock.containers import attach, lifecycle
    from pydock.containers.config import parse_restart_policy
    from pydock.containers.errors import ContainerStartError
    from pydock.containers.state import ContainerState

    manager = engine.containers
    record = _lookup(engine, name)
    if record.state == ContainerState.RUNNING:
        return None
    attached, stdin = clients(record.id)
    config = manager.config_of(record)
    hook = lifecycle.exit_command(manager, record)
    if parse_restart_policy(config.restart).name == "no":
        # This service records the exit itself (_reap); the monitor's `pydock cleanup`, a
        # whole Python start taken from the next container's CPU, runs only if it is gone.
        hook = ("/bin/sh", "-c", _UNLESS_ALIVE, str(os.getpid()), *hook)
    files = manager.files(record.id)
    fds = Fds()
    child: list[int] = []
    try:
        if not attached:
            detached = attach.Detached(files, tty=config.tty)
            try:
                started = lifecycle.start(
                    manager,
                    record,
                    detached.stdio(),
                    exit_command=hook,
                    detach=True,
                    log_copies=detached.log_copies(),
                )
                detached.started(started.container)
            finally:
                detached.close()
            return record.id, record.name, fds, started.container.take_monitor()
        files.create()
        fds.logs = (files.open_log(files.stdout_log), files.open_log(files.stderr_log))
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        child.append(null)
        stdio = [null, null, null]
        if not config.tty:
            fds.stdout, out_write = os.pipe2(os.O_CLOEXEC)
            fds.stderr, err_write = os.pipe2(os.O_CLOEXEC)
            child += [out_write, err_write]
            stdio[1:] = [out_write, err_write]
            if stdin and config.interactive:
                in_read, fds.stdin = os.pipe2(os.O_CLOEXEC)
                child.append(in_read)
                stdio[0] = in_read
        started = lifecycle.start(
            manager, record, (stdio[0], stdio[1], stdio[2]), exit_command=hook, detach=True
        )
        fds.console = started.container.console_fd
        started.container.console_fd = None
        return record.id, record.name, fds, started.container.take_monitor()
    except ContainerStartError:
        fds.close()
        if config.auto_remove:
            with contextlib.suppress(PydockError):
                current = manager.store.containers.get(record.id)
                if current is not None:
                    manager.remove(current, force=True)
        raise
    except BaseException:
        fds.close()
        raise
    finally:
        for fd in child:
            os.close(fd)


# The exit command of a container this service starts without a restart policy: `pydock
# cleanup` ($@) only when the service ($0) is gone (stopped, killed) by the time it exits.
_UNLESS_ALIVE = 'kill -0 "$0" 2>/dev/null || exec "$@"'


async def _reap(service: Service, container_id: str, pidfd: int) -> None:
    """Wait for the monitor, keep its container's status, and record the exit (its release
    and ``--rm``) as the monitor's exit command would have."""
    from runtime.container import reap_status

    try:
        await trio.lowlevel.wait_readable(pidfd)
        status = await trio.to_thread.run_sync(reap_status, pidfd)
    finally:
        os.close(pidfd)
    if status is not None:  # else a spawner's monitor: the refresh reads its exit file
        service.exits[container_id] = status
    try:
        with contextlib.suppress(PydockError):
            await current_state(service, container_id)
    finally:
        service.exited(container_id).set()
        service.notify(container_id)  # recorded (and removed, with --rm)


async def start_container(service: Service, name: str) -> bool:
    """Start ``name``, with the attach clients that wait for it; False if it already ran."""

    resolved: list[str] = []

    def attached(container_id: str) -> tuple[bool, bool]:
        # Read in the worker thread, once the name is resolved: a snapshot, as taken before.
        resolved.append(container_id)
        waiting = [c for c in service.waiting.get(container_id, []) if not c.gone]
        return bool(waiting), any(client.stdin for client in waiting)

    try:
        started = await service.call(_start, name, attached)
    except BaseException:
        for container_id in resolved:
            for client in service.waiting.pop(container_id, []):
                client.done.set()
        raise
    if started is None:
        return False
    container_id, container_name, fds, monitor = started
    service.exit_events.pop(container_id, None)
    service.exits.pop(container_id, None)
    service.exited(container_id)
    service.notify(container_id)
    service.forget_old_runs()
    service.nursery.start_soon(_reap, service, container_id, monitor)
    service.event("container", "start", container_id, name=container_name)
    clients = service.waiting.pop(container_id, [])
    if clients:
        session = Session(fds, clients)
        service.sessions[container_id] = session
        service.nursery.start_soon(_run_session, service, container_id, session)
    return True


async def _run_session(service: Service, container_id: str, session: Session) -> None:
    with service.keep_busy():
        try:
            await session.run()
        finally:
            service.sessions.pop(container_id, None)


async def container_start(service: Service, http: HttpConnection, request: Request) -> None:
    await http.drain()
    started = await start_container(service, request.params["name"])
    await http.respond(204 if started else 304)


def _stop(engine: Engine, name: str, seconds: float) -> bool:
    from pydock.containers import lifecycle
    from pydock.containers.state import ContainerState

    record = _lookup(engine, name)
    if record.state != ContainerState.RUNNING:
        return False
    lifecycle.stop(engine.containers, record, seconds)
    return True


async def container_stop(service: Service, http: HttpConnection, request: Request) -> None:
    stopped = await service.call(_stop, request.params["name"], float(request.number("t", 10) or 0))
    if stopped:
        service.event("container", "stop", request.params["name"])
    await http.respond(204 if stopped else 304)


async def container_restart(service: Service, http: HttpConnection, request: Request) -> None:
    await service.call(_stop, request.params["name"], float(request.number("t", 10) or 0))
    await start_container(service, request.params["name"])
    service.event("container", "restart", request.params["name"])
    await http.respond(204)


def _kill(engine: Engine, name: str, number: int) -> str:
    from pydock.containers import lifecycle
    from pydock.containers.errors import ContainerConflictError

    record = _lookup(engine, name)
    try:
        lifecycle.signal_container(engine.containers, record, number)
    except ContainerConflictError as exc:
        raise HttpError(409, f"Container {record.id} is not running") from exc
    return record.id


async def container_kill(service: Service, http: HttpConnection, request: Request) -> None:
    number = docker.signal_number(request.arg("signal"))
    container_id = await service.call(_kill, request.params["name"], number)
    service.event("container", "kill", container_id, signal=str(number))
    await http.respond(204)


def _remove(engine: Engine, name: str, force: bool) -> str:
    from pydock.containers.errors import ContainerConflictError

    record = _lookup(engine, name)
    try:
        engine.containers.remove(record, force=force)
    except ContainerConflictError as exc:
        raise HttpError(
            409,
            f"You cannot remove a {record.state} container {record.id}. Stop the container"
            " before attempting removal or force remove",
        ) from exc
    return record.id


async def container_remove(service: Service, http: HttpConnection, request: Request) -> None:
    container_id = await service.call(_remove, request.params["name"], request.flag("force"))
    service.notify(container_id)
    service.event("container", "destroy", container_id)
    await http.respond(204)


def _prune(engine: Engine) -> list[str]:
    from pydock.containers import lifecycle
    from pydock.containers.state import ContainerState

    manager = engine.containers
    removed = []
    for record in manager.store.containers.list_containers():
        current = lifecycle.refresh(manager, record)
        if current is not None and current.state == ContainerState.EXITED:
            with contextlib.suppress(PydockError):
                manager.remove(current)
                removed.append(current.id)
    return removed


async def containers_prune(service: Service, http: HttpConnection, request: Request) -> None:
    removed = await service.call(_prune)
    await http.json(200, {"ContainersDeleted": removed or None, "SpaceReclaimed": 0})


def _state(
    engine: Engine, container_id: str
) -> tuple[tuple[str, int | None, str] | None, int | None]:
    """``(state, exit code, start time)`` of a container brought up to date (None if gone),
    and the status of a run found ended on the way (which ``--rm`` may have taken along)."""
    from pydock.containers import lifecycle

    manager = engine.containers
    record = manager.store.containers.get(container_id)
    if record is None:
        return None, None
    current, ended = lifecycle.catch_up(manager, record)
    if current is None:
        return None, ended
    return (str(current.state), current.exit_code, current.started or ""), ended


async def current_state(service: Service, container_id: str) -> tuple[str, int | None, str] | None:
    """:func:`_state` of the container, one refresh of it at a time: two threads recording
    the same exit (a waiter's and the monitor's reaper's) raced on its mount and removal."""
    async with service.refresh_lock(container_id):
        state, ended = await service.call(_state, container_id)
    if ended is not None:
        service.exits[container_id] = ended
    return state


def _wait_exit(engine: Engine, container_id: str) -> int | None:
    """The status of the container's run once it ends (within a second), else None."""
    from pydock.containers import lifecycle

    manager = engine.containers
    record = manager.store.containers.get(container_id)
    if record is not None and str(record.state) == "running":
        return lifecycle.wait_exit(manager, record, timeout=1.0)
    return None


async def container_wait(service: Service, http: HttpConnection, request: Request) -> None:
    condition = request.arg("condition") or "not-running"
    if condition not in ("not-running", "next-exit", "removed"):
        raise HttpError(400, f"invalid condition: {condition}")
    record = await service.call(_lookup, request.params["name"])
    container_id = record.id
    await http.start_stream()  # the client starts the container once it has these headers
    # next-exit: a run that began after this request (its start time changed), or that runs
    seen_running = str(record.state) == "running"
    exit_code: int | None = record.exit_code
    while True:
        change = service.changed(container_id)
        state = await current_state(service, container_id)
        if state is None:
            if container_id in service.exit_events:  # started here: its monitor's status
                with trio.move_on_after(5):
                    await service.exited(container_id).wait()
                exit_code = service.exits.get(container_id, exit_code)
            break
        name, code, started = state
        seen_running = seen_running or started != record.started
        exit_code = code if code is not None else exit_code
        if name == "running":
            seen_running = True
            if container_id in service.exit_events:  # started here: its monitor tells
                with trio.move_on_after(1):
                    await service.exited(container_id).wait()
                exit_code = service.exits.get(container_id, exit_code)
                continue
            status = await service.call(_wait_exit, container_id, cancellable=True)
            if status is not None:
                exit_code = status  # kept: an auto-removed container takes it along
            continue
        done = name == "exited" and (condition != "next-exit" or seen_running)
        if condition == "not-running" and name == "created":
            done = True
        if done and condition != "removed":
            break
        with trio.move_on_after(POLL):  # or at once when this service changes it
            await change.wait()
    body = {"StatusCode": exit_code if exit_code is not None else 0, "Error": None}
    await http.write(json_dumps(body))
    await http.end_stream()
    if state is None or condition == "removed":
        service.event("container", "die", container_id, exitCode=str(body["StatusCode"]))


async def container_attach(service: Service, http: HttpConnection, request: Request) -> None:
    record = await service.call(_lookup, request.params["name"])
    config = json.loads(record.config)
    tty = bool(config.get("tty"))
    client = Client(
        http.stream,
        stdin=request.flag("stdin"),
        stdout=request.flag("stdout"),
        stderr=request.flag("stderr"),
    )
    stream = request.flag("stream") or not request.flag("logs")
    client.leftover = await http.hijack(request, RAW_STREAM if tty else MULTIPLEXED_STREAM)
    if not stream:
        return
    session = service.sessions.get(record.id)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(client.read_input)
        if session is not None:
            session.add(client)
        elif str(record.state) == "running":
            # Started by the CLI or an earlier service: follow its logs until it stops.
            await _follow_logs(service, client, record.id, tty)
            client.done.set()
        else:
            service.waiting.setdefault(record.id, []).append(client)
        await client.done.wait()
        nursery.cancel_scope.cancel()
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await http.stream.aclose()


async def _follow_logs(service: Service, client: Client, container_id: str, tty: bool) -> None:
    files = await service.call(lambda engine: engine.containers.files(container_id))
    offsets = [0, 0]
    while True:
        state = await current_state(service, container_id)
        for index, path in enumerate((files.stdout_log, files.stderr_log)):
            data = await trio.to_thread.run_sync(_read_from, path, offsets[index])
            offsets[index] += len(data)
            if data:
                message = data if tty else frame(index + 1, data)
                try:
                    await client.stream.send_all(message)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    return
        if state is None or state[0] != "running":
            return
        await trio.sleep(POLL)


def _read_from(path: Path, offset: int) -> bytes:
    try:
        with open(path, "rb") as source:
            source.seek(offset)
            return source.read()
    except FileNotFoundError:
        return b""


async def container_resize(service: Service, http: HttpConnection, request: Request) -> None:
    record = await service.call(_lookup, request.params["name"])
    session = service.sessions.get(record.id)
    if session is not None:
        session.resize(request.number("h", 24) or 24, request.number("w", 80) or 80)
    await http.respond(200)


async def container_logs(service: Service, http: HttpConnection, request: Request) -> None:
    from pydock.containers import logs

    record = await service.call(_lookup, request.params["name"])
    tty = bool(json.loads(record.config).get("tty"))
    files = await service.call(lambda engine: engine.containers.files(record.id))
    wanted = [request.flag("stdout"), request.flag("stderr")]
    tail = request.arg("tail", "all")
    try:
        lines = None if tail in ("", "all") else int(tail)
        window = logs.Window(
            tail=None if lines is None or lines < 0 else lines,
            since=_log_time(request.arg("since", "")),
            until=_log_time(request.arg("until", "")),
            timestamps=request.flag("timestamps"),
        )
    except ValueError as exc:
        raise HttpError(400, f"reading logs of {request.params['name']}: {exc}") from exc
    pieces: list[tuple[int, bytes]] = []

    def sink(which: int) -> Callable[[bytes], None]:
        return lambda data: pieces.append((which, data))

    readers = [
        logs.LogReader(files.stdout_log, sink(1), window),
        logs.LogReader(files.stderr_log, sink(2), window),
    ]
    await http.start_stream(200, RAW_STREAM if tty else MULTIPLEXED_STREAM)
    follow = request.flag("follow")
    while True:
        state = await current_state(service, record.id)
        running = follow and state is not None and state[0] == "running"
        running = running and not all(reader.finished for reader in readers)
        copied = [await trio.to_thread.run_sync(reader.drain) for reader in readers]
        for which, data in pieces:
            if wanted[which - 1]:
                await http.write(data if tty else frame(which, data))
        pieces.clear()
        if not running:
            if follow and any(copied):
                continue  # one last pass after it stopped
            break
        if not any(copied):
            await trio.sleep(POLL)
    await http.end_stream()


def _log_time(text: str) -> int | None:
    """The API's ``since``/``until``: Unix seconds (0 or empty: not given), as ns."""
    from pydock.containers import logs

    if text in ("", "0"):
        return None
    return logs.parse_time(text)


def _changes(engine: Engine, name: str) -> list[dict[str, object]]:
    from pydock.containers import artifacts

    record = _lookup(engine, name)
    kinds = {"C": 0, "A": 1, "D": 2}
    listed = []
    for change in artifacts.changes(engine.containers, record):
        kind, _, path = str(change).partition(" ")
        listed.append({"Path": path, "Kind": kinds.get(kind, 0)})
    return listed


async def container_changes(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_changes, request.params["name"]))


async def container_export(service: Service, http: HttpConnection, request: Request) -> None:
    scratch = Path(service.config.root) / "tmp"
    scratch.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, path = tempfile.mkstemp(dir=scratch, prefix="api-export-")
    os.close(fd)
    try:

        def export(engine: Engine) -> None:
            from pydock.containers import artifacts

            record = _lookup(engine, request.params["name"])
            with open(path, "wb") as out:
                artifacts.export(engine.containers, record, out)

        await service.call(export)
        await _send_file(http, Path(path), "application/octet-stream")
    finally:
        Path(path).unlink(missing_ok=True)


def _commit(engine: Engine, name: str, reference: str | None, message: str, author: str) -> str:
    from pydock.containers import artifacts

    record = _lookup(engine, name)
    return artifacts.commit(engine.containers, record, reference, message=message, author=author)


async def commit(service: Service, http: HttpConnection, request: Request) -> None:
    await http.drain()
    if request.query.get("changes") and any(request.query["changes"]):
        raise HttpError(400, "commit --change is not supported by pydock")
    repo, tag = request.arg("repo"), request.arg("tag")
    reference = (f"{repo}:{tag}" if tag else repo) or None
    image_id = await service.call(
        _commit,
        request.arg("container"),
        reference,
        request.arg("comment"),
        request.arg("author"),
    )
    service.event("container", "commit", request.arg("container"))
    await http.json(201, {"Id": image_id})


# -- exec ------------------------------------------------------------------------------------


async def exec_create(service: Service, http: HttpConnection, request: Request) -> None:
    body = await http.json_body()
    record = await service.call(_lookup, request.params["name"])
    if str(record.state) != "running":
        raise HttpError(409, f"Container {record.id} is not running")
    command = docker._strings(body.get("Cmd"), "Cmd")
    if not command:
        raise HttpError(400, "No exec command specified")
    exec_id = secrets.token_hex(32)
    service.execs[exec_id] = ExecRecord(exec_id, record.id, body)
    del_old = [key for key, value in service.execs.items() if value.exit_code is not None]
    for key in del_old[:-100]:
        service.execs.pop(key, None)
    await http.json(201, {"Id": exec_id})


def _exec_spec(engine: Engine, record: ExecRecord, detach: bool) -> runtime.ExecSpec:
    """The exec's process spec (checked: the container must be running)."""
    from pydock.containers.execs import ExecOptions, exec_spec

    body = record.options
    options = ExecOptions(
        command=docker._strings(body.get("Cmd"), "Cmd"),
        env=tuple(item for item in docker._strings(body.get("Env"), "Env") if "=" in item),
        workdir=str(body.get("WorkingDir") or "") or None,
        user=str(body.get("User") or "") or None,
        tty=bool(body.get("Tty")),
        interactive=bool(body.get("AttachStdin")),
        detach=detach,
    )
    return exec_spec(engine.containers, record.container_id, options)


def _exec_launch(
    engine: Engine, record: ExecRecord, spec: runtime.ExecSpec, detach: bool
) -> tuple[object, Fds]:
    """Start the exec's process; the service's ends of its streams."""
    from pydock.containers.execs import run_exec

    fds = Fds()
    null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
    child = [null]
    stdio = [null, null, null]
    try:
        if not record.options.get("Tty") and not detach:
            fds.stdout, out_write = os.pipe2(os.O_CLOEXEC)
            fds.stderr, err_write = os.pipe2(os.O_CLOEXEC)
            child += [out_write, err_write]
            stdio[1:] = [out_write, err_write]
            if record.options.get("AttachStdin"):
                in_read, fds.stdin = os.pipe2(os.O_CLOEXEC)
                child.append(in_read)
                stdio[0] = in_read
        process = run_exec(
            spec, (stdio[0], stdio[1], stdio[2]), where=f"executing in {record.container_id}"
        )
        fds.console = process.console_fd
        process.console_fd = None
        return process, fds
    except BaseException:
        fds.close()
        raise
    finally:
        for fd in child:
            os.close(fd)


async def exec_start(service: Service, http: HttpConnection, request: Request) -> None:
    body = await http.json_body()
    record = service.execs.get(request.params["name"])
    if record is None:
        raise HttpError(404, f"No such exec instance: {request.params['name']}")
    if record.running or record.exit_code is not None:
        raise HttpError(409, f"Exec {record.id} has already been started")
    detach = bool(body.get("Detach"))
    tty = bool(record.options.get("Tty"))
    record.running = True
    try:
        spec = await service.call(_exec_spec, record, detach)
        if detach:
            process, fds = await service.call(_exec_launch, record, spec, detach)
    except BaseException:
        record.running = False
        record.exit_code = 126
        raise
    if detach:
        record.pid = getattr(process, "pid", 0)
        fds.close()
        service.nursery.start_soon(_finish_exec, record, process)
        await http.respond(200)
        return
    client = Client(
        http.stream,
        stdin=bool(record.options.get("AttachStdin")),
        stdout=bool(record.options.get("AttachStdout", True)),
        stderr=bool(record.options.get("AttachStderr", True)),
    )
    # The answer's head goes out before the process starts, as Docker's does: a client
    # reading the head through a buffer (docker-py) then reads the output from the socket,
    # and output sent right behind the head would be lost in that buffer.
    try:
        client.leftover = await http.hijack(request, RAW_STREAM if tty else MULTIPLEXED_STREAM)
        process, fds = await service.call(_exec_launch, record, spec, detach)
    except PydockError as exc:
        record.running = False
        record.exit_code = 126
        with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
            message = f"{exc}\n".encode()
            await http.stream.send_all(message if tty else frame(STDERR_FRAME, message))
            await http.stream.aclose()
        return
    except BaseException:
        record.running = False
        record.exit_code = 126
        raise
    record.pid = getattr(process, "pid", 0)
    try:
        session = Session(fds, [client])
        service.sessions[record.id] = session
        async with trio.open_nursery() as nursery:
            nursery.start_soon(client.read_input)
            with service.keep_busy():
                await session.run()
            nursery.cancel_scope.cancel()
    finally:
        fds.close()
        service.sessions.pop(record.id, None)
        await _finish_exec(record, process)
    with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
        await http.stream.aclose()


async def _finish_exec(record: ExecRecord, process: object) -> None:
    with trio.CancelScope(shield=True):
        record.exit_code = await trio.to_thread.run_sync(process.wait)  # type: ignore[attr-defined]
        record.running = False


async def exec_resize(service: Service, http: HttpConnection, request: Request) -> None:
    session = service.sessions.get(request.params["name"])
    if request.params["name"] not in service.execs:
        raise HttpError(404, f"No such exec instance: {request.params['name']}")
    if session is not None:
        session.resize(request.number("h", 24) or 24, request.number("w", 80) or 80)
    await http.respond(201)


async def exec_inspect(service: Service, http: HttpConnection, request: Request) -> None:
    record = service.execs.get(request.params["name"])
    if record is None:
        raise HttpError(404, f"No such exec instance: {request.params['name']}")
    body = record.options
    await http.json(
        200,
        {
            "ID": record.id,
            "ContainerID": record.container_id,
            "Running": record.running,
            "ExitCode": record.exit_code,
            "Pid": record.pid,
            "OpenStdin": bool(body.get("AttachStdin")),
            "OpenStdout": bool(body.get("AttachStdout", True)),
            "OpenStderr": bool(body.get("AttachStderr", True)),
            "CanRemove": False,
            "DetachKeys": "",
            "ProcessConfig": {
                "tty": bool(body.get("Tty")),
                "entrypoint": docker._strings(body.get("Cmd"), "Cmd")[0],
                "arguments": list(docker._strings(body.get("Cmd"), "Cmd")[1:]),
                "privileged": bool(body.get("Privileged")),
                "user": str(body.get("User") or ""),
            },
        },
    )


def registry_auth(request: Request) -> dict[str, object]:
    """The ``X-Registry-Auth`` header, decoded (pydock uses its own stored logins)."""
    text = request.headers.get("x-registry-auth", "")
    if not text:
        return {}
    with contextlib.suppress(ValueError):
        return dict(json.loads(base64.urlsafe_b64decode(text + "==")))
    return {}
