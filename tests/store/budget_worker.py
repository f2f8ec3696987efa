"""A separate process that claims from one budget, for the multi-process budget test.

    python budget_worker.py URL TRIES LIMIT

Opens the store, prints "ready", waits for a line on stdin (so that several workers start
at the same moment), tries TRIES claims of the counter b|procs|total with limit LIMIT,
prints how many were granted and exits.
"""

from __future__ import annotations

import math
import sys

from nba.store import open_store


def main(url: str, tries: int, limit: int) -> None:
    store = open_store(url, retention_seconds=86400.0)
    print("ready", flush=True)
    sys.stdin.readline()
    granted = 0
    for _ in range(tries):
        ok, _counts = store.take_budget([("b|procs|total", limit)], math.inf)
        granted += ok
    print(granted, flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
