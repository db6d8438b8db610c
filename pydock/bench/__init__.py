"""``pydock bench``: the same workloads on pydock's drivers and on the tools used instead.

``data`` makes the seeded data, ``backends`` wraps the drivers and reference tools, ``workloads``
says what is measured, ``runner`` runs it interleaved, ``results`` holds the samples and
``report`` draws the table, the Markdown report and the plots.
"""
