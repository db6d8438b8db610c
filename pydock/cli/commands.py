"""Every ``pydock`` command and its arguments, declared in one place.

A command is added with ``add(NAME, "MODULE:FUNCTION", DOING, SUMMARY)``: the module holding
the function is imported only when that command runs, so a command pays for its own imports
and for nobody else's. ``DOING`` opens the command's error line (``pydock: DOING: ...``). A
name with a space (``system prune``) is a verb of a parent command.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Protocol

from pydock.cli.base import tls_verify

SIZE_NAMES = ("small", "medium", "large")
REFERENCE_NAMES = (
    "tar", "kernel-overlay", "fuse-overlayfs", "podman", "crun", "pydock-api", "pydock-host",
)  # fmt: skip
ARCHIVE_FORMATS = ("docker-archive", "oci-archive")
PULL_POLICIES = ("missing", "always", "never")
TLS_HELP = (
    "require HTTPS and verify certificates (default: true, but false for localhost and "
    "127.0.0.0/8, as Docker; false allows plain HTTP)"
)


class Add(Protocol):
    """How a command is added to the parser."""

    def __call__(
        self, name: str, target: str, doing: str, summary: str, **defaults: object
    ) -> argparse.ArgumentParser: ...


def register(add: Add) -> None:
    """Declare every command."""
    _images(add)
    _containers(add)
    _container_runs(add)
    _volumes(add)
    _system(add)
    _network(add)
    _bench(add)


def _images(add: Add) -> None:
    images = "pydock.cli.images"
    sub = add("import", f"{images}:cmd_import", "importing an image",
              "Import a root filesystem tar as an image and print its id.")  # fmt: skip
    sub.add_argument("file", metavar="FILE|-", help="tar (plain, gzip, zstd), - or builtin:busybox")
    sub.add_argument("reference", metavar="NAME[:TAG]", nargs="?", help="name of the new image")
    sub.add_argument("-m", "--message", help="commit message of the image's history")

    sub = add("images", f"{images}:cmd_images", "listing images",
              "List images: REPOSITORY, TAG, IMAGE ID, CREATED, SIZE.")  # fmt: skip
    sub.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    _format_filter(sub, "dangling, label, reference")

    sub = add("rmi", f"{images}:cmd_rmi", "removing images",
              "Untag images; delete those left without a tag, and their unused layers.",
              frees_space=True)  # fmt: skip
    sub.add_argument("-f", "--force", action="store_true", help="remove every tag of the image")
    sub.add_argument("images", metavar="IMAGE", nargs="+", help="name, tag or id")

    sub = add("load", f"{images}:cmd_load", "loading images",
              "Load images from a docker-archive tar or an OCI layout"
              " (directory or tar).")  # fmt: skip
    sub.add_argument("-i", "--input", metavar="FILE", help="archive or OCI layout (default: stdin)")
    sub.add_argument("-q", "--quiet", action="store_true", help="print nothing")
    sub.add_argument("--platform", help="OS/ARCH to choose from an index (default: this host)")

    sub = add("save", f"{images}:cmd_save", "saving images",
              "Save images to a docker-archive or oci-archive tar.")  # fmt: skip
    sub.add_argument("-o", "--output", metavar="FILE", help="write to FILE (default: stdout)")
    sub.add_argument("--format", choices=ARCHIVE_FORMATS, default=ARCHIVE_FORMATS[0],
                     help="archive format (default: docker-archive)")  # fmt: skip
    sub.add_argument("images", metavar="IMAGE", nargs="+", help="name, tag or id")

    sub = add("tag", f"{images}:cmd_tag", "tagging an image",
              "Create a tag TARGET that refers to the image SOURCE.")  # fmt: skip
    sub.add_argument("source", metavar="SOURCE", help="image name, tag or id")
    sub.add_argument("target", metavar="TARGET", help="new NAME[:TAG]")

    sub = add("history", f"{images}:cmd_history", "showing history",
              "Show the history of an image: IMAGE, CREATED, CREATED BY,"
              " SIZE, COMMENT.")  # fmt: skip
    sub.add_argument("image", metavar="IMAGE", help="name, tag or id")
    sub.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    sub.add_argument("-q", "--quiet", action="store_true", help="only show image ids")
    sub.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")

    sub = add("pull", f"{images}:cmd_pull", "pulling an image", "Pull an image from a registry.")
    sub.add_argument("reference", metavar="NAME[:TAG|@DIGEST]", help="image to pull")
    sub.add_argument("--platform", help="OS/ARCH[/VARIANT] to choose from an index")
    _registry_options(sub, "print only the image reference")

    sub = add("push", f"{images}:cmd_push", "pushing an image", "Push an image to a registry.")
    sub.add_argument("image", metavar="IMAGE", help="name, tag or id")
    sub.add_argument("destination", metavar="DEST", nargs="?", help="NAME[:TAG] to push to")
    _registry_options(sub, "print only the pushed reference")

    sub = add("login", f"{images}:cmd_login", "logging in",
              "Log in to a registry; credentials go to the Docker client config.")  # fmt: skip
    sub.add_argument("server", metavar="SERVER", help="registry (host[:port])")
    sub.add_argument("-u", "--username", help="user name")
    sub.add_argument("-p", "--password", help="password (prefer --password-stdin)")
    sub.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    sub.add_argument("--tls-verify", type=tls_verify, metavar="BOOL", help=TLS_HELP)

    sub = add("logout", f"{images}:cmd_logout", "logging out",
              "Forget the stored credentials of a registry.")  # fmt: skip
    sub.add_argument("server", metavar="SERVER", help="registry (host[:port])")


def _format_filter(sub: argparse.ArgumentParser, filters: str) -> None:
    sub.add_argument(
        "--format", metavar="FORMAT",
        help="json, table, a Go template, or 'table TEMPLATE' (with a header)",
    )  # fmt: skip
    sub.add_argument(
        "-f", "--filter", action="append", default=[], metavar="KEY=VALUE",
        help=f"show only what matches ({filters})",
    )  # fmt: skip


def _registry_options(sub: argparse.ArgumentParser, quiet_help: str) -> None:
    sub.add_argument("-q", "--quiet", action="store_true", help=quiet_help)
    sub.add_argument("--tls-verify", type=tls_verify, metavar="BOOL", help=TLS_HELP)


def _containers(add: Add) -> None:
    run, containers = "pydock.cli.run", "pydock.cli.containers"
    sub = add("run", f"{run}:cmd_run", "running a container",
              "Create a container from an image and run its command.")  # fmt: skip
    sub.add_argument("-d", "--detach", action="store_true", help="run in the background")
    _container_options(sub)

    sub = add("create", f"{run}:cmd_create", "creating a container",
              "Create a container (without starting it) and print its id.")  # fmt: skip
    _container_options(sub)

    sub = add("start", f"{run}:cmd_start", "starting containers",
              "Start created or stopped containers (-a: attach and pass on"
              " the exit status).")  # fmt: skip
    sub.add_argument("-a", "--attach", action="store_true", help="attach and wait")
    sub.add_argument("-i", "--interactive", action="store_true", help="attach standard input")
    sub.add_argument("--detach-keys", metavar="KEYS",
                     help="keys that detach from a terminal (default ctrl-p,ctrl-q)")  # fmt: skip
    sub.add_argument("containers", metavar="CONTAINER", nargs="+")

    sub = add("stop", f"{containers}:cmd_stop", "stopping containers",
              "Stop running containers: SIGTERM, then SIGKILL after -t seconds.")  # fmt: skip
    sub.add_argument("-t", "--time", type=int, help="seconds before SIGKILL (default: 10)")
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("kill", f"{containers}:cmd_kill", "killing containers",
              "Send a signal (default SIGKILL) to running containers.")  # fmt: skip
    sub.add_argument("-s", "--signal", default="KILL", help="signal to send (default KILL)")
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("wait", f"{containers}:cmd_wait", "waiting for containers",
              "Wait for containers to stop and print their exit codes.")  # fmt: skip
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("rm", f"{containers}:cmd_rm", "removing containers",
              "Remove containers (-f: kill running ones first).", frees_space=True)  # fmt: skip
    sub.add_argument("-f", "--force", action="store_true", help="kill running containers first")
    sub.add_argument("-v", "--volumes", action="store_true", help="remove anonymous volumes")
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("ps", f"{containers}:cmd_ps", "listing containers",
              "List containers: CONTAINER ID, IMAGE, COMMAND, CREATED, STATUS, NAMES.")  # fmt: skip
    sub.add_argument("-a", "--all", action="store_true", help="show stopped containers too")
    sub.add_argument("-q", "--quiet", action="store_true", help="only show container ids")
    sub.add_argument("-s", "--size", action="store_true", help="show the size of the changes")
    _format_filter(sub, "status, label, name, id, ancestor, exited, volume")

    sub = add("inspect", f"{containers}:cmd_inspect", "inspecting",
              "Print a JSON array describing each image or container.")  # fmt: skip
    sub.add_argument("-f", "--format", metavar="TEMPLATE", help="Go template for each object")
    sub.add_argument("images", metavar="NAME", nargs="+", help="image or container: name or id")

    sub = add("logs", f"{containers}:cmd_logs", "reading logs",
              "Print what a container wrote (-f: keep following while it runs).")  # fmt: skip
    sub.add_argument("-f", "--follow", action="store_true", help="follow while it runs")
    sub.add_argument("-n", "--tail", default="all", help="lines from the end of each stream")
    sub.add_argument("-t", "--timestamps", action="store_true", help="show each line's time")
    sub.add_argument("--since", metavar="T", help="lines since T (timestamp or duration: 10m)")
    sub.add_argument("--until", metavar="T", help="lines before T (timestamp or duration)")
    sub.add_argument("container", metavar="CONTAINER")

    sub = add("exec", f"{run}:cmd_exec", "executing in a container",
              "Run a command in a running container.", joins_container=True)  # fmt: skip
    sub.add_argument("-d", "--detach", action="store_true", help="run in the background")
    sub.add_argument("-i", "--interactive", action="store_true", help="attach standard input")
    sub.add_argument("-t", "--tty", action="store_true", help="give the process a terminal")
    sub.add_argument("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]")
    sub.add_argument("-w", "--workdir", help="working directory")
    sub.add_argument("-u", "--user", help="user[:group]")
    sub.add_argument("container", metavar="CONTAINER")
    sub.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")

    sub = add("diff", f"{containers}:cmd_diff", "reading the changes of a container",
              "List the files a container added (A), changed (C) or deleted (D).",
              joins_container=True)  # fmt: skip
    sub.add_argument("container", metavar="CONTAINER")

    sub = add("commit", f"{containers}:cmd_commit", "committing a container",
              "Make a new image from a container's changes and print its id.",
              joins_container=True)  # fmt: skip
    sub.add_argument("-m", "--message", help="commit message")
    sub.add_argument("-a", "--author", help="author of the new image")
    sub.add_argument("container", metavar="CONTAINER")
    sub.add_argument("reference", metavar="REPOSITORY[:TAG]", nargs="?")

    sub = add("export", f"{containers}:cmd_export", "exporting a container",
              "Write a container's file system as a tar archive (-o FILE, or standard output).",
              joins_container=True)  # fmt: skip
    sub.add_argument("-o", "--output", help="write to FILE instead of standard output")
    sub.add_argument("container", metavar="CONTAINER")

    sub = add("cp", f"{containers}:cmd_cp", "copying files",
              "Copy files between a container and the host (either may be -, a tar stream).",
              )  # fmt: skip
    sub.add_argument("source", metavar="SRC", help="CONTAINER:PATH, a host path or -")
    sub.add_argument("destination", metavar="DEST", help="CONTAINER:PATH, a host path or -")

    sub = add("cleanup", f"{containers}:cmd_cleanup", "cleaning up a container",
              argparse.SUPPRESS)  # fmt: skip
    sub.add_argument("container", metavar="CONTAINER_ID")


def _container_runs(add: Add) -> None:
    manage = "pydock.cli.manage"
    sub = add("restart", f"{manage}:cmd_restart", "restarting containers",
              "Stop (if running) and start containers again.")  # fmt: skip
    sub.add_argument("-t", "--time", type=int, help="seconds before SIGKILL (default: 10)")
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("rename", f"{manage}:cmd_rename", "renaming a container",
              "Give a container a new name.")  # fmt: skip
    sub.add_argument("container", metavar="CONTAINER")
    sub.add_argument("new_name", metavar="NEW_NAME")

    sub = add("pause", f"{manage}:cmd_pause", "pausing containers",
              "Freeze every process of running containers (cgroup freezer).")  # fmt: skip
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("unpause", f"{manage}:cmd_unpause", "unpausing containers",
              "Let the processes of paused containers run again.")  # fmt: skip
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("top", f"{manage}:cmd_top", "listing processes",
              "Show the processes of a running container (ps options, default -ef).")  # fmt: skip
    sub.add_argument("container", metavar="CONTAINER")
    sub.add_argument("ps_options", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")

    sub = add("stats", f"{manage}:cmd_stats", "reading container stats",
              "Show CPU, memory and process figures of running containers.")  # fmt: skip
    sub.add_argument("--no-stream", action="store_true", help="one sample, then exit")
    sub.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")
    sub.add_argument("names", metavar="CONTAINER", nargs="*", help="default: every running one")

    sub = add("update", f"{manage}:cmd_update", "updating containers",
              "Change the limits (live for running containers) and restart policy.")  # fmt: skip
    sub.add_argument("-m", "--memory", help="memory limit (512m, 1g, ...)")
    sub.add_argument("--cpus", help="number of CPUs (fractions allowed)")
    sub.add_argument("--pids-limit", type=int, help="largest number of processes (0: none)")
    sub.add_argument(
        "--restart", metavar="POLICY", help="no, always, unless-stopped, on-failure[:N]"
    )
    sub.add_argument("names", metavar="CONTAINER", nargs="+")

    sub = add("attach", f"{manage}:cmd_attach", "attaching to a container",
              "Show a running container's output until it exits, with its status.")  # fmt: skip
    sub.add_argument("--no-stdin", action="store_true", help="accepted; input is never attached")
    sub.add_argument("--sig-proxy", type=tls_verify, default=True, metavar="BOOL",
                     help="pass signals on to the container (default: true)")  # fmt: skip
    sub.add_argument("container", metavar="CONTAINER")


def _container_options(sub: argparse.ArgumentParser) -> None:
    add = sub.add_argument
    add("--rm", action="store_true", help="remove the container when it exits")
    add("-i", "--interactive", action="store_true", help="keep standard input attached")
    add("-t", "--tty", action="store_true", help="give the container a terminal")
    add("--name", help="name of the container")
    add("-e", "--env", action="append", default=[], metavar="NAME[=VALUE]", help="set a variable")
    add("--env-file", action="append", default=[], metavar="FILE", help="read variables from FILE")
    add("-l", "--label", action="append", default=[], metavar="KEY=VALUE", help="set a label")
    add("-w", "--workdir", help="working directory inside the container")
    add("-u", "--user", help="user[:group] (name or id) inside the container")
    add("--hostname", help="host name inside the container")
    add("--read-only", action="store_true", help="mount the root file system read-only")
    add(
        "-v",
        "--volume",
        action="append",
        default=[],
        metavar="SRC|NAME:DST[:ro]",
        help="bind mount a host path, or mount a named volume (-v DST: an anonymous one)",
    )
    add(
        "--mount",
        action="append",
        default=[],
        metavar="type=bind|volume|tmpfs,...",
        help="a mount: type, source, target, readonly, tmpfs-size, tmpfs-mode",
    )
    add("--tmpfs", action="append", default=[], metavar="DST[:OPTIONS]", help="mount a tmpfs")
    add("-m", "--memory", help="memory limit (512m, 1g, ...)")
    add("--cpus", help="number of CPUs (fractions allowed)")
    add("--pids-limit", type=int, help="largest number of processes")
    add("--init", action="store_true", help="run a reaper as pid 1 that forwards signals")
    add("--entrypoint", help="override the image's entrypoint")
    add("--cap-add", action="append", default=[], metavar="CAP", help="add a capability")
    add("--cap-drop", action="append", default=[], metavar="CAP", help="drop a capability")
    add("--security-opt", action="append", default=[], metavar="OPT",
        help="no-new-privileges, seccomp=unconfined or seccomp=PROFILE.json")  # fmt: skip
    add("--privileged", action="store_true",
        help="all capabilities, no seccomp, no masked paths, the host's devices")  # fmt: skip
    add("--storage", dest="container_storage", metavar="DRIVER", help="storage driver to use")
    add("--stop-signal", metavar="SIGNAL", help="signal that stops the container (default TERM)")
    add("--stop-timeout", type=int, metavar="SECONDS", help="seconds stop waits (default 10)")
    add("--restart", default="no", metavar="POLICY",
        help="no (default), always, unless-stopped or on-failure[:N]")  # fmt: skip
    add("--pull", choices=PULL_POLICIES, default="missing",
        help="pull the image: missing (default), always or never")  # fmt: skip
    add("--tls-verify", type=tls_verify, metavar="BOOL", help=TLS_HELP)
    add("-q", "--quiet", action="store_true", help="no pull progress")
    add("--platform", metavar="OS/ARCH", help="accepted when it is this host's platform")
    add("--cidfile", metavar="FILE", help="write the container id to FILE (a new file)")
    add("--label-file", action="append", default=[], metavar="FILE",
        help="read KEY=VALUE labels from FILE")  # fmt: skip
    add("--expose", action="append", default=[], metavar="PORT[/PROTO]",
        help="expose a port or a range (START-END) without publishing it")  # fmt: skip
    add("--ulimit", action="append", default=[], metavar="NAME=SOFT[:HARD]",
        help="resource limit: nofile, nproc, core, ... (-1: unlimited)")  # fmt: skip
    add("--shm-size", metavar="SIZE", help="size of /dev/shm (default 64m)")
    add("--sysctl", action="append", default=[], metavar="NAME=VALUE",
        help="namespaced kernel parameter: net.*, kernel.msg*/sem/shm*, fs.mqueue.*")  # fmt: skip
    add("--group-add", action="append", default=[], metavar="GROUP",
        help="supplementary group (name in the image's /etc/group, or number)")  # fmt: skip
    add("--domainname", metavar="NAME", help="NIS domain name inside the container")
    add("-c", "--cpu-shares", type=int, metavar="N", help="relative CPU weight (default 1024)")
    add("--cpuset-cpus", metavar="CPUS", help="CPUs the container may use (0-3, 0,1)")
    add("--memory-swap", metavar="SIZE", help="memory plus swap (-1: unlimited swap)")
    add("--memory-reservation", metavar="SIZE", help="soft memory limit")
    add("--pid", dest="pid_mode", metavar="host", help="share the host's pid namespace (root)")
    add("--ipc", dest="ipc_mode", metavar="host|private",
        help="share the host's IPC namespace and /dev/shm (root)")  # fmt: skip
    add("--uts", dest="uts_mode", metavar="host", help="share the host's UTS namespace (root)")
    add("--device", action="append", default=[], metavar="HOST[:CONTAINER[:PERMS]]",
        help="add a host device node (root; PERMS of r, w, m)")  # fmt: skip
    add("--oom-score-adj", type=int, metavar="N", help="OOM killer preference, -1000 to 1000")
    add("--cpu-period", type=int, metavar="US", help="CFS period in microseconds (1000-1000000)")
    add("--cpu-quota", type=int, metavar="US", help="CFS quota in microseconds per period")
    add("--cpuset-mems", metavar="MEMS", help="memory nodes the container may use (0-1, 0,1)")
    add("--cgroupns", dest="cgroupns_mode", metavar="host|private",
        help="cgroup namespace: the container's own (private, default) or the host's")  # fmt: skip
    add("--volumes-from", action="append", default=[], metavar="CONTAINER[:ro|rw]",
        help="mount the volumes and binds of another container")  # fmt: skip
    add("-a", "--attach", action="append", default=[], metavar="STDIN|STDOUT|STDERR",
        help="the streams a foreground run attaches (default: stdout and stderr)")  # fmt: skip
    add("--sig-proxy", type=tls_verify, default=True, metavar="BOOL",
        help="pass signals on to a foreground container (default: true)")  # fmt: skip
    add("--detach-keys", metavar="KEYS",
        help="keys that detach an -it run, leaving it running (default ctrl-p,ctrl-q)")  # fmt: skip
    add("--health-cmd", metavar="COMMAND", help="command (run by /bin/sh -c) that checks health")
    add("--health-interval", metavar="DURATION", help="time between checks (default 30s)")
    add("--health-timeout", metavar="DURATION", help="longest a check may run (default 30s)")
    add("--health-retries", type=int, metavar="N", help="failures in a row until unhealthy (3)")
    add("--health-start-period", metavar="DURATION",
        help="time to start in, when failures do not count (default 0s)")  # fmt: skip
    add("--no-healthcheck", action="store_true", help="turn off the image's healthcheck")
    _network_options(sub)
    add("image", metavar="IMAGE")
    add("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def _volumes(add: Add) -> None:
    volumes = "pydock.cli.volumes"
    sub = add("volume create", f"{volumes}:cmd_volume_create", "creating a volume",
              "Create a volume and print its name.")  # fmt: skip
    sub.add_argument("name", metavar="NAME", nargs="?", help="name (default: a random one)")
    sub.add_argument("-d", "--driver", default="local", help="volume driver (only local)")
    sub.add_argument("-l", "--label", action="append", default=[], metavar="KEY=VALUE")

    sub = add("volume ls", f"{volumes}:cmd_volume_ls", "listing volumes",
              "List volumes: DRIVER, VOLUME NAME.")  # fmt: skip
    sub.add_argument("-q", "--quiet", action="store_true", help="only show volume names")
    _format_filter(sub, "dangling, label, name")

    sub = add("volume inspect", f"{volumes}:cmd_volume_inspect", "inspecting volumes",
              "Print a JSON array describing each volume.")  # fmt: skip
    sub.add_argument("-f", "--format", metavar="TEMPLATE", help="Go template for each volume")
    sub.add_argument("names", metavar="VOLUME", nargs="+")

    sub = add("volume rm", f"{volumes}:cmd_volume_rm", "removing volumes",
              "Remove volumes no container uses.", frees_space=True)  # fmt: skip
    sub.add_argument("-f", "--force", action="store_true", help="no error for a missing volume")
    sub.add_argument("names", metavar="VOLUME", nargs="+")

    sub = add("volume prune", f"{volumes}:cmd_volume_prune", "pruning volumes",
              "Remove unused anonymous volumes (-a: every unused volume).",
              frees_space=True)  # fmt: skip
    sub.add_argument("-a", "--all", action="store_true", help="named volumes too")
    sub.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")


def _network(add: Add) -> None:
    network = "pydock.cli.network"
    sub = add("network create", f"{network}:cmd_network_create", "creating a network",
              "Create a network and print its id.")  # fmt: skip
    sub.add_argument("-d", "--driver", default="bridge", help="network driver (default bridge)")
    sub.add_argument("--subnet", help="address range in CIDR form (default: a free /16)")
    sub.add_argument("--gateway", help="the bridge's address in the subnet")
    sub.add_argument("--internal", action="store_true", help="no route out of the network")
    sub.add_argument("name", metavar="NAME")

    sub = add("network ls", f"{network}:cmd_network_ls", "listing networks",
              "List networks: NETWORK ID, NAME, DRIVER, SCOPE.")  # fmt: skip
    sub.add_argument("-q", "--quiet", action="store_true", help="only show network ids")
    sub.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")

    sub = add("network inspect", f"{network}:cmd_network_inspect", "inspecting networks",
              "Print a JSON array describing each network.")  # fmt: skip
    sub.add_argument("networks", metavar="NETWORK", nargs="+")

    sub = add("network rm", f"{network}:cmd_network_rm", "removing networks",
              "Remove networks that no container uses.")  # fmt: skip
    sub.add_argument("networks", metavar="NETWORK", nargs="+")

    sub = add("network prune", f"{network}:cmd_network_prune", "pruning networks",
              "Remove every user-defined network that no container uses.")  # fmt: skip
    sub.add_argument("-f", "--force", action="store_true", help="do not prompt (never does)")

    sub = add("network connect", f"{network}:cmd_network_connect", "connecting a container",
              "Connect a container to a network.")  # fmt: skip
    sub.add_argument("--alias", action="append", default=[], help="another name on the network")
    sub.add_argument("network", metavar="NETWORK")
    sub.add_argument("container", metavar="CONTAINER")

    sub = add("network disconnect", f"{network}:cmd_network_disconnect",
              "disconnecting a container", "Disconnect a container from a network.")  # fmt: skip
    sub.add_argument("-f", "--force", action="store_true", help="accepted for Docker's sake")
    sub.add_argument("network", metavar="NETWORK")
    sub.add_argument("container", metavar="CONTAINER")

    sub = add("port", f"{network}:cmd_port", "listing ports",
              "List a container's published ports, or the host address of one.")  # fmt: skip
    sub.add_argument("container", metavar="CONTAINER")
    sub.add_argument("port", metavar="PRIVATE_PORT[/PROTO]", nargs="?")


def _network_options(sub: argparse.ArgumentParser) -> None:
    add = sub.add_argument
    add("--network", "--net", metavar="NETWORK",
        help="none, host, bridge or a network's name (default: bridge)")  # fmt: skip
    add("--add-host", action="append", default=[], metavar="NAME:IP",
        help="add a line to /etc/hosts")  # fmt: skip
    add("--dns", action="append", default=[], metavar="IP", help="name server for resolv.conf")
    add("--dns-search", action="append", default=[], metavar="DOMAIN",
        help="search domain for resolv.conf")  # fmt: skip
    add("--dns-option", action="append", default=[], metavar="OPTION",
        help="option for resolv.conf")  # fmt: skip
    add("--network-alias", action="append", default=[], metavar="ALIAS",
        help="another name of the container on its network")  # fmt: skip
    add("-p", "--publish", action="append", default=[], metavar="[IP:][HOST:]PORT[/PROTO]",
        help="publish a container port on the host")  # fmt: skip
    add("-P", "--publish-all", action="store_true", help="publish every exposed port")


def _system(add: Add) -> None:
    system = "pydock.cli.system"
    sub = add("info", f"{system}:cmd_info", "reading system information",
              "Show the versions, the storage drivers of this host and"
              " where data lives.")  # fmt: skip
    sub.add_argument("--format", choices=["json"], help="print JSON")

    prune = "pydock.cli.prune"
    sub = add("system prune", f"{prune}:cmd_system_prune", "pruning",
              "Remove stopped containers, dangling images (-a: unused images) and blobs"
              " nothing refers to.", frees_space=True)  # fmt: skip
    sub.add_argument("-a", "--all", action="store_true", help="every unused image")
    sub.add_argument("--volumes", action="store_true", help="unused anonymous volumes too")
    sub.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")

    sub = add("container prune", f"{prune}:cmd_container_prune", "pruning containers",
              "Remove all stopped containers.", frees_space=True)  # fmt: skip
    sub.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")

    sub = add("image prune", f"{prune}:cmd_image_prune", "pruning images",
              "Remove dangling images (-a: every image no container uses).",
              frees_space=True)  # fmt: skip
    sub.add_argument("-a", "--all", action="store_true", help="every unused image")
    sub.add_argument("-f", "--force", action="store_true", help="do not ask for confirmation")

    sub = add("system check", f"{system}:cmd_system_check", "checking the store",
              "Check that the store agrees with the disk (--repair: fix what can be fixed).",
              frees_space=True)  # fmt: skip
    sub.add_argument("--repair", action="store_true", help="repair what can be repaired")

    sub = add("system service", "pydock.cli.service:cmd_system_service", "serving the API",
              "Serve the Docker Engine API on a unix socket (docker, docker-py).",
              standalone=True)  # fmt: skip
    sub.add_argument("-t", "--time", type=float, default=5.0, metavar="SECONDS",
                     help="leave after this long idle (0: never; default 5)")  # fmt: skip
    sub.add_argument("uri", metavar="URI", nargs="?",
                     help="unix:///PATH (default: /run/pydock/docker.sock as root)")  # fmt: skip

    sub = add("system df", f"{system}:cmd_system_df", "reading disk usage",
              "Show how much disk images, layers and blobs use.")  # fmt: skip
    sub.add_argument("--format", choices=["json", "table"], help="print JSON lines or a table")


def _bench(add: Add) -> None:
    sub = add("bench", "pydock.cli.bench:cmd_bench", "benchmarking",
              "Measure the storage drivers side by side with the tools used instead",
              standalone=True)  # fmt: skip
    sub.add_argument(
        "--storage", dest="backends", metavar="DRIVER,...",
        help="pydock drivers to measure, in order (default: every registered driver)",
    )  # fmt: skip
    sub.add_argument(
        "--workload", dest="workloads", metavar="NAME,...",
        help="workloads to run (default: all; 'mount' means every depth, 'net' both net ones)",
    )  # fmt: skip
    sub.add_argument("--size", choices=SIZE_NAMES, default="small", help="amount of data")
    sub.add_argument("--repeat", type=int, default=3, help="samples of each figure (default 3)")
    sub.add_argument(
        "--reference", dest="references", metavar="TOOL,...",
        help=f"reference tools ({','.join(REFERENCE_NAMES)}; default: all; 'none' for none)",
    )  # fmt: skip
    sub.add_argument("--baseline", metavar="NAME", help="ratios against this (default: first)")
    sub.add_argument("--out", type=Path, help="directory for the results (default: ./bench-TIME)")
    sub.add_argument("--dir", type=Path, help="work directory for data and layers (kept)")
    sub.add_argument("--quick", action="store_true", help="small size and one repeat (tests)")
    sub.add_argument(
        "--redraw", type=Path, metavar="RESULTS.json",
        help="run nothing: draw the table, report and plots of an earlier run again",
    )  # fmt: skip
    sub.add_argument(
        "--compare", nargs=2, type=Path, metavar=("BEFORE.json", "AFTER.json"),
        help="run nothing: show two earlier runs side by side (with --out: write compare.md)",
    )  # fmt: skip
