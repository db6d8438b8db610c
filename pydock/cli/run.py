"""The commands that start processes: ``run``, ``create``, ``start`` and ``exec``.

``run``, ``start -a`` and ``exec`` pass the container's status on; a command that cannot be
executed gives 126, one that does not exist 127; pydock's own failures give 125. Rootless, the
process first moves into pydock's user namespace (``exec``: the container's), see
:func:`prepare`.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TextIO

from pydock import rootless
from pydock.cli.base import EXIT_FAILURE, fail
from pydock.containers import attach, hostopts, lifecycle
from pydock.containers.config import RunOptions
from pydock.containers.errors import ContainerConfigError, ContainerStartError
from pydock.containers.execs import ExecOptions, start_exec
from pydock.containers.health import HealthFlags
from pydock.containers.manager import is_builtin_busybox
from pydock.containers.state import ContainerState
from pydock.engine import Engine
from pydock.errors import ImageUnknownError, InvalidReferenceError, PydockError
from pydock.image.reference import parse_reference
from pydock.image.resolve import resolve_image
from pydock.network import defaults
from pydock.settings import EngineConfig
from pydock.store import DATABASE_NAME, ContainerRecord, Store, is_owner_alive

_HEX_ID = re.compile(r"[0-9a-f]{12,64}")


def _command(args: argparse.Namespace) -> tuple[str, ...]:
    """The command words after the options (a leading ``--`` dropped)."""
    command = list(args.command)
    if command and command[0] == "--":
        command.pop(0)
    return tuple(command)


def _network(args: argparse.Namespace) -> str:
    """``--network``, else the default (the bridge); a fallback's warning goes to stderr."""
    choice = defaults.choose(args.network, publishing=bool(args.publish or args.publish_all))
    if choice.warning:
        print(choice.warning, file=sys.stderr)
    return choice.network


def _options(args: argparse.Namespace) -> RunOptions:
    """The ``run``/``create`` options from the parsed command line."""
    return RunOptions(
        image=args.image,
        command=_command(args),
        name=args.name,
        env=tuple(args.env),
        workdir=args.workdir,
        user=args.user,
        hostname=args.hostname,
        network=_network(args),
        add_hosts=tuple(args.add_host),
        dns=tuple(args.dns),
        dns_search=tuple(args.dns_search),
        dns_options=tuple(args.dns_option),
        network_aliases=tuple(args.network_alias),
        publish=tuple(args.publish),
        publish_all=args.publish_all,
        read_only=args.read_only,
        volumes=tuple(args.volume),
        memory=args.memory,
        cpus=args.cpus,
        pids_limit=args.pids_limit,
        init=args.init,
        entrypoint=args.entrypoint,
        cap_add=tuple(args.cap_add),
        cap_drop=tuple(args.cap_drop),
        security_opt=tuple(args.security_opt),
        privileged=args.privileged,
        tty=args.tty,
        interactive=args.interactive,
        auto_remove=args.rm,
        stop_signal=args.stop_signal,
        stop_timeout=args.stop_timeout,
        restart=args.restart,
        labels=tuple(args.label),
        env_files=tuple(args.env_file),
        mounts=tuple(args.mount),
        tmpfs=tuple(args.tmpfs),
        expose=tuple(args.expose),
        label_files=tuple(args.label_file),
        ulimits=tuple(args.ulimit),
        shm_size=args.shm_size,
        sysctls=tuple(args.sysctl),
        group_add=tuple(args.group_add),
        domainname=args.domainname,
        cpu_shares=args.cpu_shares,
        cpuset_cpus=args.cpuset_cpus,
        memory_swap=args.memory_swap,
        memory_reservation=args.memory_reservation,
        pid_mode=args.pid_mode,
        ipc_mode=args.ipc_mode,
        uts_mode=args.uts_mode,
        devices=tuple(args.device),
        oom_score_adj=args.oom_score_adj,
        cpu_period=args.cpu_period,
        cpu_quota=args.cpu_quota,
        cpuset_mems=args.cpuset_mems,
        cgroupns_mode=args.cgroupns_mode,
        volumes_from=tuple(args.volumes_from),
        attach=tuple(args.attach),
        detach=getattr(args, "detach", False),
        health=HealthFlags(
            cmd=args.health_cmd,
            interval=args.health_interval,
            timeout=args.health_timeout,
            retries=args.health_retries,
            start_period=args.health_start_period,
            disabled=args.no_healthcheck,
        ),
    )


def _run_attached(
    engine: Engine, record: ContainerRecord, attachment: attach.Attachment, *, detach: bool
) -> int | None:
    """Start ``record`` with ``attachment``; its status, or ``None`` when detached."""
    manager = engine.containers
    hook = lifecycle.exit_command(manager, record) if detach else ()
    try:
        started = lifecycle.start(
            manager,
            record,
            attachment.stdio(),
            exit_command=hook,
            detach=detach,
            log_copies=attachment.log_copies(),
        )
        attachment.started(started.container)
        if detach:
            return None
        try:
            status = attachment.pump(started.container)
        except BaseException:
            # Leaving early: the still running container keeps its mount.
            started.storage.keep_mounted(record.rw_layer)
            raise
        if status == attach.DETACHED:
            # Detached with the detach keys: as leaving early; the next command that looks
            # at the container records its exit.
            started.storage.keep_mounted(record.rw_layer)
            return status
    finally:
        attachment.close()
    lifecycle.on_exit(manager, started.record, status)
    return status


def _require_terminal(args: argparse.Namespace, doing: str) -> None:
    """``-it`` attached needs a terminal on standard input, as Docker says (else it would
    wait forever for a terminal that is not there)."""
    wants = args.tty and args.interactive and not getattr(args, "detach", False)
    if wants and not os.isatty(0):
        raise ContainerConfigError(f"{doing}: the input device is not a TTY")


def _pull(engine: Engine, args: argparse.Namespace) -> None:
    """``--pull``: fetch the image from its registry always, never, or when it is missing.

    As Docker, it says so and shows the progress on standard error: live on a terminal; else
    only once the pull succeeded, so that a failure stays one line.
    """
    if args.pull == "never":
        return
    quiet = args.quiet
    name = args.image
    notice = ""
    if args.pull == "missing":
        if is_builtin_busybox(name) or _HEX_ID.fullmatch(name.removeprefix("sha256:")):
            return
        try:
            parse_reference(name)
            resolve_image(engine.containers.store, name, doing="using image")
            return
        except InvalidReferenceError:
            return  # create says why
        except ImageUnknownError:
            notice = f"Unable to find image '{name}' locally\n"
    live = sys.stderr.isatty()
    held = io.StringIO()
    progress: TextIO = sys.stderr if live else held
    if not quiet:
        progress.write(notice)
    engine.images.pull_image(
        name, platform=args.platform, tls_verify=args.tls_verify, quiet=quiet, out=progress
    )
    sys.stderr.write(held.getvalue())
    sys.stderr.flush()


def _check_platform(args: argparse.Namespace) -> None:
    """``--platform``: this host's platform only (pydock runs no other architecture)."""
    if args.platform is None:
        return
    from pydock.image.manifest import Platform

    host = Platform.default()
    try:
        wanted = Platform.parse(args.platform)
    except PydockError as exc:
        raise ContainerConfigError(f"checking --platform {args.platform!r}: {exc}") from exc
    if (wanted.os, wanted.architecture) != (host.os, host.architecture):
        raise ContainerConfigError(
            f"checking --platform {args.platform!r}: image platform {wanted} does not match"
            f" the host platform {host} (pydock runs no other platform)"
        )


@contextlib.contextmanager
def _cidfile(path: str | None) -> Iterator[Callable[[str], None]]:
    """``--cidfile``: made empty at once (an existing file is refused, as Docker does), the id
    written once known, removed again when no container came of it."""
    if path is None:
        yield lambda _id: None
        return
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
    except FileExistsError:
        raise ContainerConfigError(
            f"writing --cidfile: container ID file found, make sure the other container isn't"
            f" running or delete {path}"
        ) from None
    except OSError as exc:
        why = (exc.strerror or str(exc)).lower()
        raise ContainerConfigError(f"writing --cidfile: open {path}: {why}") from exc
    written = False

    def write(container_id: str) -> None:
        nonlocal written
        os.write(fd, container_id.encode())
        written = True

    try:
        yield write
    finally:
        os.close(fd)
        if not written:
            with contextlib.suppress(OSError):
                os.unlink(path)


def cmd_run(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Create a container from an image and run its command."""
    _require_terminal(args, "running a container")
    _check_platform(args)
    keys = hostopts.parse_detach_keys(args.detach_keys)
    manager = engine.containers
    with _cidfile(args.cidfile) as write_cid:
        _pull(engine, args)
        record = manager.create(_options(args), starting=True)
        write_cid(record.id)
    files = manager.files(record.id)
    attachment = attach.choose(
        files,
        detach=args.detach,
        tty=args.tty,
        interactive=args.interactive,
        keep_logs=not args.rm,
        streams=manager.config_of(record).attach,
        proxy=args.sig_proxy,
        detach_keys=attach.DEFAULT_DETACH_KEYS if keys is None else keys,
    )
    try:
        status = _run_attached(engine, record, attachment, detach=args.detach)
    except BaseException as exc:
        # The command never ran. As Docker, a failed start keeps the container (with the
        # reason in inspect's State.Error) unless --rm; anything else leaves nothing behind.
        current = manager.store.containers.get(record.id)
        kept = isinstance(exc, ContainerStartError) and not args.rm
        if current is not None and current.state != ContainerState.RUNNING and not kept:
            with contextlib.suppress(PydockError):  # the first failure is the one to report
                manager.remove(current, force=True)
        if isinstance(exc, ContainerStartError):
            fail(str(exc))
            return exc.exit_code
        raise
    if status is None:
        out.write(record.id + "\n")
        return 0
    if status == attach.DETACHED:
        return 0
    if args.restart != "no":
        # As Docker: the command's status is run's; the policy goes on in the background.
        from pydock.containers import control

        current = manager.store.containers.get(record.id)
        if current is not None:
            control.restart_by_policy(manager, current)
    return status


def cmd_create(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Create a container (without starting it) and print its id."""
    _check_platform(args)
    hostopts.parse_detach_keys(args.detach_keys)
    with _cidfile(args.cidfile) as write_cid:
        _pull(engine, args)
        record = engine.containers.create(_options(args))
        write_cid(record.id)
    out.write(record.id + "\n")
    return 0


def cmd_start(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Start created or stopped containers (-a: attach and pass on the exit status)."""
    manager = engine.containers
    if args.attach and len(args.containers) > 1:
        raise ContainerConfigError("starting containers: -a works with one container only")
    keys = hostopts.parse_detach_keys(args.detach_keys)
    status = 0
    for name in args.containers:
        try:
            record = lifecycle.refresh(manager, manager.lookup(name, doing="starting"))
            if record is None or record.state == ContainerState.RUNNING:
                out.write(f"{name}\n")
                continue
            config = manager.config_of(record)
            attachment = attach.choose(
                manager.files(record.id),
                detach=not args.attach,
                tty=config.tty,
                interactive=args.interactive,
                keep_logs=True,
                detach_keys=attach.DEFAULT_DETACH_KEYS if keys is None else keys,
            )
            result = _run_attached(engine, record, attachment, detach=not args.attach)
        except ContainerStartError as exc:
            fail(str(exc))
            status = exc.exit_code
            continue
        except PydockError as exc:
            fail(str(exc))
            status = EXIT_FAILURE
            continue
        if result is None:
            out.write(f"{name}\n")
        elif result != attach.DETACHED:
            status = result
    return status


def cmd_exec(engine: Engine, args: argparse.Namespace, out: TextIO) -> int:
    """Run a command in a running container."""
    command = _command(args)
    if not command:
        raise ContainerConfigError(f"executing in {args.container}: no command given")
    _require_terminal(args, f"executing in {args.container}")
    options = ExecOptions(
        command=command,
        env=tuple(args.env),
        workdir=args.workdir,
        user=args.user,
        tty=args.tty,
        interactive=args.interactive,
        detach=args.detach,
    )
    try:
        return start_exec(engine.containers, args.container, options)
    except ContainerStartError as exc:
        fail(str(exc))
        return exc.exit_code


def prepare(args: argparse.Namespace, config: EngineConfig) -> None:
    """Before the engine opens: rootless, move into pydock's user namespace (see rootless).

    Commands that work inside a running container's file system (``exec``, ``diff``,
    ``commit``, ``export``; ``joins_container`` in their defaults) join the namespaces of its
    monitor instead, where its root file system is mounted.
    """
    if not rootless.needs_namespace():
        rootless.adopt(Path(config.run_root))
        return
    if getattr(args, "joins_container", False):
        monitor = _running_monitor(Path(config.root), args.container)
        if monitor is not None:
            rootless.join(monitor)
            return
    rootless.enter(Path(config.run_root))


def _running_monitor(root: Path, name: str) -> int | None:
    """The pid of the monitor of running container ``name`` (name or id prefix), if any."""
    if not (root / DATABASE_NAME).exists():
        return None
    with Store.open(root) as store:
        record = store.containers.by_name(name)
        matches = [record] if record is not None else store.containers.by_prefix(name)
    if len(matches) != 1 or matches[0].state != ContainerState.RUNNING:
        return None
    monitor = matches[0].monitor or ""
    if not is_owner_alive(monitor):
        return None
    return int(monitor.partition(":")[0])
