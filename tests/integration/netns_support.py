"""What the network tests share: the fetch they run inside a network namespace of their own."""

from __future__ import annotations

# ``python -c FETCH URL`` (run inside the test's namespace): print the page at URL, retrying
# while the server comes up; bounded: 100 tries, about 10 s at most.
FETCH = r"""
import sys, time, urllib.request
url = sys.argv[1]
for attempt in range(100):
    try:
        with urllib.request.urlopen(url, timeout=2) as reply:
            sys.stdout.write(reply.read().decode())
            sys.exit(0)
    except OSError as exc:
        error = exc
        time.sleep(0.1)
sys.exit(f"no answer from {url}: {error}")
"""
