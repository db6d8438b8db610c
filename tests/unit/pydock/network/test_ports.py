"""``-p`` parsing and Docker's ways of showing ports."""

from __future__ import annotations

import pytest

from pydock.network.errors import NetworkConfigError
from pydock.network.ports import PortRequest, expose_requests, parse_publish, ps_text
from pydock.network.views import port_lines
from pydock.store.networks import PortBinding


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("80", PortRequest(80)),
        ("8080:80", PortRequest(80, host_port=8080)),
        ("127.0.0.1:8080:80", PortRequest(80, "tcp", "127.0.0.1", 8080)),
        ("127.0.0.1::80/udp", PortRequest(80, "udp", "127.0.0.1", 0)),
        ("53:53/udp", PortRequest(53, "udp", "0.0.0.0", 53)),
    ],
)
def test_publish_forms(text: str, expected: PortRequest) -> None:
    assert parse_publish(text) == expected
    assert parse_publish(expected.text()) == expected  # the stored form reads back the same


@pytest.mark.parametrize(
    "text", ["", "0", "70000", "80/sctp", "a:80", "1.2.3.4:5:6:7", "300.0.0.1:80:80", "[::1]:80:80"]
)
def test_publish_rejects(text: str) -> None:
    with pytest.raises(NetworkConfigError, match="-p"):
        parse_publish(text)


def test_expose_and_shown() -> None:
    assert expose_requests(["80/tcp", "53/udp", "x/tcp"]) == [
        PortRequest(80),
        PortRequest(53, "udp"),
    ]
    bindings = [("127.0.0.1", 8080, "tcp", 80)]
    assert ps_text(bindings, ["80/tcp", "443/tcp"]) == "127.0.0.1:8080->80/tcp, 443/tcp"
    held = [
        PortBinding("c", "tcp", 80, "127.0.0.1", 8080),
        PortBinding("c", "udp", 53, "0.0.0.0", 5353),
    ]
    assert port_lines(held) == ["80/tcp -> 127.0.0.1:8080", "53/udp -> 0.0.0.0:5353"]
    assert port_lines(held, "80") == ["127.0.0.1:8080"]
    assert port_lines(held, "53") == []  # a bare number means tcp, as in Docker
    assert port_lines(held, "53/udp") == ["0.0.0.0:5353"]
