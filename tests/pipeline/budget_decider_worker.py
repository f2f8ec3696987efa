"""A separate process deciding through a Decider on a shared store, for the budget tests.

    python budget_decider_worker.py RULES_DIR STORE_URL COUNT

Loads the rules, opens the store, prints "ready", waits for a line on stdin (so that several
workers decide at the same moment), makes COUNT decisions for distinct customers, prints
how many recommended each action as JSON and exits.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter

from nba.authoring.strategies import struct_of
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb


def main(rules: str, url: str, count: int) -> None:
    store = open_store(url, retention_seconds=86400.0)
    decider = Decider(load_ruleset(rules), "reference", store)
    print("ready", flush=True)
    sys.stdin.readline()
    picked: Counter[str] = Counter()
    for i in range(count):
        msg = pb.DecideRequest(customer_id=f"p{os.getpid()}-{i}", lifecycle_stage="active")
        msg.profile.CopyFrom(struct_of({"age": 30}))
        msg.touchpoint.channel = "web"
        picked.update(r.action_id for r in decider.decide(msg).recommendations)
    print(json.dumps(picked), flush=True)
    store.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]))
