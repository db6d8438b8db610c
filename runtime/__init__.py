"""Container runtime: namespaces, rootfs set-up, pivot_root, capabilities, cgroups.

It receives a root filesystem path and knows nothing of graph drivers. The runtime itself is
built by its own issue; this package holds its place in the dependency contract.
"""
