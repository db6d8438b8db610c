"""Userspace overlay on pyfuse3 and trio: ``fs`` is the filesystem, ``serve`` runs one mount per
process, ``cli`` is the ``pydock-fuse-overlay`` command (not a registered graph driver yet).

Nothing is imported here, so loading the package does not load pyfuse3 or trio.
"""
