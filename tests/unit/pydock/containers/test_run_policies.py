"""``--restart`` and ``--stop-signal`` as ``run`` reads them."""

from __future__ import annotations

import pytest

from pydock.containers.config import parse_restart_policy, signal_name
from pydock.containers.errors import ContainerConfigError


def test_restart_policies_are_read_and_decide() -> None:
    assert str(parse_restart_policy("on-failure:3")) == "on-failure:3"
    on_failure = parse_restart_policy("on-failure:2")
    assert on_failure.wants_restart(1, 0, stopped=False)
    assert on_failure.wants_restart(1, 1, stopped=False)
    assert not on_failure.wants_restart(1, 2, stopped=False)  # at most 2 restarts
    assert not on_failure.wants_restart(0, 0, stopped=False)  # a success is not a failure
    assert parse_restart_policy("on-failure").wants_restart(1, 100, stopped=False)
    for name in ("always", "unless-stopped"):
        policy = parse_restart_policy(name)
        assert policy.wants_restart(0, 5, stopped=False)
        assert not policy.wants_restart(0, 5, stopped=True)  # stop and kill have the last word
    assert not parse_restart_policy("no").wants_restart(1, 0, stopped=False)


@pytest.mark.parametrize("text", ["sometimes", "always:3", "on-failure:x", "on-failure:-1", ""])
def test_bad_restart_policies_are_refused(text: str) -> None:
    with pytest.raises(ContainerConfigError, match="--restart"):
        parse_restart_policy(text)


def test_stop_signals_by_name_or_number() -> None:
    assert signal_name("usr1") == "SIGUSR1"
    assert signal_name("SIGTERM") == "SIGTERM"
    assert signal_name("9") == "SIGKILL"
    with pytest.raises(ContainerConfigError, match="no such signal"):
        signal_name("NOPE")
