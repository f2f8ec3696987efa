"""A separate process that records through a store, for the multi-process and kill -9 tests.

    python store_worker.py URL CUSTOMER PREFIX COUNT [--hang] [--open-on-go]

Opens the store, prints "ready", waits for a line on stdin (so that the parent can start
several workers at the same moment), records COUNT interactions with ids PREFIX-0 ...,
prints "ok" and exits, or with --hang sleeps until it is killed. With --open-on-go it opens
the store after the line instead, so that several workers open one fresh file at once.
With --consent=W/N it sends worker W's consent updates of a race between N workers instead
(store_helpers.consent_updates, COUNT rounds), one channel per call.
"""

from __future__ import annotations

import sys
import time

from store_helpers import consent_updates

from nba.pipeline.types import Interaction
from nba.store import open_store

RETENTION = 10 * 365 * 86400.0


def main(url: str, customer_id: str, prefix: str, count: int, flags: list[str]) -> None:
    if "--open-on-go" in flags:
        print("ready", flush=True)
        sys.stdin.readline()
        store = open_store(url, retention_seconds=RETENTION)
    else:
        store = open_store(url, retention_seconds=RETENTION)
        print("ready", flush=True)
        sys.stdin.readline()
    consent = [flag for flag in flags if flag.startswith("--consent=")]
    if consent:
        worker, workers = map(int, consent[0].removeprefix("--consent=").split("/"))
        for channel, granted, at in consent_updates(worker, workers, count):
            store.update_consent(customer_id, {channel: granted}, at)
        print("ok", flush=True)
        store.close()
        return
    now = time.time()
    for i in range(count):
        interaction = Interaction("offer", "web", 1, now + i * 1e-3, f"{prefix}-{i}")
        if not store.record(customer_id, interaction):
            raise SystemExit(f"{prefix}-{i} was reported as recorded before")
    print("ok", flush=True)
    if "--hang" in flags:
        time.sleep(60)
    store.close()


if __name__ == "__main__":
    url, customer, prefix, count = sys.argv[1:5]
    main(url, customer, prefix, int(count), sys.argv[5:])
