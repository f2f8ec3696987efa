"""The example requests of the bundled rule set, as is or with synthetic history.

The targets speak of "20 interactions per request": the examples carry 0 to 4, so
`example_requests(history=20)` adds 20 synthetic interactions to each (real action ids
of the rule set on channels those actions have, mixed outcomes, within the 60 days
before the request's as_of), seeded so every run measures the same requests.
"""

from __future__ import annotations

import random
from pathlib import Path

from google.protobuf import json_format

from bench.common import RULES_DIR
from bench.generate import synthetic_interactions
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

BENCH_AS_OF = 1_795_168_800  # 2026-11-20T10:00:00Z, the examples' own moment


def example_files(rules_dir: Path = RULES_DIR) -> list[Path]:
    return sorted((rules_dir / "examples").glob("*.json"))


def example_requests(
    ruleset: RuleSet,
    history: int = 0,
    explain: bool = False,
    rules_dir: Path = RULES_DIR,
    seed: int = 5,
) -> list[pb.DecideRequest]:
    """Every example request, explain forced on or off, with `history` extra interactions."""
    rng = random.Random(seed)
    channels = {a.id: a.channels for a in ruleset.actions.values()}
    requests = []
    for path in example_files(rules_dir):
        msg = json_format.Parse(path.read_text(encoding="utf-8"), pb.DecideRequest())
        msg.explain = explain
        if history:
            add_history(msg, channels, history, rng)
        requests.append(msg)
    if not requests:
        raise SystemExit(f"no example requests under {rules_dir / 'examples'}")
    return requests


def add_history(
    msg: pb.DecideRequest,
    action_channels: dict[str, tuple[str, ...]],
    count: int,
    rng: random.Random,
) -> pb.DecideRequest:
    """Append `count` synthetic interactions to msg (in place), dated before its as_of."""
    if not msg.HasField("as_of"):  # an example that decides "now": fix the moment, so
        msg.as_of.FromSeconds(BENCH_AS_OF)  # every run measures the same windows
    msg.interactions.extend(synthetic_interactions(rng, action_channels, count, msg.as_of))
    return msg
