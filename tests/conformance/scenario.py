"""The change scenario in two layers: ``base`` from :func:`populate_base` and ``upper``, a
container layer changed on it by :func:`change_upper`."""

from __future__ import annotations

import io

import graphdriver
from graphdriver import Change

from .helpers import mounted
from .trees import Abilities, change_upper, populate_base


class ChangeScenario:
    """Builds ``base`` and ``upper`` in ``driver``; knows the expected changes and sizes."""

    def __init__(self, driver: graphdriver.Driver) -> None:
        self.driver = driver
        driver.create("base", None)
        with mounted(driver, "base") as root:
            populate_base(root, seed=2)
        driver.create_read_write("upper", "base")
        with mounted(driver, "upper") as root:
            self.can = Abilities.probe(root, devices=False)
            done = change_upper(root, seed=3, can=self.can)
        self.expected: list[Change] = done.changes
        self.size = done.size

    def diff_bytes(self, layer_id: str = "upper") -> bytes:
        """The whole ``diff(layer_id, "base")``."""
        with self.driver.diff(layer_id, "base") as stream:
            return stream.read()

    def rebuild(self, layer_id: str, data: bytes) -> int:
        """A new image layer on ``base`` with ``data`` applied; returns what apply_diff did."""
        self.driver.create(layer_id, "base")
        return self.driver.apply_diff(layer_id, "base", io.BytesIO(data))
