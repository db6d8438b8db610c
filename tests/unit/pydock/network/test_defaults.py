"""Which network a container joins when ``--network`` names none."""

from __future__ import annotations

from pathlib import Path

import pytest

from pydock.network import defaults
from pydock.network.errors import NetworkConfigError


@pytest.fixture
def as_root(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """Root's view, with the host's pydock.conf at a path of the test's own (absent)."""
    config = tmp_path / "etc" / "pydock.conf"
    monkeypatch.setattr(defaults, "is_rootless", lambda: False)
    monkeypatch.setattr(defaults, "SYSTEM_CONFIG", config)
    return config


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_without_settings_the_default_is_the_bridge(as_root: Path) -> None:
    assert defaults.choose(None, publishing=False, env={}) == defaults.Choice("bridge")


def test_a_named_network_is_taken_as_it_is(as_root: Path) -> None:
    write(as_root, '[network]\ndefault = "none"\n')
    for name in ("host", "none", "bridge", "mynet"):
        assert defaults.choose(name, publishing=True, env={}) == defaults.Choice(name)


def test_the_hosts_file_chooses_the_default(as_root: Path) -> None:
    write(as_root, '# the host\'s choice\n[network]\ndefault = "mynet"\n')
    assert defaults.choose(None, publishing=False, env={}).network == "mynet"
    write(as_root, "[storage]\ndriver = 'vfs'\n")  # no network table: the built-in default
    assert defaults.choose(None, publishing=False, env={}).network == "bridge"


def test_the_environment_overrides_the_file(as_root: Path) -> None:
    write(as_root, '[network]\ndefault = "mynet"\n')
    assert defaults.configured({"PYDOCK_NETWORK": "host"}) == "host"
    assert defaults.configured({"PYDOCK_NETWORK": ""}) == "mynet"  # empty: not set


@pytest.mark.parametrize("default", ["none", "host"])
def test_publishing_ports_joins_the_bridge_when_the_default_has_none(
    as_root: Path, default: str
) -> None:
    env = {"PYDOCK_NETWORK": default}
    assert defaults.choose(None, publishing=False, env=env).network == default
    assert defaults.choose(None, publishing=True, env=env).network == "bridge"


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("[network\ndefault = 1", "pydock.conf: "),
        ("[network]\ndefault = 5\n", "network.default must be a network's name"),
        ("[network]\ndefault = ''\n", "network.default must be a network's name"),
        ("network = 'bridge'\n", "pydock.conf: "),
    ],
)
def test_a_broken_file_is_one_clear_error(as_root: Path, text: str, says: str) -> None:
    write(as_root, text)
    with pytest.raises(NetworkConfigError, match=says) as caught:
        defaults.choose(None, publishing=False, env={})
    assert str(as_root) in str(caught.value) and "\n" not in str(caught.value)


def test_rootless_reads_the_users_own_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(defaults, "is_rootless", lambda: True)
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    assert defaults.config_path(env) == tmp_path / "config" / "pydock" / "pydock.conf"
    write(defaults.config_path(env), '[network]\ndefault = "none"\n')
    assert defaults.configured(env) == "none"


def test_rootless_without_pasta_or_tun_falls_back_to_none_and_says_why(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(defaults, "is_rootless", lambda: True)
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    monkeypatch.setattr(defaults, "TUN_DEVICE", str(tmp_path / "no-tun"))
    monkeypatch.setattr(defaults.shutil, "which", lambda name: f"/usr/bin/{name}")
    choice = defaults.choose(None, publishing=False, env=env)
    assert choice.network == "none"
    assert choice.warning is not None
    assert f"{tmp_path / 'no-tun'} cannot be opened by this user" in choice.warning
    assert "\n" not in choice.warning
    # Published ports ask for the bridge: no fallback, its own error will say why.
    assert defaults.choose(None, publishing=True, env=env) == defaults.Choice("bridge")
    # An explicit choice, or a default of none, is not second-guessed.
    assert defaults.choose("bridge", publishing=False, env=env) == defaults.Choice("bridge")
    none = defaults.choose(None, publishing=False, env={**env, "PYDOCK_NETWORK": "none"})
    assert none == defaults.Choice("none")
    monkeypatch.setattr(defaults.shutil, "which", lambda name: None)
    assert defaults.rootless_bridge_problem() == "pasta not found (install the passt package)"


def test_rootless_with_pasta_and_tun_keeps_the_bridge(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(defaults, "is_rootless", lambda: True)
    tun = tmp_path / "tun"
    tun.write_text("")
    tun.chmod(0o666)
    monkeypatch.setattr(defaults, "TUN_DEVICE", str(tun))
    monkeypatch.setattr(defaults.shutil, "which", lambda name: f"/usr/bin/{name}")
    env = {"XDG_CONFIG_HOME": str(tmp_path)}
    assert defaults.choose(None, publishing=False, env=env) == defaults.Choice("bridge")
