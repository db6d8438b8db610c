"""Userspace overlay on pyfuse3 and trio: ``fs`` is the filesystem, ``serve`` runs one mount per
process, ``cli`` is the ``pydock-fuse-overlay`` command, ``server`` the resident mount server
that forks those processes, ``client`` the driver's side of it, ``driver`` the graph driver
(registered as ``fuse`` through ``drivers.fuse.driver:FuseDriver``).

Nothing is imported here, so loading the package (or the driver) does not load pyfuse3 or trio.
"""
