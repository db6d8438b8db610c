"""Container networking: generated /etc files, network drivers (``pydock.netdrivers``), IPAM.

Only :mod:`pydock.network.etcfiles` is light; the drivers load pyroute2 and are imported only
by the verbs that need them.
"""
