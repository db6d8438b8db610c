"""Kernel overlayfs graph driver (not built yet; it is not registered until it works)."""
