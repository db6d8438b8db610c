"""Docker's shapes of top, stats, the cp path stat header and update bodies; error statuses."""

from __future__ import annotations

import base64
import json
import stat

import pytest

from pydock.api import shapes
from pydock.api.http import HttpError
from pydock.api.service import describe
from pydock.containers.errors import ContainerPathError
from pydock.network.errors import NetworkConflictError, NetworkUnknownError


def test_top_keeps_the_spaces_of_the_command() -> None:
    text = "UID PID PPID CMD\nroot 7 1 sleep 300\nroot 9 7 sh -c echo  hi\n"
    assert shapes.top_document(text) == {
        "Titles": ["UID", "PID", "PPID", "CMD"],
        "Processes": [["root", "7", "1", "sleep 300"], ["root", "9", "7", "sh -c echo hi"]],
    }
    assert shapes.top_document("") == {"Titles": [], "Processes": []}


@pytest.mark.parametrize(
    ("mode", "go_mode"),
    [
        (stat.S_IFREG | 0o644, 0o644),
        (stat.S_IFDIR | 0o755, (1 << 31) | 0o755),
        (stat.S_IFLNK | 0o777, (1 << 27) | 0o777),
        (stat.S_IFCHR | 0o666, (1 << 26) | (1 << 21) | 0o666),
        (stat.S_IFBLK | 0o660, (1 << 26) | 0o660),
        (stat.S_IFIFO | 0o600, (1 << 25) | 0o600),
        (stat.S_IFSOCK | 0o755, (1 << 24) | 0o755),
        (stat.S_IFREG | stat.S_ISUID | 0o755, (1 << 23) | 0o755),
        (stat.S_IFDIR | stat.S_ISGID | 0o755, (1 << 31) | (1 << 22) | 0o755),
        (stat.S_IFDIR | stat.S_ISVTX | 0o777, (1 << 31) | (1 << 20) | 0o777),
    ],
)
def test_unix_modes_become_go_file_modes(mode: int, go_mode: int) -> None:
    assert shapes.go_file_mode(mode) == go_mode


def test_go_time_has_no_trailing_zeros() -> None:
    assert shapes.go_time(0) == "1970-01-01T00:00:00Z"
    assert shapes.go_time(1_500_000_000) == "1970-01-01T00:00:01.5Z"
    assert shapes.go_time(86_400_000_000_001) == "1970-01-02T00:00:00.000000001Z"


def test_the_path_stat_header_is_base64_json() -> None:
    header = shapes.path_stat_header("etc", 4096, stat.S_IFDIR | 0o755, 2_000_000_000, "")
    document = json.loads(base64.b64decode(header))
    assert document == {
        "name": "etc",
        "size": 4096,
        "mode": (1 << 31) | 0o755,
        "mtime": "1970-01-01T00:00:02Z",
        "linkTarget": "",
    }


def _sample(**changes: int) -> shapes.StatsSample:
    figures = {
        "read_ns": 1_000_000_000, "cpu_ns": 5, "system_cpu_ns": 100, "memory": 4096,
        "memory_limit": 1 << 20, "pids": 2, "pids_limit": 0, "online_cpus": 2,
    } | changes  # fmt: skip
    return shapes.StatsSample(**figures)


def test_stats_carry_what_the_docker_client_reads() -> None:
    before, now = _sample(), _sample(read_ns=2_000_000_000, cpu_ns=55, system_cpu_ns=200)
    document = shapes.stats_document("abc", "web", now, before)
    assert (document["id"], document["name"]) == ("abc", "/web")
    assert document["memory_stats"] == {"usage": 4096, "limit": 1 << 20, "stats": {}}
    assert document["pids_stats"] == {"current": 2}
    cpu, previous = document["cpu_stats"], document["precpu_stats"]
    assert isinstance(cpu, dict) and isinstance(previous, dict)
    assert (cpu["cpu_usage"]["total_usage"], cpu["system_cpu_usage"]) == (55, 200)
    assert (previous["cpu_usage"]["total_usage"], previous["system_cpu_usage"]) == (5, 100)
    assert cpu["online_cpus"] == 2
    assert (document["read"], document["preread"]) == (
        "1970-01-01T00:00:02Z",
        "1970-01-01T00:00:01Z",
    )
    limited = shapes.stats_document("abc", "web", _sample(pids_limit=50), None)
    assert limited["pids_stats"] == {"current": 2, "limit": 50}
    assert limited["preread"] == shapes.ZERO_TIME


def test_stats_of_a_stopped_container_are_zeros() -> None:
    document = shapes.stats_document("abc", "web", None, None)
    assert document["read"] == shapes.ZERO_TIME
    assert (document["memory_stats"], document["pids_stats"]) == ({}, {})


def test_an_update_body_as_the_docker_client_sends_it() -> None:
    body = {
        "Memory": 64 << 20, "NanoCpus": 0, "CpuQuota": 0, "CpuPeriod": 0, "CpuShares": 0,
        "MemorySwap": 0, "RestartPolicy": {"Name": "", "MaximumRetryCount": 0},
    }  # fmt: skip
    wanted = shapes.update_request(body)
    assert wanted == shapes.UpdateRequest(memory=str(64 << 20))


def test_update_reads_cpus_pids_and_the_restart_policy() -> None:
    assert shapes.update_request({"NanoCpus": 1_500_000_000}).cpus == "1.5"
    assert shapes.update_request({"CpuQuota": 50_000}).cpus == "0.5"
    assert shapes.update_request({"CpuQuota": 50_000, "CpuPeriod": 25_000}).cpus == "2"
    assert shapes.update_request({"PidsLimit": 40}).pids_limit == 40
    assert shapes.update_request({"PidsLimit": -1}).pids_limit == 0  # unlimited
    assert shapes.update_request({"PidsLimit": None}).pids_limit is None
    policy = {"RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 3}}
    assert shapes.update_request(policy).restart == "on-failure:3"
    assert shapes.update_request({}).is_empty()


def test_update_warns_of_what_pydock_does_not_change() -> None:
    wanted = shapes.update_request({"CpuShares": 512, "CpusetCpus": "0", "Memory": 0})
    assert wanted.is_empty()
    assert wanted.warnings == (
        "pydock does not change CpuShares; it was ignored",
        "pydock does not change CpusetCpus; it was ignored",
    )


@pytest.mark.parametrize(
    "body",
    [{"Memory": "64m"}, {"NanoCpus": True}, {"NanoCpus": 1_000_000_000, "CpuQuota": 50_000}],
)
def test_update_refuses_what_it_cannot_read(body: dict[str, object]) -> None:
    with pytest.raises(HttpError) as caught:
        shapes.update_request(body)
    assert caught.value.status == 400


def test_path_and_network_errors_map_to_dockers_statuses() -> None:
    assert describe(ContainerPathError("x"))[0] == 404
    assert describe(NetworkUnknownError("x"))[0] == 404
    assert describe(NetworkConflictError("x"))[0] == 409
