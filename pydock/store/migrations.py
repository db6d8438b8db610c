"""The store's schema, built by ordered migrations (recorded in ``_sqlite_migrations``).

Never edit a migration that has shipped; add a new one at the end.
"""

from __future__ import annotations

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

MIGRATIONS = Migrations("pydock")


@MIGRATIONS(name="0001_layers")
def _layers(db: Database) -> None:
    db.table("layers").create(
        {
            "chain_id": str,
            "diff_id": str,
            "parent": str,
            "size": int,
            "complete": int,
            "owner": str,
            "created": str,
        },
        pk="chain_id",
        not_null={"diff_id", "size", "complete", "created"},
        defaults={"size": 0, "complete": 0},
        foreign_keys=[("parent", "layers", "chain_id")],
    )
    db.table("layers").create_index(["parent"])
    # The graph-driver copy of a layer. ``driver`` names the driver home (overlay2 and fuse
    # share "overlay"), so one unpacked layer serves every driver of that layout.
    db.table("layer_cache").create(
        {
            "chain_id": str,
            "driver": str,
            "cache_id": str,
            "complete": int,
            "owner": str,
            "created": str,
        },
        pk=("chain_id", "driver"),
        not_null={"chain_id", "driver", "cache_id", "complete", "created"},
        defaults={"complete": 0},
        foreign_keys=[("chain_id", "layers", "chain_id")],
    )
    db.table("layer_cache").create_index(["driver", "cache_id"], unique=True)


@MIGRATIONS(name="0002_images")
def _images(db: Database) -> None:
    db.table("images").create(
        {
            "id": str,
            "config": str,
            "manifest_digest": str,
            "top_layer": str,
            "created": str,
            "size": int,
        },
        pk="id",
        not_null={"config", "created", "size"},
        defaults={"size": 0},
        foreign_keys=[("top_layer", "layers", "chain_id")],
    )
    db.table("images").create_index(["top_layer"])
    db.table("image_tags").create(
        {"name": str, "image_id": str, "created": str},
        pk="name",
        not_null={"image_id", "created"},
        foreign_keys=[("image_id", "images", "id")],
    )
    db.table("image_tags").create_index(["image_id"])


@MIGRATIONS(name="0003_containers")
def _containers(db: Database) -> None:
    db.table("containers").create(
        {
            "id": str,
            "name": str,
            "image": str,
            "rw_layer": str,
            "storage": str,
            "state": str,
            "pid": int,
            "exit_code": int,
            "created": str,
        },
        pk="id",
        not_null={"name", "image", "rw_layer", "storage", "state", "created"},
        foreign_keys=[("image", "images", "id")],
    )
    db.table("containers").create_index(["name"], unique=True)
    db.table("containers").create_index(["image"])


@MIGRATIONS(name="0004_distribution")
def _distribution(db: Database) -> None:
    # The blobs a layer has been seen as (compressed or not), so save/push give them back
    # and a pull skips what it already has; moby calls this "v2 metadata".
    db.table("layer_blobs").create(
        {
            "digest": str,
            "diff_id": str,
            "media_type": str,
            "size": int,
            "uncompressed_size": int,
        },
        pk="digest",
        not_null={"diff_id", "media_type", "size"},
    )
    db.table("layer_blobs").create_index(["diff_id"])
    # Repositories of a registry known to hold a blob: candidates for a cross-repo mount.
    db.table("blob_sources").create(
        {"digest": str, "registry": str, "repository": str},
        pk=("digest", "registry", "repository"),
    )
    # ``name@digest`` under which an image was pulled or pushed (Docker's RepoDigests).
    db.table("repo_digests").create(
        {"name": str, "digest": str, "image_id": str, "created": str},
        pk=("name", "digest"),
        not_null={"image_id", "created"},
        foreign_keys=[("image_id", "images", "id")],
    )
    db.table("repo_digests").create_index(["image_id"])
    # Blobs an operation in progress is writing or about to use: garbage collection skips
    # them while their owner process lives.
    db.table("blob_leases").create({"digest": str, "owner": str}, pk=("digest", "owner"))


@MIGRATIONS(name="0005_container_runtime")
def _container_runtime(db: Database) -> None:
    # ``config``: the container's settings as JSON; ``owner``: the process creating or removing
    # it (NULL once settled), so start-up recovery can finish what a crash left; ``monitor``:
    # "<pid>:<start time>" of the monitor process of its current run.
    containers = db.table("containers")
    containers.add_column("config", str, not_null_default="{}")
    containers.add_column("owner", str)
    containers.add_column("monitor", str)
    containers.add_column("started", str)
    containers.add_column("finished", str)


@MIGRATIONS(name="0006_container_error")
def _container_error(db: Database) -> None:
    # Why a run ended other than by its own exit (its file system's process died, ...), as
    # Docker's State.Error; NULL when there is nothing to say.
    db.table("containers").add_column("error", str)


@MIGRATIONS(name="0007_container_parity")
def _container_parity(db: Database) -> None:
    # ``oom_killed``: the cgroup's OOM killer struck during the last run (State.OOMKilled);
    # ``paused``: its cgroup is frozen; ``restart_count``: restarts by its restart policy;
    # ``cgroup``: JSON of the cgroup directories of its current run (pause, top, stats, update).
    containers = db.table("containers")
    containers.add_column("oom_killed", int, not_null_default=0)
    containers.add_column("paused", int, not_null_default=0)
    containers.add_column("restart_count", int, not_null_default=0)
    containers.add_column("cgroup", str)
    # ``stopped``: the user stopped or killed it, so its restart policy leaves it stopped.
    containers.add_column("stopped", int, not_null_default=0)


@MIGRATIONS(name="0008_volumes")
def _volumes(db: Database) -> None:
    # Named volumes (``<root>/volumes/<name>/_data``). ``anonymous``: made for one container by
    # ``-v /path`` (``rm -v`` removes it); ``populated``: the image's content at the first
    # mount point was copied in (or the volume was not empty), so it is never copied again.
    db.table("volumes").create(
        {
            "name": str,
            "created": str,
            "labels": str,
            "anonymous": int,
            "populated": int,
        },
        pk="name",
        not_null={"created", "labels", "anonymous", "populated"},
        defaults={"labels": "{}", "anonymous": 0, "populated": 0},
    )


@MIGRATIONS(name="0009_networks")
def _networks(db: Database) -> None:
    # Networks (``bridge``, ``network create``): driver, address range, the Linux interface.
    db.table("networks").create(
        {
            "id": str,
            "name": str,
            "driver": str,
            "subnet": str,
            "gateway": str,
            "interface": str,
            "internal": int,
            "created": str,
            "options": str,
        },
        pk="id",
        not_null={"name", "driver", "created"},
        defaults={"internal": 0, "options": "{}"},
    )
    db.table("networks").create_index(["name"], unique=True)
    # A container's place on a network: its address (IPAM: unique per network), its names,
    # its interfaces. Written in one transaction with the choice of the address.
    db.table("endpoints").create(
        {
            "network_id": str,
            "container_id": str,
            "address": str,
            "aliases": str,
            "host_interface": str,
            "interface": str,
        },
        pk=("network_id", "container_id"),
        not_null={"aliases"},
        defaults={"aliases": "[]"},
        foreign_keys=[("network_id", "networks", "id")],
    )
    db.table("endpoints").create_index(["network_id", "address"], unique=True)
    db.table("endpoints").create_index(["container_id"])
    # Host ports a running container holds (``-p``): one holder per address, port, protocol.
    db.table("port_bindings").create(
        {
            "container_id": str,
            "protocol": str,
            "container_port": int,
            "host_ip": str,
            "host_port": int,
        },
        pk=("host_ip", "host_port", "protocol"),
        not_null={"container_id", "container_port"},
    )
    db.table("port_bindings").create_index(["container_id"])
