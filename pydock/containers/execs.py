"""``exec``: another process in a running container, with the container's isolation.

The process joins the container's namespaces and cgroups (see :mod:`runtime.execute`), and
takes the container's capabilities, seccomp profile and no-new-privileges setting, its
environment with ``-e`` on top, and the user of ``-u`` (else the container's) resolved in the
container's image.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

import runtime
from pydock.containers import attach, lifecycle, networking
from pydock.containers.config import capabilities_of, merge_env, seccomp_of
from pydock.containers.errors import ContainerConflictError, ContainerStartError
from pydock.containers.state import Action, transition
from runtime.user import home_for

if TYPE_CHECKING:
    from pydock.containers.manager import ContainerManager

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass(frozen=True)
class ExecOptions:
    """The options of ``exec``."""

    command: tuple[str, ...]
    env: tuple[str, ...] = ()
    workdir: str | None = None
    user: str | None = None
    tty: bool = False
    interactive: bool = False
    detach: bool = False


def start_exec(manager: ContainerManager, name: str, options: ExecOptions) -> int:
    """Run ``options.command`` in container ``name``; its status (0 at once with ``detach``)."""
    spec = exec_spec(manager, name, options)
    where = f"executing in container {name}"
    attachment: attach.Attachment
    if options.detach:
        attachment = attach.Attachment()
    elif options.tty:
        attachment = attach.Console(None, options.interactive)
    else:
        attachment = attach.Direct(options.interactive)
    try:
        stdio = attachment.stdio()
        process = run_exec(spec, stdio, where=where)
        if options.detach:
            return 0
        return attachment.pump(process)
    finally:
        attachment.close()


def run_exec(
    spec: runtime.ExecSpec, stdio: tuple[int, int, int], *, where: str
) -> runtime.ExecProcess:
    """Start the process of ``spec`` with descriptors ``stdio``."""
    try:
        return runtime.execute(spec, stdin=stdio[0], stdout=stdio[1], stderr=stdio[2])
    except runtime.ExecError as exc:
        raise ContainerStartError(str(exc), exit_code=exc.exit_code) from exc
    except runtime.ContainerError as exc:
        raise ContainerStartError(f"{where}: {exc}") from exc


def exec_spec(manager: ContainerManager, name: str, options: ExecOptions) -> runtime.ExecSpec:
    """The runtime's spec of ``options`` in running container ``name``, checked."""
    record = manager.lookup(name, doing="executing in")
    current = lifecycle.refresh(manager, record, auto_remove=False) or record
    transition(current.state, Action.EXEC, name=current.name)
    if current.pid is None:
        raise ContainerConflictError(f"executing in {name}: it is not running")
    config = manager.config_of(current)
    storage = manager.storage(current.storage)
    where = f"executing in container {current.name}"
    try:
        with storage.mounted(current.rw_layer, in_use=True) as rootfs:
            user_text = options.user if options.user is not None else config.user
            user = runtime.resolve_user(
                rootfs, user_text, container_id=current.id, group_add=config.group_add
            )
            try:
                passwd = (rootfs / "etc" / "passwd").read_text(errors="replace")
            except OSError:
                passwd = ""
        home = home_for(passwd, user.uid)
        env = list(merge_env(config.env, options.env, os.environ))
        names = {item.partition("=")[0] for item in env}
        if "PATH" not in names:
            env.insert(0, f"PATH={DEFAULT_PATH}")
        if "HOSTNAME" not in names:
            env.insert(0, f"HOSTNAME={networking.hostname_of(current, config)}")
        if "HOME" not in names:
            env.append(f"HOME={home}")
        if options.tty and "TERM" not in names:
            env.append("TERM=xterm")
        spec = runtime.ExecSpec(
            container_id=current.id,
            target_pid=current.pid,
            args=options.command,
            env=tuple(env),
            cwd=options.workdir or config.workdir,
            user=user,
            capabilities=capabilities_of(config),
            no_new_privileges=config.no_new_privileges,
            seccomp=seccomp_of(config),
            tty=options.tty,
            oom_score_adj=config.oom_score_adj,
        )
    except runtime.ContainerError as exc:
        raise ContainerStartError(f"{where}: {exc}") from exc
    return spec
