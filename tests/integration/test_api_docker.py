"""The real docker client (Debian's docker.io, /usr/bin/docker) against `pydock system service`."""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import pty
import re
import select
import shutil
import socket
import stat
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from .api_support import DOCKER, Service, running_service, wait_for_state
from .containers_support import clean_env
from .registry_support import running_registry
from .runtime_support import parent_of

READ_TIMEOUT_SECONDS = 60.0


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    with running_service(tmp_path_factory.mktemp("api")) as running:
        yield running


def test_the_socket_is_for_root_only(service: Service) -> None:
    facts = service.socket.stat()
    assert stat.S_ISSOCK(facts.st_mode)
    assert (stat.S_IMODE(facts.st_mode), facts.st_uid, facts.st_gid) == (0o660, 0, 0)


def test_run_passes_output_and_status(service: Service) -> None:
    done = service.docker("run", "--rm", "busybox", "sh", "-c", "echo hi; echo err >&2; exit 3")
    assert (done.returncode, done.stdout) == (3, "hi\n"), done.stderr
    assert "err\n" in done.stderr
    assert service.docker("ps", "-aq").stdout == ""  # --rm: removed


def test_run_with_standard_input(service: Service) -> None:
    done = service.docker("run", "--rm", "-i", "busybox", "cat", stdin=b"line one\nline two\n")
    assert (done.returncode, done.stdout) == (0, "line one\nline two\n"), done.stderr


def _read_until(leader: int, needle: bytes | None, deadline: float) -> bytes:
    """Read the terminal until ``needle`` shows (None: until it ends) or the deadline."""
    output = b""
    while time.monotonic() < deadline and (needle is None or needle not in output):
        ready, _, _ = select.select([leader], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        try:
            data = os.read(leader, 4096)
        except OSError as exc:
            if exc.errno != errno.EIO:
                raise
            break
        if not data:
            break
        output += data
    return output


def test_run_interactive_terminal(service: Service) -> None:
    """``docker run --rm -it busybox sh`` from a terminal: typed input, raw terminal output."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = service.uri
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        [DOCKER, "run", "--rm", "-it", "busybox", "sh"],
        stdin=follower,
        stdout=follower,
        stderr=follower,
        env=env,
        start_new_session=True,
    )
    os.close(follower)
    deadline = time.monotonic() + READ_TIMEOUT_SECONDS
    try:
        prompt = _read_until(leader, b"# ", deadline)
        assert b"# " in prompt, prompt
        os.write(leader, b"tty; echo $((6*7)); exit 4\r")
        output = _read_until(leader, None, deadline)
        status = process.wait(timeout=READ_TIMEOUT_SECONDS)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)
        os.close(leader)
    assert status == 4, output
    assert b"42\r\n" in output
    assert b"/dev/pts/0" in output  # the container had a terminal of its own


def test_detached_exec_logs_commit(service: Service) -> None:
    started = service.docker("run", "-d", "--name", "worker", "busybox", "sh", "-c",
                             "echo started; exec sleep 300")  # fmt: skip
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    try:
        ran = service.docker("exec", "worker", "sh", "-c", "echo data > /made; echo done; exit 5")
        assert (ran.returncode, ran.stdout) == (5, "done\n"), ran.stderr
        fed = service.docker("exec", "-i", "worker", "cat", stdin=b"fed\n")
        assert (fed.returncode, fed.stdout) == (0, "fed\n"), fed.stderr
        # The CLI shares the store: it sees the container the service made, running.
        listed = service.pydock("ps", "-q")
        assert container_id[:12] in listed.stdout.split()
        committed = service.docker("commit", "worker", "snapshot:1")
        assert committed.returncode == 0, committed.stderr
        assert committed.stdout.startswith("sha256:")
        logs = service.docker("logs", "worker")
        assert logs.stdout == "started\n"
    finally:
        removed = service.docker("rm", "-f", "worker")
    assert removed.returncode == 0, removed.stderr
    read = service.docker("run", "--rm", "snapshot:1", "cat", "/made")
    assert read.stdout == "data\n", read.stderr


def test_storage_opt_chooses_the_driver(service: Service) -> None:
    created = service.docker("create", "--storage-opt", "driver=vfs", "--name", "onvfs",
                             "busybox", "true")  # fmt: skip
    assert created.returncode == 0, created.stderr
    try:
        shown = service.docker("inspect", "-f", "{{.Driver}}", "onvfs")
        assert shown.stdout.strip() == "vfs"
        pydock_view = json.loads(service.pydock("inspect", "onvfs").stdout)
        assert pydock_view[0]["Driver"] == "vfs"
        started = service.docker("start", "-a", "onvfs")
        assert started.returncode == 0, started.stderr
    finally:
        service.docker("rm", "-f", "onvfs")
    refused = service.docker("create", "--storage-opt", "size=1G", "busybox", "true")
    assert refused.returncode != 0
    assert "size is not supported" in refused.stderr


def test_save_and_load(service: Service, tmp_path: Path) -> None:
    archive = tmp_path / "busybox.tar"
    saved = service.docker("save", "-o", str(archive), "busybox")
    assert saved.returncode == 0, saved.stderr
    loaded = service.docker("load", "-i", str(archive))
    assert (loaded.returncode, loaded.stdout) == (0, "Loaded image: busybox:latest\n")


def test_push_and_pull(service: Service, tmp_path: Path) -> None:
    with running_registry(tmp_path / "registry") as registry:
        name = f"{registry.address}/tools/busybox:1"
        assert service.docker("tag", "busybox", name).returncode == 0
        pushed = service.docker("push", name)
        assert pushed.returncode == 0, pushed.stderr
        assert "digest: sha256:" in pushed.stdout
        assert registry.requests("PUT", "/v2/tools/busybox/manifests/1")
        assert service.docker("rmi", name).returncode == 0
        pulled = service.docker("pull", name)
        assert pulled.returncode == 0, pulled.stderr
        ran = service.docker("run", "--rm", name, "echo", "pulled")
        assert ran.stdout == "pulled\n", ran.stderr


def test_unknown_names_as_docker_prints_them(service: Service) -> None:
    image = service.docker("image", "inspect", "nosuchimage")
    assert (image.returncode, image.stderr) == (1, "Error: No such image: nosuchimage\n")
    container = service.docker("rm", "nosuchcontainer")
    assert container.returncode == 1
    assert "No such container: nosuchcontainer" in container.stderr
    missing = service.docker("run", "--rm", "busybox", "nosuchcommand")
    assert missing.returncode == 127
    assert "executable file not found" in missing.stderr


def _request(service: Service, head: bytes, body: bytes = b"") -> socket.socket:
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(READ_TIMEOUT_SECONDS)
    client.connect(str(service.socket))
    client.sendall(head + body)
    return client


def _response(client: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = client.recv(65536)
        if not chunk:
            break
        data += chunk
    return data


def test_an_oversized_body_is_refused(service: Service) -> None:
    size = 5 * 1024 * 1024
    head = (
        b"POST /v1.41/containers/create HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % size
    )
    with _request(service, head) as client:  # the body is refused before it is sent
        answer = b""
        while chunk := client.recv(65536):  # the service closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413"), answer[:200]
    assert b"larger than" in answer
    assert service.docker("version", "-f", "{{.Server.APIVersion}}").stdout == "1.41\n"


def test_a_client_leaving_mid_attach_costs_nothing(service: Service) -> None:
    created = service.docker("create", "--name", "chatty", "busybox", "sh", "-c",
                             "while true; do echo tick; done")  # fmt: skip
    assert created.returncode == 0, created.stderr
    try:
        head = (
            b"POST /v1.41/containers/chatty/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n"
            b"Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n"
        )
        with _request(service, head) as client:
            answer = _response(client)
            assert answer.startswith(b"HTTP/1.1 101"), answer[:200]
            assert service.docker("start", "chatty").returncode == 0
            framed = answer.partition(b"\r\n\r\n")[2]
            while len(framed) < 8:
                framed += client.recv(4096)
            assert framed[:1] == b"\x01"  # stdout, Docker's multiplexed framing
        # The client is gone; the container runs on and the service serves.
        state = service.docker("inspect", "-f", "{{.State.Running}}", "chatty")
        assert state.stdout == "true\n"
        assert service.docker("kill", "chatty").returncode == 0
        assert service.docker("wait", "chatty").stdout == "137\n"
        ran = service.docker("run", "--rm", "busybox", "echo", "still serving")
        assert ran.stdout == "still serving\n", ran.stderr
    finally:
        service.docker("rm", "-f", "chatty")


def test_a_restarted_service_adopts_running_containers(service: Service) -> None:
    started = service.docker("run", "-d", "--name", "survivor", "busybox", "sleep", "300")
    assert started.returncode == 0, started.stderr
    try:
        # Its monitor was forked by the service's spawner, a small process of its own.
        pid = int(service.docker("inspect", "-f", "{{.State.Pid}}", "survivor").stdout)
        spawner = parent_of(parent_of(pid))
        assert service.process is not None and spawner != service.process.pid
        assert parent_of(spawner) == service.process.pid
        assert "runtime.spawner" in Path(f"/proc/{spawner}/cmdline").read_text()
        service.stop()
        service.start()
        listed = service.docker("ps", "--format", "{{.Names}} {{.State}}")
        assert "survivor running" in listed.stdout.splitlines()
        stopped = service.docker("stop", "-t", "1", "survivor")
        assert stopped.returncode == 0, stopped.stderr
        assert service.docker("inspect", "-f", "{{.State.Status}}", "survivor").stdout == (
            "exited\n"
        )
    finally:
        service.docker("rm", "-f", "survivor")


def test_a_killed_service_leaves_exits_to_the_monitors(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """With the service gone (SIGKILL), a container that ends later is recorded by its
    monitor's exit command, as a container the CLI started is."""
    workdir = tmp_path_factory.mktemp("api-killed")
    gate = workdir / "gate"
    gate.mkdir()
    with running_service(workdir) as service:
        wait = "while [ ! -e /gate/go ]; do sleep 0.05; done"
        started = service.docker(
            "run", "-d", "-v", f"{gate}:/gate", "busybox", "sh", "-c", wait
        )  # fmt: skip
        assert started.returncode == 0, started.stderr
        container_id = started.stdout.strip()
        assert service.process is not None
        service.process.kill()
        service.process.wait(timeout=30)
        (gate / "go").touch()
        wait_for_state(service, container_id, "exited")


def test_socket_activation_and_idle_exit(service: Service, tmp_path: Path) -> None:
    """systemd's way (LISTEN_FDS): the passed socket is served; idle, the service leaves."""
    activate = shutil.which("systemd-socket-activate")
    if activate is None:
        pytest.skip("systemd-socket-activate is not installed")
    path = tmp_path / "activated.sock"
    command = [activate, "-l", str(path), sys.executable, "-m", "pydock", "--root",
               str(service.root), "--run-root", str(service.run_root), "system", "service",
               "--time", "1"]  # fmt: skip
    env = {k: v for k, v in clean_env().items() if not k.startswith("DOCKER_")}
    activator = subprocess.Popen(command, stderr=subprocess.PIPE, env=env)
    try:
        assert activator.stderr is not None
        assert b"Listening on" in activator.stderr.readline()  # the socket exists now
        env["DOCKER_HOST"] = f"unix://{path}"
        # --network none: the activator passes the service none of this suite's environment.
        ran = subprocess.run([DOCKER, "run", "--rm", "--network", "none", "busybox", "echo",
                              "activated"],
                             capture_output=True, text=True, env=env, timeout=120)  # fmt: skip
        assert ran.stdout == "activated\n", ran.stderr
        # Nothing more to do: the service (exec'd in the activator's place) leaves by itself.
        assert activator.wait(timeout=60) == 0
    finally:
        if activator.poll() is None:
            activator.kill()
            activator.wait(timeout=30)
        if activator.stderr is not None:
            activator.stderr.close()


def test_an_older_api_version_is_refused(service: Service) -> None:
    head = b"GET /v1.40/version HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n"
    with _request(service, head) as client:
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert b"Minimum supported API version is 1.41" in answer
    with _request(service, head.replace(b"/v1.40", b"/v1.41")) as client:
        assert _response(client).startswith(b"HTTP/1.1 200")


def _inspect(service: Service, template: str, name: str) -> str:
    done = service.docker("inspect", "-f", template, name)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_top_stats_pause_rename_update(service: Service) -> None:
    started = service.docker("run", "-d", "--name", "busy", "busybox", "sleep", "300")
    assert started.returncode == 0, started.stderr
    container_id = started.stdout.strip()
    try:
        top = service.docker("top", "busy")
        assert top.returncode == 0, top.stderr
        header, *rows = top.stdout.splitlines()
        assert header.split()[:2] == ["UID", "PID"]  # ps -ef, as Docker's default
        assert [row.split(None, 7)[-1] for row in rows] == ["sleep 300"]
        pid = _inspect(service, "{{.State.Pid}}", "busy")
        assert rows[0].split()[1] == pid
        custom = service.docker("top", "busy", "-o", "pid,comm")
        assert custom.stdout.split() == ["PID", "COMMAND", pid, "sleep"], custom.stderr

        stats = service.docker("stats", "--no-stream", "--format", "{{.Name}} {{.PIDs}}", "busy")
        assert (stats.returncode, stats.stdout) == (0, "busy 1\n"), stats.stderr

        assert service.docker("pause", "busy").returncode == 0
        assert _inspect(service, "{{.State.Status}} {{.State.Paused}}", "busy") == "paused true"
        again = service.docker("pause", "busy")
        assert again.returncode == 1 and "already paused" in again.stderr
        assert service.docker("unpause", "busy").returncode == 0
        assert _inspect(service, "{{.State.Status}} {{.State.Paused}}", "busy") == ("running false")

        renamed = service.docker("rename", "busy", "busier")
        assert renamed.returncode == 0, renamed.stderr
        assert _inspect(service, "{{.Id}} {{.Name}}", "busier") == f"{container_id} /busier"
        assert service.docker("inspect", "busy").returncode == 1

        updated = service.docker("update", "--memory", "64m", "--pids-limit", "50", "busier")
        assert (updated.returncode, updated.stdout) == (0, "busier\n"), updated.stderr
        assert _inspect(service, "{{.HostConfig.Memory}} {{.HostConfig.PidsLimit}}", "busier") == (
            f"{64 << 20} 50"
        )
        # Live: the cgroup's limit is what stats reads.
        stats = service.docker("stats", "--no-stream", "--format", "{{.MemUsage}}", "busier")
        assert stats.stdout.strip().endswith("/ 64MiB"), stats.stdout + stats.stderr
    finally:
        removed = service.docker("rm", "-f", container_id)
    assert removed.returncode == 0, removed.stderr
    stopped = service.docker("pause", container_id)
    assert stopped.returncode == 1 and "No such container" in stopped.stderr


def test_rename_and_pause_refusals(service: Service) -> None:
    for name in ("first", "second"):
        made = service.docker("create", "--name", name, "busybox", "true")
        assert made.returncode == 0, made.stderr
    try:
        taken = service.docker("rename", "first", "second")
        assert taken.returncode == 1 and "already in use" in taken.stderr
        idle = service.docker("pause", "first")
        assert idle.returncode == 1 and "not running" in idle.stderr
    finally:
        service.docker("rm", "-f", "first", "second")


def _exec(service: Service, name: str, script: str) -> str:
    done = service.docker("exec", name, "sh", "-c", script)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_cp_both_ways(service: Service, tmp_path: Path) -> None:
    (tmp_path / "note.txt").write_text("from the host\n")
    (tmp_path / "tree" / "deep").mkdir(parents=True)
    (tmp_path / "tree" / "deep" / "leaf").write_text("leaf\n")
    started = service.docker("run", "-d", "--name", "cpbox", "busybox", "sleep", "300")
    assert started.returncode == 0, started.stderr
    try:
        _exec(service, "cpbox", "mkdir -p /data/sub && echo inside > /data/sub/f")
        # into the container: a file into a directory, a directory under a new name
        assert service.docker("cp", str(tmp_path / "note.txt"), "cpbox:/data/").returncode == 0
        done = service.docker("cp", str(tmp_path / "tree"), "cpbox:/data/copied")
        assert done.returncode == 0, done.stderr
        assert _exec(service, "cpbox", "cat /data/note.txt /data/copied/deep/leaf") == (
            "from the host\nleaf\n"
        )
        assert _exec(service, "cpbox", "stat -c %u:%g /data/note.txt") == "0:0\n"
        # out of it: a directory, its contents, a file, and a tar on standard output
        out = tmp_path / "out"
        out.mkdir()
        assert service.docker("cp", "cpbox:/data/sub", str(out / "sub")).returncode == 0
        assert service.docker("cp", "cpbox:/data/sub/.", str(out / "contents")).returncode == 0
        assert service.docker("cp", "cpbox:/data/note.txt", str(out)).returncode == 0
        assert (out / "sub" / "f").read_text() == "inside\n"
        assert (out / "contents" / "f").read_text() == "inside\n"
        assert (out / "note.txt").read_text() == "from the host\n"
        streamed = subprocess.run(
            [DOCKER, "cp", "cpbox:/data/sub", "-"],
            capture_output=True,
            timeout=READ_TIMEOUT_SECONDS,
            env={"DOCKER_HOST": service.uri, "HOME": str(service.root.parent)},
            check=False,
        )
        assert streamed.returncode == 0, streamed.stderr
        with tarfile.open(fileobj=io.BytesIO(streamed.stdout)) as tar:
            assert sorted(tar.getnames()) == ["sub", "sub/f"]
        missing = service.docker("cp", "cpbox:/nosuch", str(out))
        assert missing.returncode == 1
        assert "No such container:path: cpbox:/nosuch" in missing.stderr  # the client's words
    finally:
        service.docker("rm", "-f", "cpbox")


def test_cp_into_a_container_that_never_ran(service: Service, tmp_path: Path) -> None:
    (tmp_path / "script").write_text("echo copied in before the start\n")
    created = service.docker("create", "--name", "fresh", "busybox", "sh", "/script")
    assert created.returncode == 0, created.stderr
    try:
        copied = service.docker("cp", str(tmp_path / "script"), "fresh:/script")
        assert copied.returncode == 0, copied.stderr
        ran = service.docker("start", "-a", "fresh")
        assert (ran.returncode, ran.stdout) == (0, "copied in before the start\n"), ran.stderr
    finally:
        service.docker("rm", "-f", "fresh")


def test_cp_symlinks_in_the_container_never_reach_the_host(
    service: Service, tmp_path: Path
) -> None:
    """Links in the container that name host paths are resolved inside the container: nothing
    outside it is read or written, whichever way the copy goes."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("host secret\n")
    (tmp_path / "payload").write_text("payload\n")
    up = "../" * 12
    started = service.docker("run", "-d", "--name", "linky", "busybox", "sleep", "300")
    assert started.returncode == 0, started.stderr
    try:
        _exec(service, "linky", f"ln -s {outside}/secret /leak; ln -s {outside} /escape;"
              f" ln -s {up}{str(outside).lstrip('/')} /climb")  # fmt: skip
        got = tmp_path / "got"
        got.mkdir()
        # out: -L follows the link inside the container, where the host's file is not
        followed = service.docker("cp", "-L", "linky:/leak", str(got / "leak"))
        assert followed.returncode == 1
        for path in ("/escape/secret", "/climb/secret"):
            through = service.docker("cp", f"linky:{path}", str(got / "through"))
            assert through.returncode == 1
            assert f"No such container:path: linky:{path}" in through.stderr
        as_link = service.docker("cp", "linky:/leak", str(got / "link"))
        assert as_link.returncode == 0, as_link.stderr
        assert os.readlink(got / "link") == f"{outside}/secret"  # the link itself, not followed
        assert not (got / "through").exists() and not (got / "leak").exists()
        # in: through the links, into the container's own tree (made there) or refused
        for destination in ("/escape/", "/escape/named", "/climb/", "/climb/named"):
            service.docker("cp", str(tmp_path / "payload"), f"linky:{destination}")
        _exec(service, "linky", f"mkdir -p {outside}")
        for destination in ("/escape/", "/climb/named"):
            done = service.docker("cp", str(tmp_path / "payload"), f"linky:{destination}")
            assert done.returncode == 0, done.stderr
        inside = _exec(service, "linky", f"ls {outside}").split()
        assert inside == ["named", "payload"]
        assert sorted(os.listdir(outside)) == ["secret"]
        assert (outside / "secret").read_text() == "host secret\n"
    finally:
        service.docker("rm", "-f", "linky")


def test_head_of_a_missing_path_answers_and_the_service_serves_on(service: Service) -> None:
    made = service.docker("create", "--name", "headed", "busybox", "true")
    assert made.returncode == 0, made.stderr
    try:
        for target in (b"/v1.41/containers/headed/archive?path=/nosuch",
                       b"/v1.41/containers/nosuch/json"):  # fmt: skip
            head = b"HEAD %s HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n" % target
            with _request(service, head) as client:
                answer = b""
                while chunk := client.recv(65536):
                    answer += chunk
            assert answer.startswith(b"HTTP/1.1 404"), answer[:200]
            assert answer.endswith(b"\r\n\r\n")  # no body after HEAD
        head = b"HEAD /v1.41/containers/headed/archive?path=/bin HTTP/1.1\r\nHost: docker\r\n\r\n"
        with _request(service, head) as client:
            answer = _response(client)
        assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
        fields = dict(
            line.split(": ", 1) for line in answer.decode().split("\r\n")[1:] if ": " in line
        )
        facts = json.loads(base64.b64decode(fields["X-Docker-Container-Path-Stat"]))
        assert (facts["name"], facts["mode"] >> 31) == ("bin", 1)  # Go's ModeDir bit
    finally:
        service.docker("rm", "-f", "headed")


def _put_archive(service: Service, container: str, query: bytes, tar: bytes) -> bytes:
    head = (
        b"PUT /v1.41/containers/%s/archive?%s HTTP/1.1\r\nHost: docker\r\n"
        b"Content-Type: application/x-tar\r\nContent-Length: %d\r\nConnection: close\r\n\r\n"
        % (container.encode(), query, len(tar))
    )
    with _request(service, head, tar) as client:
        answer = b""
        while chunk := client.recv(65536):
            answer += chunk
    return answer


def test_archive_put_keeps_directories_when_asked(service: Service) -> None:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        info = tarfile.TarInfo("sub")
        info.size = 2
        tar.addfile(info, io.BytesIO(b"x\n"))
    made = service.docker("create", "--name", "kinds", "busybox", "true")
    assert made.returncode == 0, made.stderr
    try:
        assert _put_archive(service, "kinds", b"path=/tmp", buffer.getvalue()).startswith(
            b"HTTP/1.1 200"
        )
        holder = io.BytesIO()
        with tarfile.open(fileobj=holder, mode="w") as tar:
            info = tarfile.TarInfo("sub")
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        refused = _put_archive(
            service, "kinds", b"path=/tmp&noOverwriteDirNonDir=true", holder.getvalue()
        )
        assert refused.startswith(b"HTTP/1.1 400"), refused[:300]
        assert b"cannot overwrite non-directory /tmp/sub with directory" in refused
        assert _put_archive(service, "kinds", b"path=/nosuch", buffer.getvalue()).startswith(
            b"HTTP/1.1 404"
        )
        copied = service.docker("cp", "kinds:/tmp/sub", "-")
        assert copied.returncode == 0, copied.stderr
        assert "x\n" in copied.stdout  # still the file
    finally:
        service.docker("rm", "-f", "kinds")


def test_image_prune(service: Service) -> None:
    ran = service.docker("run", "--name", "layered", "busybox", "sh", "-c", "echo x > /x")
    assert ran.returncode == 0, ran.stderr
    try:
        dangling = service.docker("commit", "layered").stdout.strip()
        tagged = service.docker("commit", "layered", "keep:1").stdout.strip()
        assert dangling.startswith("sha256:") and tagged.startswith("sha256:")
    finally:
        service.docker("rm", "-f", "layered")
    pruned = service.docker("image", "prune", "-f")
    assert pruned.returncode == 0, pruned.stderr
    assert f"deleted: {dangling}" in pruned.stdout.splitlines()
    listed = service.docker("images", "-q", "--no-trunc").stdout.split()
    assert dangling not in listed and tagged in listed
    again = service.docker("image", "prune", "-f")
    assert again.stdout == "Total reclaimed space: 0B\n", again.stderr
    assert service.docker("rmi", "keep:1").returncode == 0


def test_volumes(service: Service) -> None:
    assert service.docker("volume", "create", "data1").stdout == "data1\n"
    made = service.docker("volume", "create", "--label", "team=a", "data2")
    assert made.returncode == 0, made.stderr
    try:
        assert service.docker("volume", "ls", "-q").stdout.split() == ["data1", "data2"]
        assert service.docker("volume", "ls", "-q", "-f", "label=team=a").stdout == "data2\n"
        shown = json.loads(service.docker("volume", "inspect", "data2").stdout)
        assert shown[0]["Labels"] == {"team": "a"}
        assert shown[0]["Mountpoint"] == str(service.root / "volumes" / "data2" / "_data")
        assert service.docker("volume", "inspect", "nosuch").returncode == 1
        user = service.docker("run", "-d", "--name", "voluser", "-v", "data1:/data",
                              "busybox", "sleep", "300")  # fmt: skip
        assert user.returncode == 0, user.stderr
        try:
            in_use = service.docker("volume", "rm", "data1")
            assert in_use.returncode == 1 and "volume is in use" in in_use.stderr
            dangling = service.docker("volume", "ls", "-q", "-f", "dangling=true")
            assert dangling.stdout == "data2\n"
            pruned = service.docker("volume", "prune", "-f")  # API 1.41: named ones too
            assert "data2" in pruned.stdout.split() and "data1" not in pruned.stdout.split()
        finally:
            service.docker("rm", "-f", "voluser")
        assert service.docker("volume", "rm", "data1").stdout == "data1\n"
        assert service.docker("volume", "ls", "-q").stdout == ""
    finally:
        service.docker("volume", "rm", "-f", "data1", "data2")


@pytest.fixture(scope="module")
def netns_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    """A service in a network namespace of its own: its bridges and rules stay there."""
    if shutil.which("nft") is None:
        pytest.skip("needs nft (Debian nftables) for the bridge driver")
    with running_service(tmp_path_factory.mktemp("api-net"), own_network=True) as running:
        yield running


def test_networks(netns_service: Service) -> None:
    service = netns_service
    listed = service.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}")
    assert listed.stdout.splitlines() == ["bridge bridge", "host host", "none none"]
    bridge = json.loads(service.docker("network", "inspect", "bridge").stdout)[0]
    assert bridge["IPAM"]["Config"] == [{"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}]
    assert service.docker("network", "inspect", "nosuch").returncode == 1
    builtin = service.docker("network", "rm", "bridge")
    assert builtin.returncode == 1 and "pre-defined network" in builtin.stderr
    made = service.docker("network", "create", "--subnet", "10.77.0.0/24", "testnet")
    assert made.returncode == 0, made.stderr
    network_id = made.stdout.strip()
    try:
        shown = json.loads(service.docker("network", "inspect", "testnet").stdout)[0]
        assert (shown["Id"], shown["Driver"]) == (network_id, "bridge")
        assert shown["IPAM"]["Config"] == [{"Subnet": "10.77.0.0/24", "Gateway": "10.77.0.1"}]
        twice = service.docker("network", "create", "testnet")
        assert twice.returncode == 1 and "already exists" in twice.stderr
        custom = service.docker("network", "ls", "-q", "--no-trunc", "-f", "type=custom")
        assert custom.stdout.split() == [network_id]
        # One container on network none, and one the CLI makes on the default bridge, never
        # started here, so that joining changes its configuration only.
        created = service.docker(
            "create", "--name", "isolated", "--network", "none", "busybox", "true"
        )
        assert created.returncode == 0, created.stderr
        created = service.pydock("create", "--name", "member", "--network", "bridge", "busybox")
        assert created.returncode == 0, created.stderr
        try:
            # A container on no network that is not running takes the network as its own.
            adopted = service.docker("network", "connect", "testnet", "isolated")
            assert adopted.returncode == 0, adopted.stderr
            mode = service.docker("inspect", "-f", "{{.HostConfig.NetworkMode}}", "isolated")
            assert mode.stdout.strip() == "testnet"
            left = service.docker("network", "disconnect", "testnet", "isolated")
            assert left.returncode == 0, left.stderr
            joined = service.docker("network", "connect", "--alias", "m1", "testnet", "member")
            assert joined.returncode == 0, joined.stderr
            busy = service.docker("network", "rm", "testnet")  # member is configured on it
            assert busy.returncode == 1 and "has active endpoints" in busy.stderr
            left = service.docker("network", "disconnect", "testnet", "member")
            assert left.returncode == 0, left.stderr
            not_there = service.docker("network", "disconnect", "testnet", "member")
            assert not_there.returncode == 1 and "is not connected" in not_there.stderr
        finally:
            service.docker("rm", "-f", "member", "isolated")
        assert service.docker("network", "rm", "testnet").stdout == "testnet\n"
        assert service.docker("network", "inspect", "testnet").returncode == 1
        again = service.docker("network", "create", "pruned")
        assert again.returncode == 0, again.stderr
        pruned = service.docker("network", "prune", "-f")
        assert (pruned.returncode, pruned.stdout) == (0, "Deleted Networks:\npruned\n\n")
    finally:
        service.docker("network", "rm", "testnet", "pruned")
    assert service.docker("network", "ls", "-q").stdout.count("\n") == 3


def test_logs_timestamps_since_until_tail(service: Service) -> None:
    # Two lines, then (after the test has read the clock) a third, released through a file.
    script = "echo one; echo two >&2; while [ ! -e /go ]; do sleep 0.05; done; echo three"
    started = service.docker("run", "-d", "--name", "talker", "busybox", "sh", "-c", script)
    assert started.returncode == 0, started.stderr
    try:
        deadline = time.monotonic() + 30
        while service.docker("logs", "talker").stdout != "one\n":
            assert time.monotonic() < deadline, "the first line never came"
        split = time.time()  # after "one" and "two" were logged, before "three" is
        put = service.docker("exec", "talker", "touch", "/go")
        assert put.returncode == 0, put.stderr
        assert service.docker("wait", "talker").stdout.strip() == "0"
        stamped = service.docker("logs", "-t", "talker")
        lines = stamped.stdout.splitlines()
        assert [line.split(" ", 1)[1] for line in lines] == ["one", "three"]
        stamp = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z")
        assert all(stamp.fullmatch(line.split(" ", 1)[0]) for line in lines), lines
        assert stamped.stderr.split(" ", 1)[1] == "two\n"
        since = service.docker("logs", "--since", f"{split:.6f}", "talker")
        assert (since.stdout, since.stderr) == ("three\n", "")
        until = service.docker("logs", "--until", f"{split:.6f}", "talker")
        assert (until.stdout, until.stderr) == ("one\n", "two\n")
        tail = service.docker("logs", "--tail", "1", "talker")
        assert (tail.stdout, tail.stderr) == ("three\n", "two\n")
        bad = service.docker("logs", "--since", "yesterday-ish", "talker")
        assert bad.returncode != 0 and "yesterday-ish" in bad.stderr
    finally:
        service.docker("rm", "-f", "talker")


def test_run_flags_reach_the_container(service: Service) -> None:
    script = (
        "echo nofile=$(ulimit -n):$(ulimit -Hn);"
        " grep ' /dev/shm ' /proc/mounts | grep -o 'size=[^, ]*';"
        " echo groups=$(id -G); echo forward=$(cat /proc/sys/net/ipv4/ip_forward);"
        " grep ' /scratch ' /proc/mounts | grep -o 'size=[^, ]*'"
    )
    ran = service.docker(
        "run", "--name", "flagged", "--label", "team=storage", "--ulimit", "nofile=1024:2048",
        "--shm-size", "16m", "--group-add", "4242", "--sysctl", "net.ipv4.ip_forward=1",
        "--tmpfs", "/scratch:size=1m", "--stop-signal", "SIGUSR1", "busybox", "sh", "-c", script,
    )  # fmt: skip
    try:
        assert ran.returncode == 0, ran.stderr
        assert ran.stdout.splitlines() == [
            "nofile=1024:2048",
            "size=16384k",
            "groups=0 4242",
            "forward=1",
            "size=1024k",
        ]
        shown = service.docker(
            "inspect", "-f", "{{json .Config.Labels}} {{.Config.StopSignal}}", "flagged"
        )
        assert shown.stdout.strip() == '{"team":"storage"} SIGUSR1', shown.stderr
        listed = service.docker("ps", "-a", "--format", "{{.Labels}}", "--filter", "name=flagged")
        assert listed.stdout.strip() == "team=storage"
        bad = service.docker("run", "--rm", "--ulimit", "nofile=x", "busybox", "true")
        assert bad.returncode != 0
    finally:
        service.docker("rm", "-f", "flagged")


def test_healthcheck_through_the_service(service: Service) -> None:
    started = service.docker(
        "run", "-d", "--name", "checked", "--health-cmd", "test -e /ok",
        "--health-interval", "200ms", "--health-retries", "1", "--oom-score-adj", "200",
        "busybox", "sh", "-c", "touch /ok; exec sleep 300",
    )  # fmt: skip
    assert started.returncode == 0, started.stderr
    try:
        shown = ""
        deadline = time.monotonic() + 30
        while shown != "healthy":
            assert time.monotonic() < deadline, f"health never became healthy: {shown!r}"
            shown = service.docker("inspect", "-f", "{{.State.Health.Status}}", "checked")
            shown = shown.stdout.strip()
        listed = service.docker("ps", "--format", "{{.Status}}", "--filter", "name=checked")
        assert listed.stdout.strip().endswith("(healthy)"), listed.stdout
        config = service.docker(
            "inspect", "-f", "{{json .Config.Healthcheck.Test}} {{.HostConfig.OomScoreAdj}}",
            "checked",
        )  # fmt: skip
        assert config.stdout.strip() == '["CMD-SHELL","test -e /ok"] 200', config.stdout
        adj = service.docker("exec", "checked", "cat", "/proc/1/oom_score_adj")
        assert adj.stdout.strip() == "200"
    finally:
        service.docker("rm", "-f", "checked")


def test_starts_leave_no_descriptor_behind(service: Service) -> None:
    """Each start's runtime handle held two pidfds that nothing closed, two descriptors more
    per container for the service's whole life."""
    assert service.process is not None
    fds = Path(f"/proc/{service.process.pid}/fd")

    def run(detach: bool) -> None:
        flags = ["-d"] if detach else []
        ran = service.docker("run", *flags, "--rm", "--network", "none", "busybox", "true")
        assert ran.returncode == 0, ran.stderr

    for detach in (False, True, False):  # the worker threads' store connections are open
        run(detach)
    before = len(os.listdir(fds))
    for detach in (False, True, False, True, False, True):
        run(detach)
    for running in service.docker("ps", "-q").stdout.split():
        service.docker("wait", running)  # a detached one may still be ending (or gone: fine)
    assert len(os.listdir(fds)) <= before
