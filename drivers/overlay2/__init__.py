"""Kernel overlayfs graph driver."""

from __future__ import annotations

from drivers.overlay2.driver import Overlay2Driver

__all__ = ["Overlay2Driver"]
