"""Containers: their rows, storage, processes and output, joined by the engine.

``manager`` creates, finds, removes and recovers containers; ``lifecycle`` starts them and
notices their exit; ``attach`` plumbs their standard streams; ``artifacts`` turns a writable
layer into ``diff`` lines, an ``export`` tar or a ``commit``ted image; ``state`` holds the one
table of allowed transitions.
"""
