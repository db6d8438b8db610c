"""What ``pydock bench`` measures: pydock's drivers and the tools people would use instead.

Every backend offers some of the operations below; a workload names the one it needs, and a
backend without it is shown as "does not apply". Each operation does its own untimed set-up and
returns the seconds of the timed part only, taken after :meth:`Clock.settle`.

==============  =========================================================================
operation       pydock driver / reference tool
==============  =========================================================================
unpack          ``apply_diff`` of the layer tar / ``tar -xf``
snapshot        ``create_read_write`` on the data layer / ``cp -a`` of the tree
mount           ``get`` + ``put`` of a layer on a chain / ``mount -t overlay`` or
                ``fuse-overlayfs`` + unmount
start           ``pydock run --rm --network none busybox /bin/true`` / ``podman run --rm
                --network none``, ``crun run``, ``docker run --rm --network none`` through
                ``pydock system service`` (pydock-api)
net             a busybox ``httpd`` container serving the seeded site on a port of
                127.0.0.1: ``pydock run -d -p`` on the default bridge / ``pydock run -d
                --network host`` (pydock-host), ``podman run -d -p`` on podman's default network
view            a container's root mounted over the data layer (workloads run inside it)
diff            ``diff`` of a layer with changed files into a file / ``tar -cf``
remove          ``remove`` of an unpacked layer / ``rm -rf``
==============  =========================================================================
"""

from __future__ import annotations

import contextlib
import itertools
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import graphdriver
from pydock.bench.crun import CrunBundle
from pydock.bench.data import Dataset, DataSource, Site, Size, small_tar
from pydock.bench.net import HOST, free_port, wait_ready
from pydock.bench.podman import PodmanStore

TIMEOUT = 600  # seconds any one tool may take before the benchmark gives up on it


class NotApplicable(Exception):
    """The backend has no such operation."""


class Clock:
    """Times an action after flushing dirty pages and, for cold runs as root, dropping caches."""

    def __init__(self, can_drop: bool) -> None:
        self.can_drop = can_drop

    def settle(self, cold: bool = False) -> None:
        os.sync()  # so no run pays for the writeback of the one before
        if cold and self.can_drop:
            Path("/proc/sys/vm/drop_caches").write_text("3\n")

    def time(self, action: Callable[[], object], cold: bool = False) -> float:
        self.settle(cold)
        start = time.perf_counter()
        action()
        return time.perf_counter() - start


def run_tool(argv: list[str], cwd: Path | None = None) -> None:
    """Run one tool; CalledProcessError (with its stderr) when it fails."""
    subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT, cwd=cwd)


def tool_error(exc: subprocess.CalledProcessError) -> str:
    """The last line a failed tool printed, for a one-line reason."""
    text = exc.stderr.decode(errors="replace").strip() if exc.stderr else ""
    lines = text.splitlines()
    argv = exc.cmd if isinstance(exc.cmd, list) else [str(exc.cmd)]
    return f"{os.path.basename(str(argv[0]))} exited {exc.returncode}" + (
        f": {lines[-1]}" if lines else ""
    )


class Backend:
    """One thing measured: its name, what it is, and the operations it offers."""

    name = ""
    kind = "reference"
    description = ""
    operations: frozenset[str] = frozenset()

    def __init__(self, work: Path, source: DataSource, clock: Clock) -> None:
        self.work = work / self.name
        self.source = source
        self.clock = clock
        self._ids = itertools.count()

    @property
    def data(self) -> Dataset:
        """The seeded data, generated on first use."""
        return self.source.get()

    @property
    def size(self) -> Size:
        return self.source.size

    @property
    def site(self) -> Site:
        """The files the net workloads fetch, written on first use."""
        return self.source.site()

    def unavailable(self) -> str | None:
        """Why this backend cannot run here, or None."""
        return None

    def setup(self) -> None:
        """Untimed preparation before the first workload (the data waits for first use)."""
        self.work.mkdir(parents=True, exist_ok=True)

    def close(self) -> None:
        """Unmount and delete everything this backend made."""
        shutil.rmtree(self.work, ignore_errors=True)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"

    def unpack(self) -> float:
        raise NotApplicable

    def snapshot(self) -> float:
        raise NotApplicable

    def mount(self, depth: int) -> float:
        raise NotApplicable

    def start(self) -> float:
        raise NotApplicable

    def view(self) -> contextlib.AbstractContextManager[Path]:
        raise NotApplicable

    def diff(self) -> float:
        raise NotApplicable

    def remove(self) -> float:
        raise NotApplicable

    def serve(self) -> int:
        """The port of 127.0.0.1 where this backend's container serves the site (net).

        The server starts on first use (untimed, answering before this returns) and runs
        until :meth:`close`.
        """
        raise NotApplicable

    def change_files(self, root: Path) -> None:
        """Rewrite the first ``changed`` small files below ``root`` (the diff workload's edit)."""
        for rel in self.data.paths[: self.size.changed]:
            (root / rel).write_bytes(b"changed by pydock bench\n")


def pydock_argv(work: Path, storage: str | None, *args: str) -> list[str]:
    """``python -m pydock`` on a root and run root of its own under ``work``."""
    argv = [sys.executable, "-m", "pydock", "--root", str(work / "root"),
            "--run-root", str(work / "run")]  # fmt: skip
    return argv + (["--storage", storage] if storage else []) + list(args)


def httpd_argv(listen: str) -> list[str]:
    """busybox httpd in the foreground on ``listen`` ([IP:]PORT), serving /www."""
    return ["httpd", "-f", "-p", listen, "-h", "/www"]


class _PydockServer:
    """A detached pydock container serving the site, removed by :meth:`close`."""

    def __init__(self, pydock: Callable[..., list[str]]) -> None:
        self.pydock = pydock
        self.containers: list[str] = []  # every one started, also one that never answered
        self.port: int | None = None

    def start(self, site: Site, network: str) -> int:
        """Start it (once) on ``network`` (bridge: published with -p; host: listens itself)."""
        if self.port is None:
            port = free_port()
            if network == "host":
                options, listen = ["--network", "host"], f"{HOST}:{port}"
            else:
                options, listen = ["--network", network, "-p", f"{HOST}:{port}:80"], "80"
            argv = self.pydock("run", "-d", *options, "-v", f"{site.root}:/www:ro", "busybox",
                               *httpd_argv(listen))  # fmt: skip
            done = subprocess.run(argv, check=True, capture_output=True, timeout=TIMEOUT)
            self.containers += done.stdout.decode().split()[-1:]
            wait_ready(port, site)
            self.port = port
        return self.port

    def close(self) -> None:
        if self.containers:
            with contextlib.suppress(Exception):
                run_tool(self.pydock("rm", "-f", *self.containers))
        self.containers, self.port = [], None


# -- pydock's drivers ---------------------------------------------------------------------------


class DriverBackend(Backend):
    """A pydock graph driver, called through the graphdriver interface in this process."""

    kind = "driver"
    operations = frozenset(
        {"unpack", "snapshot", "mount", "start", "view", "diff", "remove", "net"}
    )

    def __init__(
        self, name: str, work: Path, source: DataSource, clock: Clock, options: dict[str, str]
    ) -> None:
        self.name = name
        self.description = f"pydock's {name} driver"
        super().__init__(work, source, clock)
        self.options = options
        self.home = self.work / "home"
        self._driver: graphdriver.Driver | None = None
        self._chains: dict[int, str] = {}
        self._started = False
        self._data_layer: str | None = None
        self._server = _PydockServer(self._pydock)

    @property
    def driver(self) -> graphdriver.Driver:
        assert self._driver is not None, "setup() first"
        return self._driver

    def unavailable(self) -> str | None:
        if self.name not in graphdriver.registered():
            return "not a pydock driver"
        self.home.mkdir(parents=True, exist_ok=True)
        return graphdriver.probe(self.name, self.home)

    def setup(self) -> None:
        super().setup()
        self._driver = graphdriver.get_driver(self.name, self.home, self.options)

    def data_layer(self) -> str:
        """The layer holding the unpacked data (unpacked on first use)."""
        if self._data_layer is None:
            try:
                self._unpack_into("data")
            except BaseException:
                with contextlib.suppress(Exception):
                    self.driver.remove("data")  # so the next workload tries afresh
                raise
            self._data_layer = "data"
        return self._data_layer

    def close(self) -> None:
        self._server.close()
        if self._driver is not None:
            with contextlib.suppress(Exception):
                self._driver.cleanup()
        if self._started:
            with contextlib.suppress(Exception):
                run_tool(self._pydock("system", "prune", "--all", "--force"))
        super().close()

    def _unpack_into(self, layer: str) -> float:
        self.driver.create(layer, None)
        with open(self.data.tar, "rb") as stream:
            self.clock.settle()
            begin = time.perf_counter()
            self.driver.apply_diff(layer, None, stream)
            return time.perf_counter() - begin

    def unpack(self) -> float:
        layer = self.new_id("unpack")
        try:
            return self._unpack_into(layer)
        finally:
            self.driver.remove(layer)

    def snapshot(self) -> float:
        layer = self.new_id("snap")
        try:
            return self.clock.time(lambda: self.driver.create_read_write(layer, self.data_layer()))
        finally:
            self.driver.remove(layer)

    def _chain(self, depth: int) -> str:
        """The top of a chain of ``depth`` layers holding one small file each (built once)."""
        if depth not in self._chains:
            parent = None
            for level in range(depth):
                layer = f"chain{depth}-{level}"
                self.driver.create(layer, parent)
                tar = small_tar(self.work / "level.tar", f"level{level}", b"%d\n" % level)
                with open(tar, "rb") as stream:
                    self.driver.apply_diff(layer, parent, stream)
                parent = layer
            assert parent is not None
            self._chains[depth] = parent
        return self._chains[depth]

    def mount(self, depth: int) -> float:
        layer = self.new_id("mount")
        self.driver.create_read_write(layer, self._chain(depth))
        try:
            return self.clock.time(lambda: (self.driver.get(layer), self.driver.put(layer)))
        finally:
            self.driver.remove(layer)

    @contextlib.contextmanager
    def view(self) -> Iterator[Path]:
        layer = self.new_id("view")
        self.driver.create_read_write(layer, self.data_layer())
        try:
            yield self.driver.get(layer)
            self.driver.put(layer)
        finally:
            if self.driver.is_mounted(layer):
                self.driver.put(layer)
            self.driver.remove(layer)

    def diff(self) -> float:
        layer = self.new_id("diff")
        self.driver.create_read_write(layer, self.data_layer())
        out = self.work / "diff.tar"
        try:
            self.change_files(self.driver.get(layer))
            self.driver.put(layer)

            def export() -> None:
                with self.driver.diff(layer, self.data_layer()) as stream, open(out, "wb") as sink:
                    shutil.copyfileobj(stream, sink, 1 << 20)

            return self.clock.time(export)
        finally:
            if self.driver.is_mounted(layer):
                self.driver.put(layer)
            self.driver.remove(layer)
            out.unlink(missing_ok=True)

    def remove(self) -> float:
        layer = self.new_id("remove")
        self._unpack_into(layer)
        return self.clock.time(lambda: self.driver.remove(layer))

    def _pydock(self, *args: str) -> list[str]:
        return pydock_argv(self.work, self.name, *args)

    def _busybox(self) -> None:
        """Import the built-in busybox into this backend's root (once)."""
        if not self._started:
            self._started = True
            run_tool(self._pydock("import", "builtin:busybox", "busybox"))

    def start(self) -> float:
        # No network, as the podman and crun references start theirs.
        command = self._pydock("run", "--rm", "--network", "none", "busybox", "/bin/true")
        if not self._started:
            self._busybox()
            run_tool(command)  # the first run also unpacks the image for this driver
        return self.clock.time(lambda: run_tool(command))

    def serve(self) -> int:
        self._busybox()
        return self._server.start(self.site, "bridge")


# -- reference tools ----------------------------------------------------------------------------


class TarBackend(Backend):
    """GNU tar and coreutils on plain directories: what a layer costs with no driver at all."""

    name = "tar"
    description = "GNU tar and coreutils: tar -xf, cp -a, tar -cf, rm -rf"
    operations = frozenset({"unpack", "snapshot", "diff", "remove"})

    def unavailable(self) -> str | None:
        missing = [tool for tool in ("tar", "cp", "rm") if shutil.which(tool) is None]
        return f"{', '.join(missing)} not installed" if missing else None

    def _extract(self, name: str) -> Path:
        target = self.work / name
        target.mkdir()
        run_tool(["tar", "-xf", str(self.data.tar), "-C", str(target)])
        return target

    def _data_dir(self) -> Path:
        """The unpacked data (unpacked on first use)."""
        data = self.work / "data"
        if not data.exists():
            self._extract("data.part").rename(data)  # a failed unpack leaves no "data"
        return data

    def unpack(self) -> float:
        target = self.work / self.new_id("unpack")
        target.mkdir()
        try:
            argv = ["tar", "-xf", str(self.data.tar), "-C", str(target)]
            return self.clock.time(lambda: run_tool(argv))
        finally:
            shutil.rmtree(target)

    def snapshot(self) -> float:
        target = self.work / self.new_id("snap")
        argv = ["cp", "-a", str(self._data_dir()), str(target)]
        try:
            return self.clock.time(lambda: run_tool(argv))
        finally:
            shutil.rmtree(target, ignore_errors=True)

    def diff(self) -> float:
        changed = self.work / self.new_id("diff")
        out = self.work / "diff.tar"
        for rel in self.data.paths[: self.size.changed]:
            (changed / rel).parent.mkdir(parents=True, exist_ok=True)
        self.change_files(changed)
        try:
            argv = ["tar", "--format=posix", "-cf", str(out), "-C", str(changed), "."]
            return self.clock.time(lambda: run_tool(argv))
        finally:
            shutil.rmtree(changed)
            out.unlink(missing_ok=True)

    def remove(self) -> float:
        target = self._extract(self.new_id("remove"))
        return self.clock.time(lambda: run_tool(["rm", "-rf", str(target)]))


class _OverlayReference(Backend):
    """An overlay mounted by hand over the data tree (or a chain of one-file layers)."""

    operations = frozenset({"mount", "view"})

    def setup(self) -> None:
        super().setup()
        self._mounted: set[Path] = set()

    def _lower(self) -> Path:
        """The unpacked data, the lower layer of every view (unpacked on first use)."""
        lower = self.work / "lower"
        if not lower.exists():
            part = self.work / "lower.part"
            part.mkdir()
            run_tool(["tar", "-xf", str(self.data.tar), "-C", str(part)])
            part.rename(lower)
        return lower

    def close(self) -> None:
        for target in list(getattr(self, "_mounted", ())):
            with contextlib.suppress(Exception):
                self._unmount(target)
        super().close()

    def _mount_command(self, options: str, target: Path, cwd: Path) -> None:
        raise NotImplementedError

    def _unmount_command(self, target: Path) -> None:
        raise NotImplementedError

    def _mount(self, options: str, target: Path, cwd: Path) -> None:
        self._mount_command(options, target, cwd)
        self._mounted.add(target)

    def _unmount(self, target: Path) -> None:
        self._unmount_command(target)
        self._mounted.discard(target)

    @contextlib.contextmanager
    def _scratch(self, lowers: str) -> Iterator[tuple[str, Path]]:
        """Mount options with a new empty upper, and the mount point; all removed after."""
        name = self.new_id("m")
        dirs = [self.work / f"{name}-{part}" for part in ("upper", "work", "mnt")]
        for directory in dirs:
            directory.mkdir()
        try:
            yield f"lowerdir={lowers},upperdir={dirs[0]},workdir={dirs[1]}", dirs[2]
        finally:
            if dirs[2] in self._mounted:
                self._unmount(dirs[2])
            for directory in dirs:
                shutil.rmtree(directory, ignore_errors=True)

    def _chain(self, depth: int) -> Path:
        """A directory of ``depth`` one-file layers named 0, 1, ... (built once)."""
        chain = self.work / f"chain{depth}"
        if not chain.exists():
            for level in range(depth):
                (chain / str(level)).mkdir(parents=True)
                (chain / str(level) / f"level{level}").write_bytes(b"%d\n" % level)
        return chain

    def mount(self, depth: int) -> float:
        chain = self._chain(depth)
        # Short relative names, resolved against the chain directory, keep 500 lowers in a page.
        lowers = ":".join(str(level) for level in reversed(range(depth)))
        with self._scratch(lowers) as (options, target):

            def cycle() -> None:
                self._mount(options, target, chain)
                self._unmount(target)

            return self.clock.time(cycle)

    @contextlib.contextmanager
    def view(self) -> Iterator[Path]:
        with self._scratch(str(self._lower())) as (options, target):
            self._mount(options, target, self.work)
            yield target


class KernelOverlayBackend(_OverlayReference):
    """The kernel's overlayfs, mounted with mount(8) as a user would by hand."""

    name = "kernel-overlay"
    description = "kernel overlayfs mounted directly: mount -t overlay, umount"

    def unavailable(self) -> str | None:
        if os.geteuid() != 0:
            return "needs root (mount -t overlay)"
        if "overlay" not in Path("/proc/filesystems").read_text().split():
            return "overlay is not in /proc/filesystems"
        return None

    def _mount_command(self, options: str, target: Path, cwd: Path) -> None:
        run_tool(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], cwd=cwd)

    def _unmount_command(self, target: Path) -> None:
        run_tool(["umount", str(target)])


class FuseOverlayfsBackend(_OverlayReference):
    """fuse-overlayfs, the userspace overlay podman uses without kernel overlay."""

    name = "fuse-overlayfs"
    description = "fuse-overlayfs (C, libfuse3), unmounted with fusermount3 -u"

    def unavailable(self) -> str | None:
        for tool in ("fuse-overlayfs", "fusermount3"):
            if shutil.which(tool) is None:
                return f"{tool} not installed"
        if not os.access("/dev/fuse", os.R_OK | os.W_OK):
            return "/dev/fuse is not open to this user"
        return None

    def _mount_command(self, options: str, target: Path, cwd: Path) -> None:
        run_tool(["fuse-overlayfs", "-o", options, str(target)], cwd=cwd)

    def _unmount_command(self, target: Path) -> None:
        run_tool(["fusermount3", "-u", str(target)])


class PodmanBackend(Backend):
    """podman with its own private store, running the same busybox root file system."""

    name = "podman"
    description = (
        "podman run --rm (crun, kernel overlay storage) in a private store; net: podman run -d"
        " -p on podman's default network"
    )
    operations = frozenset({"start", "net"})

    def unavailable(self) -> str | None:
        if shutil.which("podman") is None:
            return "podman not installed"
        if os.geteuid() != 0:
            return "needs root (a rootless podman needs its own user set-up)"
        return None

    def setup(self) -> None:
        super().setup()
        self.store = PodmanStore(self.work, driver="overlay")
        self.command = self.store.prepare()
        self.port: int | None = None

    def close(self) -> None:
        store = getattr(self, "store", None)
        if store is not None:
            store.close()
        super().close()

    def start(self) -> float:
        return self.clock.time(lambda: run_tool(self.command))

    def serve(self) -> int:
        if self.port is None:
            port = free_port()
            self.store.serve(self.site.root, f"{HOST}:{port}:80", httpd_argv("80"))
            wait_ready(port, self.site)
            self.port = port
        return self.port


class PydockHostBackend(Backend):
    """pydock with ``--network host``: the same server with no bridge, veth or NAT in the way."""

    name = "pydock-host"
    description = "pydock run -d --network host (the container shares the host's network)"
    operations = frozenset({"net"})

    def setup(self) -> None:
        super().setup()
        self.server = _PydockServer(lambda *args: pydock_argv(self.work, None, *args))
        run_tool(pydock_argv(self.work, None, "import", "builtin:busybox", "busybox"))

    def close(self) -> None:
        server = getattr(self, "server", None)
        if server is not None:
            server.close()
            with contextlib.suppress(Exception):
                run_tool(pydock_argv(self.work, None, "system", "prune", "--all", "--force"))
        super().close()

    def serve(self) -> int:
        return self.server.start(self.site, "host")


class CrunBackend(Backend):
    """crun alone on an unpacked busybox bundle: the runtime's floor, no engine and no storage."""

    name = "crun"
    description = "crun run on an unpacked busybox bundle (no engine, no image store)"
    operations = frozenset({"start"})

    def unavailable(self) -> str | None:
        if shutil.which("crun") is None:
            return "crun not installed"
        if os.geteuid() != 0:
            return "needs root (a rootless crun needs its own user set-up)"
        return None

    def setup(self) -> None:
        super().setup()
        self.bundle = CrunBundle(self.work)
        self.bundle.prepare()

    def close(self) -> None:
        bundle = getattr(self, "bundle", None)
        if bundle is not None:
            bundle.close()
        super().close()

    def start(self) -> float:
        argv = self.bundle.run_argv()
        return self.clock.time(lambda: run_tool(argv))


class PydockApiBackend(Backend):
    """The Docker client through ``pydock system service``: a start from a resident process."""

    name = "pydock-api"
    description = "docker run --rm --network none through pydock system service (the best driver)"
    operations = frozenset({"start"})
    docker = "/usr/bin/docker"

    def unavailable(self) -> str | None:
        if not os.path.exists(self.docker):
            return "docker.io's client /usr/bin/docker not installed"
        if os.geteuid() != 0:
            return "needs root (like the podman and crun references)"
        return None

    def setup(self) -> None:
        super().setup()
        # A unix socket path has at most 107 bytes: the socket is not under ``work``.
        self.socket_dir = Path(tempfile.mkdtemp(prefix="pydock-bench-api-"))
        pydock = [sys.executable, "-m", "pydock", "--root", str(self.work / "root")]
        pydock += ["--run-root", str(self.work / "run")]
        run_tool([*pydock, "import", "builtin:busybox", "busybox"])
        uri = f"unix://{self.socket_dir / 'docker.sock'}"
        self.service = subprocess.Popen(
            [*pydock, "system", "service", "--time", "0", uri],
            stderr=subprocess.PIPE,
            start_new_session=True,
        )
        assert self.service.stderr is not None
        line = self.service.stderr.readline()  # printed once it listens (or the failure)
        if b"serving the Docker API" not in line:
            raise RuntimeError(f"pydock system service: {line.decode(errors='replace').strip()}")
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_HOST"] = uri
        self.command = [self.docker, "run", "--rm", "--network", "none", "busybox", "/bin/true"]
        self._run()  # the first run also unpacks the image for the driver

    def _run(self) -> None:
        subprocess.run(self.command, check=True, capture_output=True, timeout=TIMEOUT, env=self.env)

    def close(self) -> None:
        service = getattr(self, "service", None)
        if service is not None:
            service.terminate()
            try:
                service.wait(timeout=30)
            except subprocess.TimeoutExpired:
                service.kill()
                service.wait(timeout=30)
            if service.stderr is not None:
                service.stderr.close()
        shutil.rmtree(getattr(self, "socket_dir", self.work / "none"), ignore_errors=True)
        super().close()

    def start(self) -> float:
        return self.clock.time(self._run)


REFERENCES: dict[str, type[Backend]] = {
    backend.name: backend
    for backend in (
        TarBackend, KernelOverlayBackend, FuseOverlayfsBackend, PodmanBackend, CrunBackend,
        PydockApiBackend, PydockHostBackend,
    )
}  # fmt: skip
