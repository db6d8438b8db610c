"""Names for containers started without ``--name``: ``<adjective>_<noun>``, as Docker makes."""

from __future__ import annotations

import random
from collections.abc import Callable

from pydock.containers.errors import ContainerConflictError

ADJECTIVES = (
    "amber", "brave", "calm", "clever", "crisp", "dapper", "eager", "fancy", "gentle",
    "happy", "jolly", "keen", "lively", "lucid", "merry", "nimble", "noble", "quiet",
    "rapid", "serene", "shiny", "steady", "sunny", "swift", "tidy", "vivid", "witty", "zesty",
)  # fmt: skip
NOUNS = (
    "badger", "beacon", "canyon", "comet", "falcon", "fjord", "glacier", "harbor", "heron",
    "lagoon", "lantern", "meadow", "nebula", "orchid", "otter", "pebble", "quartz", "raven",
    "river", "summit", "thistle", "tundra", "walrus", "willow", "yak", "zephyr",
)  # fmt: skip


def generate(is_taken: Callable[[str], bool], rng: random.Random | None = None) -> str:
    """A fresh name for which ``is_taken`` is false (a number is added after many tries)."""
    rng = rng or random.SystemRandom()
    for attempt in range(100):
        name = f"{rng.choice(ADJECTIVES)}_{rng.choice(NOUNS)}"
        if attempt >= 10:
            name += str(rng.randrange(1000))
        if not is_taken(name):
            return name
    raise ContainerConflictError("naming a container: no free name found")
