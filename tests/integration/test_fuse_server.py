"""The resident fuse mount server: real mounts as root, and as an unprivileged user.

Each test gets its own run root, so its servers are its own; a fixture unmounts every mount
and kills every process forked for that run root, whatever state the test left.
"""

from __future__ import annotations

import contextlib
import json
import os
import pwd
import signal
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from drivers.fuse import client
from graphdriver import MountError, get_driver

from .fusemount import is_mounted, missing_fuse, unmount
from .unprivileged import (
    ENV_PYTHON,
    REPO,
    device_mode,
    missing_prerequisite,
    unprivileged_user,
)

_why = missing_fuse()
pytestmark = [
    pytest.mark.fuse,
    pytest.mark.root,
    pytest.mark.skipif(_why is not None, reason=_why or ""),
    pytest.mark.skipif(os.geteuid() != 0, reason="needs uid 0 (real mounts, other users)"),
    pytest.mark.timeout(120),
]
WAIT = 15.0
PATH = "/usr/sbin:/usr/bin:/sbin:/bin"


def wait_for(condition: Callable[[], bool], what: str, timeout: float = WAIT) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.02)


def processes_of(run_root: Path) -> dict[int, tuple[int, int, str]]:
    """pid -> (ppid, uid, cwd) of the servers and mount processes of ``run_root``."""
    wanted = os.fsencode(run_root / "fuse")
    found = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
            if client.MARKER.encode() not in argv or wanted not in argv:
                continue
            stat = Path(f"/proc/{entry}/stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            uid = os.stat(f"/proc/{entry}").st_uid
            found[int(entry)] = (ppid, uid, os.readlink(f"/proc/{entry}/cwd"))
        except OSError:
            continue
    return found


def servers(run_root: Path) -> list[int]:
    """The listening servers: processes of the run root that hold the lock (cwd /, no spare).

    A spare is a child of a server with cwd / as well; a server's parent is not a server.
    """
    procs = processes_of(run_root)
    return [pid for pid, (ppid, _, cwd) in procs.items() if cwd == "/" and ppid not in procs]


class Layers:
    """A lower dir with one file, and upper/work/mountpoint dirs for ``count`` mounts."""

    def __init__(self, base: Path, count: int = 3) -> None:
        self.lower = base / "lower"
        self.lower.mkdir()
        (self.lower / "hello").write_text("hello\n")
        self.mounts = []
        for i in range(count):
            for name in ("upper", "work", "mnt"):
                (base / f"{name}{i}").mkdir()
            self.mounts.append(base / f"mnt{i}")

    def options(self, i: int) -> list[str]:
        base = self.lower.parent
        return [f"lowerdir={self.lower},upperdir={base}/upper{i},workdir={base}/work{i}"]


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Path, Layers]]:
    run_root = tmp_path / "run"
    layers = Layers(tmp_path)
    try:
        yield run_root, layers
    finally:
        for mountpoint in layers.mounts:
            unmount(mountpoint)
        stop_servers(run_root)
        for pid in processes_of(run_root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def stop_servers(run_root: Path) -> None:
    """Stop the run root's servers as the suite's end does (SIGTERM: they leave as when idle,
    and a process measuring coverage keeps its data), within a bound; the caller kills the rest.
    """
    for pid in servers(run_root):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    with contextlib.suppress(AssertionError):
        wait_for(lambda: not servers(run_root), "the servers to stop", timeout=10)


def mount(run_root: Path, layers: Layers, i: int) -> int:
    pid = client.mount(run_root, layers.options(i), layers.mounts[i], 30.0)
    assert is_mounted(layers.mounts[i])
    assert (layers.mounts[i] / "hello").read_text() == "hello\n"
    return pid


def test_mounts_are_forked_by_one_server_that_listens_in_a_private_dir(env) -> None:
    run_root, layers = env
    first, second = mount(run_root, layers, 0), mount(run_root, layers, 1)
    [server] = servers(run_root)
    procs = processes_of(run_root)
    assert procs[first][0] == server and procs[second][0] == server  # forked, not started
    assert client.mount_pids(layers.mounts[0]) == [first]
    directory = run_root / "fuse"
    assert directory.stat().st_mode & 0o777 == 0o700
    [sock] = directory.glob("*.sock")
    assert sock.name == f"mount-{client.namespace_key()}.sock"
    # A mount process holds none of the server's fds: not its socket, not its lock.
    for pid in (first, second):
        targets = {os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")}
        assert not any(str(directory) in t for t in targets), targets
        assert os.getsid(pid) == pid
    (layers.mounts[0] / "new").write_text("x")
    assert (run_root.parent / "upper0" / "new").read_text() == "x"
    subprocess.run(["fusermount3", "-u", str(layers.mounts[0])], check=True, timeout=30)
    wait_for(lambda: first not in processes_of(run_root), "the mount process to exit")
    assert servers(run_root) == [server]


def test_a_killed_server_leaves_mounts_serving_and_the_next_mount_starts_another(env) -> None:
    run_root, layers = env
    survivor = mount(run_root, layers, 0)
    [server] = servers(run_root)
    os.kill(server, signal.SIGKILL)
    wait_for(lambda: server not in processes_of(run_root), "the server to die")
    # Its spare sees the server gone and leaves; the mount keeps serving.
    wait_for(lambda: set(processes_of(run_root)) == {survivor}, "only the mount to remain")
    assert (layers.mounts[0] / "hello").read_text() == "hello\n"
    (layers.mounts[0] / "written-after").write_text("still here")
    assert (run_root / "fuse" / f"mount-{client.namespace_key()}.sock").exists()  # stale
    mount(run_root, layers, 1)
    [new_server] = servers(run_root)
    assert new_server != server
    assert (layers.mounts[0] / "written-after").read_text() == "still here"


def test_a_mount_outlives_a_server_that_was_told_to_stop(env) -> None:
    run_root, layers = env
    survivor = mount(run_root, layers, 0)
    [server] = servers(run_root)
    os.kill(server, signal.SIGTERM)
    wait_for(lambda: server not in processes_of(run_root), "the server to stop")
    assert (layers.mounts[0] / "hello").read_text() == "hello\n"
    assert client.mount_pids(layers.mounts[0]) == [survivor]
    subprocess.run(["fusermount3", "-u", str(layers.mounts[0])], check=True, timeout=30)
    wait_for(lambda: not processes_of(run_root), "the orphaned mount process to exit")
    assert not is_mounted(layers.mounts[0])


def test_the_server_leaves_when_idle_with_no_mounts(env, monkeypatch) -> None:
    run_root, layers = env
    monkeypatch.setenv(client.IDLE_ENV, "1")
    mount(run_root, layers, 0)
    [server] = servers(run_root)
    time.sleep(1.5)  # a live mount keeps it, however long it idles
    assert servers(run_root) == [server]
    subprocess.run(["fusermount3", "-u", str(layers.mounts[0])], check=True, timeout=30)
    wait_for(lambda: not processes_of(run_root), "the idle server and its spare to leave")
    assert list((run_root / "fuse").glob("*.sock")) == []
    mount(run_root, layers, 1)  # and the next mount starts one again
    assert len(servers(run_root)) == 1


def test_a_stale_socket_file_is_replaced(env) -> None:
    run_root, layers = env
    directory = run_root / "fuse"
    directory.mkdir(parents=True, mode=0o700)
    path = directory / f"mount-{client.namespace_key()}.sock"
    dead = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    dead.bind(str(path))  # bound by nobody alive once closed: connect is refused
    dead.close()
    with pytest.raises(ConnectionRefusedError), socket.socket(socket.AF_UNIX) as probe:
        probe.connect(str(path))
    mount(run_root, layers, 0)
    assert len(servers(run_root)) == 1


def test_two_mounts_starting_at_once_share_one_server(env) -> None:
    run_root, layers = env
    results: dict[int, object] = {}

    def one(i: int) -> None:
        try:
            results[i] = client.mount(run_root, layers.options(i), layers.mounts[i], 30.0)
        except BaseException as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(isinstance(results.get(i), int) for i in range(3)), results
    assert len(servers(run_root)) == 1
    assert all(is_mounted(m) for m in layers.mounts)


def test_a_failed_mount_reports_one_line_and_leaves_nothing_mounted(env) -> None:
    run_root, layers = env
    with pytest.raises(OSError, match=r"lower dir .*missing.* does not exist"):
        client.mount(run_root, ["lowerdir=/nonexistent/missing"], layers.mounts[0], 30.0)
    assert not is_mounted(layers.mounts[0])
    mount(run_root, layers, 0)  # the server is still fine


@pytest.mark.parametrize(
    "request_",
    [
        {"options": "lowerdir=/l", "cwd": "/", "mountpoint": "/mnt"},
        {"options": ["lowerdir=/l"], "mountpoint": "/mnt"},
        {"options": ["lowerdir=/l"], "cwd": "/", "mountpoint": None},
    ],
    ids=["options-not-a-list", "no-cwd", "mountpoint-not-a-string"],
)
def test_a_malformed_request_is_answered_by_its_filesystem_process(env, request_) -> None:
    run_root, layers = env
    paths = client.ServerPaths.under(run_root)
    client.private_directory(paths.directory)
    client.start_server(paths)
    pid, verdict = client._ask(paths, json.dumps(request_).encode() + b"\n", 30.0)
    assert verdict == "malformed mount request"
    wait_for(lambda: pid not in processes_of(run_root), "the filesystem process to exit")
    mount(run_root, layers, 0)  # and the server still serves


def test_an_unreadable_idle_time_falls_back_to_the_default(env, monkeypatch) -> None:
    run_root, layers = env
    monkeypatch.setenv(client.IDLE_ENV, "soon")
    mount(run_root, layers, 0)
    [server] = servers(run_root)
    argv = Path(f"/proc/{server}/cmdline").read_bytes().split(b"\0")
    assert argv[argv.index(b"--idle") + 1] == f"{client.DEFAULT_IDLE:g}".encode()


def test_a_killed_spare_is_replaced_and_mounts_go_on(env) -> None:
    run_root, layers = env
    mount(run_root, layers, 0)
    [server] = servers(run_root)
    wait_for(lambda: len(spares(run_root, server)) == 1, "the server to fork a spare")
    [spare] = spares(run_root, server)
    os.kill(spare, signal.SIGKILL)
    wait_for(lambda: spare not in processes_of(run_root), "the server to reap its spare")
    second = mount(run_root, layers, 1)  # forked for the connection, or by a new spare
    assert processes_of(run_root)[second][0] == server
    wait_for(lambda: len(spares(run_root, server)) == 1, "the server to fork a new spare")
    assert spares(run_root, server) != [spare]


def spares(run_root: Path, server: int) -> list[int]:
    """The server's children still waiting for a mount (working directory /)."""
    procs = processes_of(run_root)
    return [pid for pid, (ppid, _, cwd) in procs.items() if ppid == server and cwd == "/"]


def test_the_driver_mounts_through_the_server_and_reports_a_dead_mount(tmp_path: Path) -> None:
    run_root = tmp_path / "run"
    driver = get_driver("fuse", tmp_path / "home", {"fuse.run_root": str(run_root)})
    driver.create("base", None)
    driver.create_read_write("top", "base")
    try:
        merged = driver.get("top")
        [pid] = client.mount_pids(merged)
        assert processes_of(run_root)[pid][0] in servers(run_root)
        assert driver.mount_problem("top") is None
        os.kill(pid, signal.SIGKILL)
        wait_for(lambda: pid not in processes_of(run_root), "the mount process to die")
        assert "is gone" in (driver.mount_problem("top") or "")
    finally:
        driver.cleanup()
        for pid in processes_of(run_root):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def test_without_the_server_the_driver_starts_the_command(tmp_path: Path) -> None:
    run_root = tmp_path / "run"
    options = {"run_root": str(run_root), "mount_server": "false"}
    driver = get_driver("fuse", tmp_path / "home", options)
    driver.create("base", None)
    driver.create_read_write("top", "base")
    try:
        driver.get("top")
        assert processes_of(run_root) == {}
        assert driver.mount_problem("top") is None
    finally:
        driver.cleanup()


def test_a_run_root_too_deep_for_a_socket_falls_back_to_the_command(tmp_path: Path) -> None:
    run_root = tmp_path / ("r" * 100)  # the server's socket path would not fit in sun_path
    options = {"run_root": str(run_root), "fsync": "false"}
    driver = get_driver("fuse", tmp_path / "home", options)
    driver.create("base", None)
    driver.create_read_write("top", "base")
    try:
        merged = driver.get("top")
        (merged / "f").write_text("x")
        assert (driver.layout.diff_dir("top") / "f").read_text() == "x"
        assert processes_of(run_root) == {} and not run_root.exists()
        [pid] = client.standalone_pids(merged)
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        assert argv[argv.index(b"-o") + 1].endswith(b",fsync=0")
    finally:
        driver.cleanup()


def test_a_mount_the_command_cannot_make_is_reported_in_one_line(tmp_path: Path) -> None:
    options = {"run_root": str(tmp_path / "run"), "mount_server": "false"}
    driver = get_driver("fuse", tmp_path / "home", options)
    driver.create("base", None)
    driver.create_read_write("top", "base")
    work = driver.layout.work_dir("top")
    (work / "pydock-fuse").write_text("the filesystem's private dir, taken by a file")
    try:
        with pytest.raises(MountError) as caught:
            driver.get("top")
        assert str(caught.value) == (
            f"mounting fuse overlay for layer top: preparing work dir {work}: Not a directory"
        )
        assert not is_mounted(driver.layout.merged_dir("top"))
        (work / "pydock-fuse").unlink()
        assert (driver.get("top") / ".").is_dir()  # refcount was not kept by the failure
        driver.put("top")
        assert not is_mounted(driver.layout.merged_dir("top"))
    finally:
        driver.cleanup()


# -- two users -------------------------------------------------------------------------------

_unprivileged = missing_prerequisite()
USER_MOUNT = """
import json, sys
from pathlib import Path
from drivers.fuse import client
run_root, lower, upper, work, mnt = sys.argv[1:]
pid = client.mount(Path(run_root), [f"lowerdir={lower},upperdir={upper},workdir={work}"],
                   Path(mnt), 30.0)
print(json.dumps({"pid": pid, "hello": (Path(mnt) / "hello").read_text()}))
"""


@pytest.mark.skipif(_unprivileged is not None, reason=_unprivileged or "")
def test_each_user_has_their_own_server_and_no_other_uid_gets_in(env) -> None:
    root_run, layers = env
    mount(root_run, layers, 0)
    [root_server] = servers(root_run)
    # Not under pytest's tmp dirs: those are private to root.
    base = Path(tempfile.mkdtemp(prefix="pydock-fuse-server-", dir="/tmp"))
    user_run = base / "run"
    try:
        with unprivileged_user() as user, device_mode("/dev/fuse", open_to_users=True):
            entry = pwd.getpwnam(user)
            for name in ("lower", "upper", "work", "mnt"):
                (base / name).mkdir()
            (base / "lower" / "hello").write_text("hello\n")
            for path in [base, *base.iterdir(), base / "lower" / "hello"]:
                os.chown(path, entry.pw_uid, entry.pw_gid)
            done = subprocess.run(
                ["runuser", "-u", user, "--", str(ENV_PYTHON), "-c", USER_MOUNT, str(user_run),
                 *(str(base / n) for n in ("lower", "upper", "work", "mnt"))],
                capture_output=True, text=True, timeout=60, cwd="/",
                env={"PYTHONPATH": str(REPO), "PATH": PATH, "HOME": str(base)},
            )  # fmt: skip
            assert done.returncode == 0, done.stderr[-3000:]
            answer = json.loads(done.stdout)
            assert answer["hello"] == "hello\n"
            [user_server] = servers(user_run)
            assert processes_of(user_run)[user_server][1] == entry.pw_uid
            assert processes_of(user_run)[answer["pid"]][0] == user_server
            assert user_server != root_server
            assert (user_run / "fuse").stat().st_mode & 0o777 == 0o700
            # root can reach the user's socket; the user's server refuses it all the same.
            [sock] = (user_run / "fuse").glob("*.sock")
            with socket.socket(socket.AF_UNIX) as conn:
                conn.settimeout(10)
                conn.connect(str(sock))
                reply = conn.recv(4096).decode()
            assert reply.startswith(f"refused: uid 0 is not this server's uid {entry.pw_uid}")
            # The user cannot even reach root's socket.
            [root_sock] = (root_run / "fuse").glob("*.sock")
            probe = subprocess.run(
                ["runuser", "-u", user, "--", str(ENV_PYTHON), "-c",
                 "import socket, sys; socket.socket(socket.AF_UNIX).connect(sys.argv[1])",
                 str(root_sock)],
                capture_output=True, text=True, timeout=60, cwd="/",
            )  # fmt: skip
            assert "PermissionError" in probe.stderr, probe.stderr
    finally:
        unmount(base / "mnt")
        for pid in processes_of(user_run):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        subprocess.run(["rm", "-rf", str(base)], timeout=60, check=False)
