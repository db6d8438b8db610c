"""Graph-driver conformance suite: one set of tests, run against every registered driver.

Each test takes the ``driver`` fixture, which is parametrised over ``graphdriver.registered()``;
a driver joins by registering and is skipped only when ``get_driver`` raises
``NotSupportedError`` (the skip carries its reason). ``DRIVER_MARKS`` in ``conftest.py`` gives
a driver's cases a marker (``overlay``, ``fuse``) so they can be selected or left out.

Run one driver with ``python -m pytest tests/conformance -k vfs``; ``-m "not slow"`` leaves out
the 500-layer chain.
"""
