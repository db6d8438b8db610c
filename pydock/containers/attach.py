"""Where a container's standard streams go, and the copying pydock does while it runs.

    detached   stdout and stderr are pipes the container's monitor copies into its log files
               (with each line's time); with a terminal, a small copier process drains it
               into stdout.log
    direct     ``run --rm`` without a terminal: the caller's own descriptors, nothing copied
    tee        foreground without ``--rm``: pipes, copied to the caller's stdout/stderr and to
               the log files
    console    foreground with ``-t``: the container's terminal, copied to the caller's
               stdout (and the log); the caller's stdin goes in with ``-i``, in raw mode when
               it is a terminal itself; the detach keys (ctrl-p ctrl-q) in that input leave
               the container running detached, its terminal drained into the log by a copier

While a foreground container runs, the usual termination signals sent to pydock are passed on
to it (Docker's sig-proxy; ``--sig-proxy=false``: they act on pydock alone, the container runs
on), and a resized terminal resizes the container's. ``-a STREAM`` chooses the streams a
foreground run shows (the others still reach the logs; ``direct``: they are dropped).
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import resource
import selectors
import signal
import termios
import time
import tty
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import FrameType
from typing import Protocol

import runtime
from pydock.containers.files import ContainerFiles
from runtime.logindex import IndexedLog, LogCopy, open_index

FORWARDED = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGHUP,
    signal.SIGQUIT,
    signal.SIGUSR1,
    signal.SIGUSR2,
)
CHUNK = 1 << 16
STREAMS = ("stdin", "stdout", "stderr")
# What ``pump`` returns when the user detached (a container's status is never negative).
DETACHED = -1
# Docker's default detach keys: ctrl-p, ctrl-q.
DEFAULT_DETACH_KEYS = b"\x10\x11"


class Process(Protocol):
    """What a started container (or exec'd process) offers to whoever copies its streams."""

    console_fd: int | None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; the Docker status."""
        ...

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Send a signal."""
        ...


class Attachment:
    """The container's descriptors, and what to do with them while it runs."""

    # Docker's sig-proxy: pass termination signals to the container while attached.
    proxy = True

    def __init__(self) -> None:
        self._null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        self._owned: list[int] = [self._null]

    def stdio(self) -> tuple[int, int, int]:
        """Descriptors 0, 1 and 2 of the container's command."""
        return self._null, self._null, self._null

    def log_copies(self) -> tuple[LogCopy, ...]:
        """Output pipes the container's monitor is to copy into the logs."""
        return ()

    def started(self, container: Process) -> None:
        """The container runs: drop the descriptors only it should hold."""

    def pump(self, container: Process) -> int:
        """Copy until the container's streams end; wait for it and return its status."""
        with forwarding(container, proxy=self.proxy):
            return container.wait()

    def close(self) -> None:
        """Close every descriptor this attachment still holds."""
        while self._owned:
            with contextlib.suppress(OSError):
                os.close(self._owned.pop())

    def _own(self, fd: int) -> int:
        self._owned.append(fd)
        return fd

    def _drop(self, fd: int) -> None:
        if fd in self._owned:
            self._owned.remove(fd)
            os.close(fd)


class Detached(Attachment):
    """Output into the log files; the caller goes away.

    Without a terminal the output goes through pipes that the container's monitor copies
    into the logs, recording each line's time; with one, a copier process drains it.
    """

    def __init__(self, files: ContainerFiles, tty: bool = False) -> None:
        super().__init__()
        self.files = files
        files.create()
        self._out = self._own(files.open_log(files.stdout_log))
        self._err = self._own(files.open_log(files.stderr_log))
        self._copies: tuple[LogCopy, ...] = ()
        self._stdio = (self._null, self._out, self._err)
        if not tty:
            copies = []
            writes = []
            for log, log_fd in ((files.stdout_log, self._out), (files.stderr_log, self._err)):
                read_end, write_end = (self._own(fd) for fd in os.pipe2(os.O_CLOEXEC))
                copies.append(LogCopy(read_end, log_fd, self._own(open_index(log))))
                writes.append(write_end)
            self._copies = tuple(copies)
            self._stdio = (self._null, writes[0], writes[1])

    def stdio(self) -> tuple[int, int, int]:
        return self._stdio

    def log_copies(self) -> tuple[LogCopy, ...]:
        return self._copies

    def started(self, container: Process) -> None:
        if container.console_fd is not None:
            index = self._own(open_index(self.files.stdout_log))
            spawn_copier(container.console_fd, self._out, index)
            os.close(container.console_fd)
            container.console_fd = None
        self.close()


class Direct(Attachment):
    """The caller's own standard streams (stdin only with ``-i``); a stream not among
    ``shown`` goes to /dev/null."""

    def __init__(self, interactive: bool, shown: frozenset[str] = frozenset(STREAMS)) -> None:
        super().__init__()
        self.interactive = interactive
        self.shown = shown

    def stdio(self) -> tuple[int, int, int]:
        out = 1 if "stdout" in self.shown else self._null
        err = 2 if "stderr" in self.shown else self._null
        return 0 if self.interactive else self._null, out, err


class Tee(Attachment):
    """Pipes copied to the caller's stdout/stderr (those among ``shown``) and to the log
    files."""

    def __init__(
        self,
        files: ContainerFiles,
        interactive: bool,
        shown: frozenset[str] = frozenset(STREAMS),
    ) -> None:
        super().__init__()
        self.interactive = interactive
        self.shown = shown
        files.create()
        self._logs = tuple(
            IndexedLog(self._own(files.open_log(log)), self._own(open_index(log)))
            for log in (files.stdout_log, files.stderr_log)
        )
        out_read, self._out_write = (self._own(fd) for fd in os.pipe2(os.O_CLOEXEC))
        err_read, self._err_write = (self._own(fd) for fd in os.pipe2(os.O_CLOEXEC))
        self._reads = (out_read, err_read)

    def stdio(self) -> tuple[int, int, int]:
        return 0 if self.interactive else self._null, self._out_write, self._err_write

    def started(self, container: Process) -> None:
        self._drop(self._out_write)
        self._drop(self._err_write)

    def pump(self, container: Process) -> int:
        screens = [
            fd if name in self.shown else None for fd, name in ((1, "stdout"), (2, "stderr"))
        ]
        targets = {
            self._reads[0]: (screens[0], self._logs[0]),
            self._reads[1]: (screens[1], self._logs[1]),
        }
        with forwarding(container, proxy=self.proxy), selectors.DefaultSelector() as selector:
            for fd in targets:
                selector.register(fd, selectors.EVENT_READ)
            while selector.get_map():
                for key, _ in selector.select():
                    data = os.read(key.fd, CHUNK)
                    if not data:
                        selector.unregister(key.fd)
                        continue
                    when = time.time_ns()  # before the caller can see it
                    screen, log = targets[key.fd]
                    if screen is not None:
                        write_all(screen, data)
                    log.write(data, when)
            return container.wait()


class Console(Attachment):
    """The container's terminal, copied to the caller (and its input, with ``-i``)."""

    def __init__(
        self,
        files: ContainerFiles | None,
        interactive: bool,
        shown: frozenset[str] = frozenset(STREAMS),
    ) -> None:
        super().__init__()
        self.interactive = interactive
        # A terminal is one stream: shown with either of stdout and stderr.
        self.shown = bool(shown & {"stdout", "stderr"})
        self.detach_keys = DEFAULT_DETACH_KEYS
        self._held = b""
        self._log: IndexedLog | None = None
        if files is not None:
            files.create()
            log = files.stdout_log
            self._log = IndexedLog(self._own(files.open_log(log)), self._own(open_index(log)))

    def pump(self, container: Process) -> int:
        master = container.console_fd
        if master is None:
            return super().pump(container)
        _copy_window_size(master)
        raw = self.interactive and os.isatty(0)
        forwards = forwarding(container, master, proxy=self.proxy)
        detached = False
        with forwards, _raw_mode(raw), selectors.DefaultSelector() as sel:
            sel.register(master, selectors.EVENT_READ)
            if self.interactive:
                sel.register(0, selectors.EVENT_READ)
            done = False
            while not done:
                for key, _ in sel.select():
                    if key.fd == 0:
                        data = os.read(0, CHUNK)
                        if not data:
                            sel.unregister(0)
                            continue
                        passed, detached = self._escape(data)
                        write_all(master, passed)
                        if detached:
                            done = True
                            break
                        continue
                    data = _read_console(master)
                    if not data:
                        done = True
                        break
                    when = time.time_ns()  # before the caller can see it
                    if self.shown:
                        write_all(1, data)
                    if self._log is not None:
                        self._log.write(data, when)
        if detached:
            # Outside the signal forwarding: the copier must not inherit its handlers.
            self._hand_over(master)
            return DETACHED
        return container.wait()

    def _escape(self, data: bytes) -> tuple[bytes, bool]:
        """``data`` without the detach keys, and whether they were typed (as Docker's escape
        proxy: keys that start the sequence are held back until it completes or breaks)."""
        passed = bytearray()
        keys = self.detach_keys
        for byte in data:
            if keys and byte != keys[len(self._held)]:
                # A broken sequence goes on as typed; this key may start a new one.
                passed += self._held
                self._held = b""
            if keys and byte == keys[len(self._held)]:
                self._held += bytes([byte])
                if self._held == keys:
                    self._held = b""
                    return bytes(passed), True
                continue
            passed.append(byte)
        return bytes(passed), False

    def _hand_over(self, master: int) -> None:
        """Leave the container's terminal to a copier into the log (or /dev/null with
        ``--rm``), so that its output never blocks on a terminal nobody reads."""
        if self._log is not None:
            log_fd, index_fd = self._log.log_fd, self._log.index_fd
        else:
            log_fd, index_fd = self._null, self._null
        spawn_copier(master, log_fd, index_fd)


def _read_console(master: int) -> bytes:
    """Read the terminal; end-of-file is EIO once every holder of the other side is gone."""
    try:
        return os.read(master, CHUNK)
    except OSError as exc:
        if exc.errno == errno.EIO:
            return b""
        raise


def write_all(fd: int, data: bytes) -> None:
    """Write all of ``data``; a reader that went away (EPIPE) is ignored."""
    view = memoryview(data)
    while view:
        try:
            view = view[os.write(fd, view) :]
        except BrokenPipeError:
            return


@contextmanager
def forwarding(
    container: Process, console: int | None = None, *, proxy: bool = True
) -> Iterator[None]:
    """Pass termination signals (unless not ``proxy``; and, with a terminal, window changes)
    to the container."""

    def forward(number: int, _frame: FrameType | None) -> None:
        with contextlib.suppress(runtime.ContainerError, OSError):
            container.kill(number)

    def resize(_number: int, _frame: FrameType | None) -> None:
        if console is not None:
            _copy_window_size(console)

    previous = {number: signal.signal(number, forward) for number in FORWARDED if proxy}
    previous[signal.SIGWINCH] = signal.signal(signal.SIGWINCH, resize)
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextmanager
def _raw_mode(enabled: bool) -> Iterator[None]:
    if not enabled:
        yield
        return
    saved = termios.tcgetattr(0)
    # TCSANOW, not tty's default TCSAFLUSH: what the user typed ahead stays in the input
    # queue and reaches the container.
    tty.setraw(0, termios.TCSANOW)
    try:
        yield
    finally:
        termios.tcsetattr(0, termios.TCSADRAIN, saved)


def _copy_window_size(master: int) -> None:
    """Give the container's terminal the size of the caller's, if the caller has one."""
    for fd in (0, 1, 2):
        if os.isatty(fd):
            with contextlib.suppress(OSError):
                size = fcntl.ioctl(fd, termios.TIOCGWINSZ, b"\0" * 8)
                fcntl.ioctl(master, termios.TIOCSWINSZ, size)
            return


def spawn_copier(source: int, target: int, index: int) -> int:
    """Fork a process that copies ``source`` (a terminal) into the log ``target`` and its
    line ``index`` until it ends."""
    pid = os.fork()
    if pid != 0:
        return pid
    status = 0
    try:
        os.setsid()
        keep = sorted({source, target, index})
        highest = min(resource.getrlimit(resource.RLIMIT_NOFILE)[1], 1 << 20)
        null = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(null, fd)
        start = 3
        for fd in keep:
            os.closerange(start, fd)
            start = fd + 1
        os.closerange(start, highest)
        log = IndexedLog(target, index)
        while data := _read_console(source):
            log.write(data)
    except BaseException:
        status = 1
    finally:
        os._exit(status)


def choose(
    files: ContainerFiles,
    *,
    detach: bool,
    tty: bool,
    interactive: bool,
    keep_logs: bool,
    streams: Sequence[str] = (),
    proxy: bool = True,
    detach_keys: bytes = DEFAULT_DETACH_KEYS,
) -> Attachment:
    """The attachment a ``run``/``start`` asks for; ``streams`` those ``-a`` names (none: stdout
    and stderr, and stdin with ``-i``)."""
    attachment: Attachment
    shown = frozenset(streams or STREAMS)
    interactive = interactive or "stdin" in streams
    if detach:
        return Detached(files, tty)
    if tty:
        console = Console(files if keep_logs else None, interactive, shown)
        console.detach_keys = detach_keys
        attachment = console
    elif keep_logs:
        attachment = Tee(files, interactive, shown)
    else:
        attachment = Direct(interactive, shown)
    attachment.proxy = proxy
    return attachment
