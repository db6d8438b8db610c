"""Healthchecks, as Docker's: the check's settings, its state, and the process that runs it.

The settings come from the image's ``Healthcheck`` and the ``--health-*`` flags (a flag wins,
``--no-healthcheck`` turns the image's off). While a container runs, a checker process of its
own (started with it, ended when its init is gone) runs the check inside it as ``exec`` does,
every interval, and keeps ``State.Health`` in the container's directory (``health.json``):
``starting`` until a check passes, ``healthy``, or ``unhealthy`` after ``retries`` failures in
a row; failures within the start period do not count. The log holds the last five results.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from pydock.clock import parse_go_duration
from pydock.containers.errors import ContainerConfigError
from pydock.containers.state import ContainerState

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager
    from pydock.store import ContainerRecord

STATE_FILE = "health.json"
# Docker's defaults and bounds, in nanoseconds.
DEFAULT_INTERVAL = 30_000_000_000
DEFAULT_TIMEOUT = 30_000_000_000
DEFAULT_RETRIES = 3
MINIMUM_DURATION = 1_000_000
LOG_ENTRIES = 5
MAX_OUTPUT = 4096
# How often the checker looks whether its container is still there.
POLL_SECONDS = 0.2
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


def parse_duration(text: str, flag: str) -> int:
    """A Go duration (``30s``, ``1m30s``, ``500ms``) in nanoseconds, as Docker's flags take it."""
    value = parse_go_duration(text)
    if value is not None:
        return value
    if text.lstrip("+-").replace(".", "", 1).isdigit():
        raise ContainerConfigError(
            f'checking {flag}: invalid argument "{text}" for "{flag}" flag: time: missing unit'
            f' in duration "{text}"'
        )
    raise ContainerConfigError(
        f'checking {flag}: invalid argument "{text}" for "{flag}" flag: time: invalid'
        f' duration "{text}"'
    )


@dataclass(frozen=True)
class HealthFlags:
    """The ``--health-*`` flags as given (durations as text)."""

    cmd: str | None = None
    interval: str | None = None
    timeout: str | None = None
    retries: int | None = None
    start_period: str | None = None
    disabled: bool = False

    def is_empty(self) -> bool:
        """Whether no health flag was given."""
        given = (self.cmd, self.interval, self.timeout, self.retries, self.start_period)
        return all(value is None for value in given) and not self.disabled


@dataclass(frozen=True)
class Healthcheck:
    """Docker's ``Config.Healthcheck``: the test (``CMD-SHELL``, ``CMD`` or ``NONE`` first)
    and durations in nanoseconds (0: Docker's default)."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0

    @property
    def is_active(self) -> bool:
        """Whether there is a check to run."""
        return bool(self.test) and self.test[0] in ("CMD", "CMD-SHELL") and len(self.test) > 1

    def command(self) -> tuple[str, ...]:
        """The command the check runs inside the container."""
        if self.test[0] == "CMD-SHELL":
            return ("/bin/sh", "-c", self.test[1])
        return self.test[1:]

    def view(self) -> dict[str, object]:
        """``Config.Healthcheck`` as Docker shows it (zero fields left out)."""
        view: dict[str, object] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("Retries", self.retries),
        ):
            if value:
                view[key] = value
        return view

    def to_text(self) -> str:
        """The JSON text the container's config keeps."""
        return json.dumps(self.view())

    @classmethod
    def from_text(cls, text: str) -> Healthcheck | None:
        """Read back :meth:`to_text`'s form (``""``: none)."""
        return from_image({"Healthcheck": json.loads(text)}) if text else None


def from_image(config: Mapping[str, object]) -> Healthcheck | None:
    """The image config's ``Healthcheck``, if it has one."""
    found = config.get("Healthcheck")
    if not isinstance(found, dict):
        return None
    test = found.get("Test")

    def number(key: str) -> int:
        value = found.get(key)
        return value if isinstance(value, int) else 0

    return Healthcheck(
        tuple(str(word) for word in test) if isinstance(test, list) else (),
        number("Interval"),
        number("Timeout"),
        number("Retries"),
        number("StartPeriod"),
    )


def resolve(flags: HealthFlags, image: Healthcheck | None) -> Healthcheck | None:
    """The container's healthcheck: the flags over the image's, checked as Docker checks."""
    if flags.disabled:
        if not flags.is_empty() and flags != HealthFlags(disabled=True):
            raise ContainerConfigError(
                "checking --no-healthcheck: --no-healthcheck conflicts with --health-* options"
            )
        return Healthcheck(("NONE",))
    if flags.is_empty():
        return image
    durations = {}
    for name, text in (
        ("interval", flags.interval),
        ("timeout", flags.timeout),
        ("start-period", flags.start_period),
    ):
        value = parse_duration(text, f"--health-{name}") if text is not None else 0
        if value < 0:
            raise ContainerConfigError(
                f"checking --health-{name}: --health-{name} cannot be negative"
            )
        if 0 < value < MINIMUM_DURATION:
            title = {"interval": "Interval", "timeout": "Timeout", "start-period": "StartPeriod"}
            raise ContainerConfigError(
                f"checking --health-{name}: {title[name]} in Healthcheck cannot be less than 1ms"
            )
        durations[name] = value
    retries = flags.retries or 0
    if retries < 0:
        raise ContainerConfigError("checking --health-retries: --health-retries cannot be negative")
    base = image or Healthcheck()
    test = ("CMD-SHELL", flags.cmd) if flags.cmd else base.test
    return Healthcheck(
        test,
        durations["interval"] or base.interval,
        durations["timeout"] or base.timeout,
        retries or base.retries,
        durations["start-period"] or base.start_period,
    )


# -- state ---------------------------------------------------------------------------------------


def current_state(manager: ContainerManager, record: ContainerRecord) -> dict[str, object] | None:
    """``State.Health`` of a container (inspect); None without an active check or before its
    first start."""
    check = Healthcheck.from_text(manager.config_of(record).healthcheck)
    if check is None or not check.is_active:
        return None
    return read_state(manager.files(record.id).directory)


def current_status(manager: ContainerManager, record: ContainerRecord) -> str:
    """``State.Health.Status`` of a running container with a check, else ``""`` (ps)."""
    if record.state != ContainerState.RUNNING:
        return ""
    state = current_state(manager, record)
    return str(state.get("Status", "")) if state is not None else ""


def state_path(directory: Path) -> Path:
    """Where a container's ``State.Health`` is kept."""
    return directory / STATE_FILE


def read_state(directory: Path) -> dict[str, object] | None:
    """``State.Health`` of the container whose files are in ``directory``, if it has one."""
    try:
        document = json.loads(state_path(directory).read_text())
    except (OSError, ValueError):
        return None
    return document if isinstance(document, dict) else None


def write_state(directory: Path, state: Mapping[str, object]) -> None:
    """Replace ``State.Health`` atomically (nothing when the container is gone)."""
    path = state_path(directory)
    partial = path.with_name(f".{path.name}.partial")
    with contextlib.suppress(FileNotFoundError):
        partial.write_text(json.dumps(state))
        os.replace(partial, path)


def starting() -> dict[str, object]:
    """The state of a container that just started."""
    return {"Status": STARTING, "FailingStreak": 0, "Log": []}


# -- the checker ---------------------------------------------------------------------------------


def spawn(
    pydock: Sequence[str], container_id: str, pid: int, directory: Path, check: Healthcheck
) -> None:
    """Start the checker of a container that runs as ``pid``, in a session of its own, holding
    none of this process's descriptors; ``pydock`` is the command line before a verb."""
    write_state(directory, starting())
    plan = {
        "pydock": list(pydock),
        "id": container_id,
        "pid": pid,
        "directory": str(directory),
        "check": check.to_text(),
    }
    subprocess.Popen(
        [sys.executable, "-m", "pydock.containers.health", json.dumps(plan)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        close_fds=True,
    )


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat().replace("+00:00", "Z")


def _probe(argv: Sequence[str], timeout: float) -> tuple[int, str]:
    """Run one check; its exit code and output (-1 and Docker's words on a timeout)."""
    process = subprocess.Popen(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.terminate()  # exec passes it on to the check
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
        return -1, f"Health check exceeded timeout ({timeout:g}s)"
    return process.returncode, output[:MAX_OUTPUT].decode(errors="replace")


def run_checks(
    pydock: Sequence[str], container_id: str, pid: int, directory: Path, check: Healthcheck
) -> None:
    """Check every interval while the container runs as ``pid``; keep the state."""
    interval = (check.interval or DEFAULT_INTERVAL) / 1e9
    timeout = (check.timeout or DEFAULT_TIMEOUT) / 1e9
    retries = check.retries or DEFAULT_RETRIES
    started = time.monotonic()
    status, streak = STARTING, 0
    log: list[dict[str, object]] = []
    argv = [*pydock, "exec", container_id, *check.command()]
    while True:
        due = time.monotonic() + interval
        while time.monotonic() < due:
            if not _alive(pid):
                return
            time.sleep(min(POLL_SECONDS, max(0.0, due - time.monotonic())))
        begun = _now()
        in_start_period = time.monotonic() - started < check.start_period / 1e9
        code, output = _probe(argv, timeout)
        if not _alive(pid):
            return
        log = log[-(LOG_ENTRIES - 1) :]
        log.append({"Start": begun, "End": _now(), "ExitCode": code, "Output": output})
        if code == 0:
            status, streak = HEALTHY, 0
        elif not (in_start_period and status == STARTING):
            streak += 1
            status = UNHEALTHY if streak >= retries else status
        write_state(directory, {"Status": status, "FailingStreak": streak, "Log": log})


def main(argv: Sequence[str]) -> int:
    """``python -m pydock.containers.health PLAN``: the checker of one container."""
    plan = json.loads(argv[0])
    check = Healthcheck.from_text(plan["check"])
    if check is None or not check.is_active:
        return 0
    run_checks(plan["pydock"], plan["id"], int(plan["pid"]), Path(plan["directory"]), check)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
