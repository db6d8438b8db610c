"""The endpoints of networks and volumes, on the engine code of ``pydock network ...`` and
``pydock volume ...``.

Containers made through the service are on their own network namespace (``none``) or the
host's; networks made here are the CLI's (``network create`` makes a bridge on the host).
``volume prune`` follows API 1.41, the version served: every unused volume goes, named ones
too, unless the filter ``all=false`` asks for anonymous ones only (1.42's default).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pydock.api.http import HttpConnection, HttpError, Request
from pydock.api.routes import _filters, _lookup
from pydock.api.service import Service

if TYPE_CHECKING:
    from pydock.engine import Engine
    from pydock.network.service import Networks
    from pydock.store.networks import NetworkRecord

N = r"/networks/(?P<name>[^/]+)"
V = r"/volumes/(?P<name>[^/]+)"
NETWORK_FILTERS = ("name", "id", "driver", "type")
VOLUME_FILTERS = ("dangling", "name", "label", "driver")


def register(service: Service) -> None:
    """The endpoints of this module."""
    route = service.route
    route("GET", "/networks")(networks_list)
    route("POST", "/networks/create")(network_create)
    route("POST", "/networks/prune")(networks_prune)
    route("GET", N)(network_inspect)
    route("DELETE", N)(network_remove)
    route("POST", N + "/connect")(network_connect)
    route("POST", N + "/disconnect")(network_disconnect)
    route("GET", "/volumes")(volumes_list)
    route("POST", "/volumes/create")(volume_create)
    route("POST", "/volumes/prune")(volumes_prune)
    route("GET", V)(volume_inspect)
    route("DELETE", V)(volume_remove)


def _checked(filters: dict[str, list[str]], known: tuple[str, ...]) -> dict[str, list[str]]:
    for key in filters:
        if key not in known:
            raise HttpError(400, f"invalid filter '{key}'")
    return filters


# -- networks --------------------------------------------------------------------------------


def _networks(engine: Engine) -> Networks:
    from pydock.containers import networking

    return networking.service(engine.containers)


def _network(engine: Engine, name: str) -> tuple[Networks, NetworkRecord]:
    from pydock.network.errors import NetworkUnknownError

    networks = _networks(engine)
    try:
        return networks, networks.lookup(name, doing="finding network")
    except NetworkUnknownError as exc:
        raise HttpError(404, f"network {name} not found") from exc


def _network_matches(record: NetworkRecord, filters: dict[str, list[str]]) -> bool:
    from pydock.network.service import PREDEFINED

    kind = "builtin" if record.name in PREDEFINED else "custom"
    return (
        ("name" not in filters or any(value in record.name for value in filters["name"]))
        and ("id" not in filters or any(record.id.startswith(v) for v in filters["id"]))
        and ("driver" not in filters or record.driver in filters["driver"])
        and ("type" not in filters or kind in filters["type"])
    )


def _networks_list(engine: Engine, filters: dict[str, list[str]]) -> list[dict[str, object]]:
    from pydock.network.service import network_view

    networks = _networks(engine)
    return [
        network_view(record, networks.members(record))
        for record in networks.list_networks()
        if _network_matches(record, filters)
    ]


async def networks_list(service: Service, http: HttpConnection, request: Request) -> None:
    filters = _checked(_filters(request), NETWORK_FILTERS)
    await http.json(200, await service.call(_networks_list, filters))


def _network_inspect(engine: Engine, name: str) -> dict[str, object]:
    from pydock.network.service import network_view

    networks, record = _network(engine, name)
    return network_view(record, networks.members(record))


async def network_inspect(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_network_inspect, request.params["name"]))


def _create_arguments(body: dict[str, object]) -> dict[str, object]:
    """``network create``'s arguments from Docker's body (what pydock cannot do is a 400)."""
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise HttpError(400, "a network needs a name (Name)")
    if body.get("EnableIPv6"):
        raise HttpError(400, "pydock's networks have no IPv6 (EnableIPv6)")
    ipam = body.get("IPAM") or {}
    configs = ipam.get("Config") if isinstance(ipam, dict) else None
    configs = configs or []
    if not isinstance(configs, list) or len(configs) > 1:
        raise HttpError(400, "pydock's networks have one IPv4 subnet (IPAM.Config)")
    subnet = gateway = None
    if configs:
        config = configs[0]
        if not isinstance(config, dict) or any(
            config[key] for key in set(config) - {"Subnet", "Gateway"}
        ):
            raise HttpError(400, "pydock's networks take Subnet and Gateway only (IPAM.Config)")
        subnet = str(config.get("Subnet") or "") or None
        gateway = str(config.get("Gateway") or "") or None
    return {
        "name": name,
        "driver": str(body.get("Driver") or "bridge"),
        "subnet": subnet,
        "gateway": gateway,
        "internal": bool(body.get("Internal")),
    }


def _network_create(engine: Engine, arguments: dict[str, object]) -> NetworkRecord:
    return _networks(engine).create(**arguments)  # type: ignore[arg-type]


async def network_create(service: Service, http: HttpConnection, request: Request) -> None:
    arguments = _create_arguments(await http.json_body())
    record = await service.call(_network_create, arguments)
    service.event("network", "create", record.id, name=record.name, type=record.driver)
    await http.json(201, {"Id": record.id, "Warning": ""})


def _network_remove(engine: Engine, name: str) -> NetworkRecord:
    from pydock.network.service import PREDEFINED

    networks, record = _network(engine, name)
    if record.name in PREDEFINED:
        raise HttpError(403, f"{record.name} is a pre-defined network and cannot be removed")
    networks.forget_stale()
    networks.remove(record)
    return record


async def network_remove(service: Service, http: HttpConnection, request: Request) -> None:
    record = await service.call(_network_remove, request.params["name"])
    service.event("network", "destroy", record.id, name=record.name, type=record.driver)
    await http.respond(204)


def _networks_prune(engine: Engine) -> list[str]:
    return _networks(engine).prune()


async def networks_prune(service: Service, http: HttpConnection, request: Request) -> None:
    if _filters(request):
        raise HttpError(400, "pydock's network prune takes no filters")
    removed = await service.call(_networks_prune)
    for name in removed:
        service.event("network", "destroy", name, name=name)
    await http.json(200, {"NetworksDeleted": removed or None})


def _connect(engine: Engine, network: str, container: str, aliases: tuple[str, ...]) -> str:
    """``network connect``; the network's id."""
    from pydock.containers import networking

    _, record = _network(engine, network)
    networking.connect(engine.containers, _lookup(engine, container), record.name, aliases)
    return record.id


def _disconnect(engine: Engine, network: str, container: str) -> str:
    """``network disconnect``; the network's id."""
    from pydock.containers import networking

    _, record = _network(engine, network)
    networking.disconnect(engine.containers, _lookup(engine, container), record.name)
    return record.id


def _container_of(body: dict[str, object]) -> str:
    container = body.get("Container")
    if not isinstance(container, str) or not container:
        raise HttpError(400, "no container given (Container)")
    return container


async def network_connect(service: Service, http: HttpConnection, request: Request) -> None:
    body = await http.json_body()
    container = _container_of(body)
    endpoint = body.get("EndpointConfig") or {}
    aliases = endpoint.get("Aliases") if isinstance(endpoint, dict) else None
    if aliases is not None and not (
        isinstance(aliases, list) and all(isinstance(a, str) and a for a in aliases)
    ):
        raise HttpError(400, "invalid EndpointConfig.Aliases")
    network_id = await service.call(
        _connect, request.params["name"], container, tuple(aliases or ())
    )
    service.event("network", "connect", network_id, container=container)
    await http.respond(200)


async def network_disconnect(service: Service, http: HttpConnection, request: Request) -> None:
    container = _container_of(await http.json_body())
    network_id = await service.call(_disconnect, request.params["name"], container)
    service.event("network", "disconnect", network_id, container=container)
    await http.respond(200)


# -- volumes ---------------------------------------------------------------------------------


def _volumes_list(engine: Engine, filters: dict[str, list[str]]) -> dict[str, object]:
    from pydock.containers import volumes

    if "driver" in filters and "local" not in filters["driver"]:
        return {"Volumes": [], "Warnings": None}
    wanted = {key: values for key, values in filters.items() if key != "driver"}
    found = volumes.select(engine.store, wanted, doing="listing volumes")
    documents = [volumes.inspect_document(engine.root, record) for record in found]
    return {"Volumes": documents, "Warnings": None}


async def volumes_list(service: Service, http: HttpConnection, request: Request) -> None:
    filters = _checked(_filters(request), VOLUME_FILTERS)
    await http.json(200, await service.call(_volumes_list, filters))


def _volume_inspect(engine: Engine, name: str) -> dict[str, object]:
    from pydock.containers import volumes

    return volumes.inspect_document(engine.root, volumes.get(engine.store, name, doing="get"))


async def volume_inspect(service: Service, http: HttpConnection, request: Request) -> None:
    await http.json(200, await service.call(_volume_inspect, request.params["name"]))


def _labels(body: dict[str, object]) -> dict[str, str]:
    labels = body.get("Labels") or {}
    if not isinstance(labels, dict):
        raise HttpError(400, "invalid Labels")
    return {str(key): str(value) for key, value in labels.items()}


def _volume_create(engine: Engine, name: str | None, labels: dict[str, str]) -> dict[str, object]:
    from pydock.containers import volumes

    record = volumes.create(engine.store, engine.root, name, labels=labels)
    return volumes.inspect_document(engine.root, record)


async def volume_create(service: Service, http: HttpConnection, request: Request) -> None:
    body = await http.json_body()
    driver = str(body.get("Driver") or "local")
    if driver != "local":
        raise HttpError(400, f"only the local volume driver is supported, not {driver}")
    if body.get("DriverOpts"):
        raise HttpError(400, "pydock's local volumes take no driver options (DriverOpts)")
    name = body.get("Name")
    if name is not None and not isinstance(name, str):
        raise HttpError(400, "invalid Name")
    document = await service.call(_volume_create, name or None, _labels(body))
    service.event("volume", "create", str(document["Name"]), driver="local")
    await http.json(201, document)


def _volume_remove(engine: Engine, name: str, force: bool) -> None:
    from pydock.containers import volumes

    volumes.remove(engine.store, engine.root, name, force=force)


async def volume_remove(service: Service, http: HttpConnection, request: Request) -> None:
    name = request.params["name"]
    await service.call(_volume_remove, name, request.flag("force"))
    service.event("volume", "destroy", name, driver="local")
    await http.respond(204)


def _volumes_prune(engine: Engine, every_unused: bool) -> tuple[list[str], int]:
    from pydock.containers import volumes

    return volumes.prune(engine.store, engine.root, every_unused=every_unused)


async def volumes_prune(service: Service, http: HttpConnection, request: Request) -> None:
    from pydock.errors import UsageError
    from pydock.filters import boolean

    filters = _checked(_filters(request), ("all",))
    every_unused = True
    if "all" in filters:
        try:
            every_unused = boolean(filters["all"], "all", doing="pruning volumes")
        except UsageError as exc:
            raise HttpError(400, str(exc)) from exc
    removed, reclaimed = await service.call(_volumes_prune, every_unused)
    for name in removed:
        service.event("volume", "destroy", name, driver="local")
    await http.json(200, {"VolumesDeleted": removed or None, "SpaceReclaimed": reclaimed})
