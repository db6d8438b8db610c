"""Userspace overlay graph driver on pyfuse3 and trio (not built yet; not registered)."""
