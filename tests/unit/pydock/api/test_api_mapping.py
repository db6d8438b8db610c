"""The service's pure parts: request targets, Docker's framing, create bodies, error statuses."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio
import trio.testing

from pydock.api.docker import port_entries, run_options, signal_number, storage_choice
from pydock.api.http import HttpConnection, HttpError, frame, parse_target
from pydock.api.service import describe
from pydock.containers.errors import ContainerConflictError, ContainerStartError
from pydock.errors import ImageUnknownError
from pydock.network import defaults


def test_a_version_prefix_is_taken_off() -> None:
    assert parse_target("/v1.41/containers/json?all=1") == ("/containers/json", {"all": ["1"]},
                                                           (1, 41))  # fmt: skip
    assert parse_target("/_ping") == ("/_ping", {}, None)
    assert parse_target("/images/localhost%3A5000%2Fa/json")[0] == "/images/localhost:5000/a/json"


def test_frames_carry_the_stream_and_the_length() -> None:
    assert frame(2, b"err") == b"\x02\x00\x00\x00\x00\x00\x00\x03err"


def test_a_create_body_becomes_run_options() -> None:
    options = run_options(
        "web",
        {
            "Image": "busybox",
            "Cmd": ["echo", "hi"],
            "Entrypoint": ["/bin/sh", "-c"],
            "Env": ["A=1", "FROM_THE_SERVICE"],
            "Tty": True,
            "OpenStdin": True,
            "HostConfig": {
                "Binds": ["/tmp:/data:ro"],
                "Memory": 64 * 1024 * 1024,
                "NanoCpus": 500_000_000,
                "PidsLimit": 20,
                "CapAdd": ["NET_ADMIN"],
                "NetworkMode": "default",
                "AutoRemove": True,
            },
        },
    )
    assert options.entrypoint == "/bin/sh"
    assert options.command == ("-c", "echo", "hi")
    assert options.env == ("A=1",)  # a bare name never reads the service's environment
    assert (options.memory, options.cpus, options.pids_limit) == (str(64 << 20), "0.5", 20)
    assert options.network == "none"
    assert options.volumes == ("/tmp:/data:ro",)
    assert options.tty and options.interactive and options.auto_remove
    assert options.cap_add == ("NET_ADMIN",)


def test_the_default_network_is_the_clis_default(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """As ``pydock run`` without --network: the default network (the bridge, unless the host
    chose another); a default of none joins the bridge when ports are published."""
    monkeypatch.setattr(defaults, "is_rootless", lambda: False)
    monkeypatch.setattr(defaults, "SYSTEM_CONFIG", tmp_path / "pydock.conf")  # none here
    monkeypatch.delenv("PYDOCK_NETWORK", raising=False)
    plain = run_options(None, {"Image": "busybox", "HostConfig": {"NetworkMode": "default"}})
    assert (plain.network, plain.publish) == ("bridge", ())
    monkeypatch.setenv("PYDOCK_NETWORK", "none")
    plain = run_options(None, {"Image": "busybox", "HostConfig": {"NetworkMode": "default"}})
    assert (plain.network, plain.publish) == ("none", ())
    published = run_options(
        None,
        {
            "Image": "busybox",
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {
                "PortBindings": {
                    "80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}],
                    "53/udp": [{"HostIp": "", "HostPort": ""}],
                    "81/tcp": None,
                }
            },
        },
    )
    assert published.network == "bridge"
    assert published.publish == ("127.0.0.1:8080:80/tcp", "::53/udp")
    assert published.expose == ("80/tcp",)
    every = run_options(None, {"Image": "busybox", "HostConfig": {"PublishAllPorts": True}})
    assert (every.network, every.publish_all) == ("bridge", True)
    named = run_options(None, {"Image": "busybox", "HostConfig": {"NetworkMode": "bridge"}})
    assert named.network == "bridge"


def test_a_user_network_with_aliases_and_dns() -> None:
    options = run_options(
        None,
        {
            "Image": "busybox",
            "Hostname": "web",
            "Domainname": "example.test",
            "HostConfig": {
                "NetworkMode": "mynet",
                "ExtraHosts": ["db:10.0.0.5"],
                "Dns": ["10.0.0.53"],
                "DnsSearch": ["example.test"],
                "DnsOptions": ["ndots:2"],
            },
            "NetworkingConfig": {
                "EndpointsConfig": {"mynet": {"Aliases": ["www", "front"], "IPAMConfig": {}}}
            },
        },
    )
    assert (options.network, options.network_aliases) == ("mynet", ("www", "front"))
    assert (options.hostname, options.domainname) == ("web", "example.test")
    assert options.add_hosts == ("db:10.0.0.5",)
    assert (options.dns, options.dns_search, options.dns_options) == (
        ("10.0.0.53",),
        ("example.test",),
        ("ndots:2",),
    )


@pytest.mark.parametrize(
    ("policy", "expected"),
    [
        (None, "no"),
        ({"Name": ""}, "no"),
        ({"Name": "always"}, "always"),
        ({"Name": "unless-stopped", "MaximumRetryCount": 0}, "unless-stopped"),
        ({"Name": "on-failure"}, "on-failure"),
        ({"Name": "on-failure", "MaximumRetryCount": 2}, "on-failure:2"),
    ],
)
def test_restart_policies_as_the_clis(policy: dict[str, object] | None, expected: str) -> None:
    host = {} if policy is None else {"RestartPolicy": policy}
    assert run_options(None, {"Image": "busybox", "HostConfig": host}).restart == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"HostConfig": {"RestartPolicy": {"Name": "sometimes"}}}, "invalid restart policy"),
        (
            {"HostConfig": {"RestartPolicy": {"Name": "always", "MaximumRetryCount": 3}}},
            "cannot be used with restart policy 'always'",
        ),
        (
            {
                "HostConfig": {"NetworkMode": "mynet"},
                "NetworkingConfig": {
                    "EndpointsConfig": {"mynet": {"IPAMConfig": {"IPv4Address": "10.1.0.9"}}}
                },
            },
            "fixed address",
        ),
        (
            {"NetworkingConfig": {"EndpointsConfig": {"a": {}, "b": {}}}},
            "cannot be connected to network endpoints: a, b",
        ),
        (
            {
                "HostConfig": {"NetworkMode": "a"},
                "NetworkingConfig": {"EndpointsConfig": {"b": {}}},
            },
            "not the container's network mode",
        ),
        ({"HostConfig": {"Links": ["db:db"]}}, "links"),
        ({"HostConfig": {"PortBindings": {"80/tcp": "8080"}}}, "invalid PortBindings"),
    ],
)
def test_what_pydock_cannot_do_is_refused(body: dict[str, object], message: str) -> None:
    with pytest.raises(HttpError, match=message) as caught:
        run_options(None, {"Image": "busybox", **body})
    assert caught.value.status == 400


def test_list_ports_as_docker_shows_them() -> None:
    shown = port_entries({"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "8080"}], "53/udp": None})
    assert shown == [
        {"IP": "127.0.0.1", "PrivatePort": 80, "Type": "tcp", "PublicPort": 8080},
        {"PrivatePort": 53, "Type": "udp"},
    ]


def test_storage_opt_names_the_driver_and_its_options() -> None:
    chosen = storage_choice({"StorageOpt": {"driver": "vfs", "vfs.copy": "readwrite"}})
    assert chosen == ("vfs", {"vfs.copy": "readwrite"})
    with pytest.raises(HttpError, match="size is not supported"):
        storage_choice({"StorageOpt": {"size": "10G"}})


def test_signals_by_name_or_number() -> None:
    assert (signal_number("TERM"), signal_number("SIGHUP"), signal_number("9")) == (15, 1, 9)
    with pytest.raises(HttpError):
        signal_number("NOPE")


def test_errors_map_to_dockers_statuses() -> None:
    assert describe(ImageUnknownError("x"))[0] == 404
    assert describe(ContainerConflictError("x"))[0] == 409
    status, message = describe(ContainerStartError("starting c: no such thing", exit_code=127))
    assert status == 400
    assert "executable file not found" in message  # what the docker client turns into 127


def test_a_body_past_its_bound_is_refused_unread() -> None:
    async def main() -> None:
        client, server = trio.testing.memory_stream_pair()
        connection = HttpConnection(server)
        await client.send_all(
            b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Length: 99999999\r\n\r\n"
        )
        await connection.read_request()
        with pytest.raises(HttpError) as caught:
            await connection.json_body()
        assert caught.value.status == 413

    trio.run(main)


def test_an_error_answer_to_head_has_no_body() -> None:
    """h11 refuses a body after HEAD: the error's headers go out alone, and the connection
    serves the next request."""

    async def main() -> None:
        client, server = trio.testing.memory_stream_pair()
        connection = HttpConnection(server)
        await client.send_all(b"HEAD /containers/x/archive?path=/a HTTP/1.1\r\nHost: d\r\n\r\n")
        request = await connection.read_request()
        assert request is not None and request.method == "HEAD"
        await connection.error(404, "Could not find the file /a in container x")
        answer = await client.receive_some(65536)
        assert answer.startswith(b"HTTP/1.1 404")
        assert answer.endswith(b"\r\n\r\n")  # headers only
        await connection.drain()
        assert connection.next_request_allowed()

    trio.run(main)


def test_a_change_wakes_the_waits_that_took_its_event_before() -> None:
    """A wait takes the container's change event, then reads the state: a change made after
    the event was taken wakes it (none is lost), and the next wait gets a fresh event."""
    from pydock.api.service import Service
    from pydock.settings import EngineConfig

    async def main() -> None:
        async with trio.open_nursery() as nursery:
            service = Service(EngineConfig(Path("/nonexistent"), Path("/nonexistent")), nursery)
            taken = service.changed("c1")
            assert service.changed("c1") is taken
            other = service.changed("c2")
            service.notify("c1")
            assert taken.is_set()
            assert not other.is_set()
            fresh = service.changed("c1")
            assert fresh is not taken and not fresh.is_set()
            service.notify("gone")  # nobody waits: nothing to do
            with trio.fail_after(5):
                async with trio.open_nursery() as waiters:
                    waiters.start_soon(fresh.wait)
                    await trio.testing.wait_all_tasks_blocked()
                    service.notify("c1")
            service.pool.shutdown()

    trio.run(main)
