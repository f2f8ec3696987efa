"""Deterministic assignment of customers to experiments and arms.

The hash, documented so other systems (a data warehouse, a CRM) can compute the same
membership, as GrowthBook, Statsig and Eppo publish theirs:

    bucket(a, b, customer_id) = first 8 bytes, big-endian, of
                                SHA-256("{a}:{b}:{customer_id}" as UTF-8), modulo 10,000

1. Layer: experiments of one layer split its customers by traffic, in the order the rule
   files declare them: with bucket("layer", layer, customer_id) = L, the first experiment
   takes L < 10,000 x traffic1, the next the following 10,000 x traffic2 buckets, and so
   on; a customer past them all is in none of the layer's experiments.
2. Arm: within the experiment, with bucket(salt, experiment id, customer_id) = B, the arms
   take consecutive ranges of 10,000 x share in the order declared.

The universal control group is the experiment `universal_control` in a layer of its own
(its `salt:` from the rule files); its control customers are in no other experiment, so
each experiment compares marketing with marketing. Nothing here depends on time or on the
process: a customer's arms change only when the author changes a salt, a share or a layer.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from nba.ruleset.ruleset import UNIVERSAL_CONTROL, Arm, Experiment

BUCKETS = 10_000


def bucket(a: str, b: str, customer_id: str) -> int:
    """The documented hash: 0 <= bucket < 10,000."""
    digest = hashlib.sha256(f"{a}:{b}:{customer_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def _cut(share: float) -> int:
    return round(share * BUCKETS)


def pick_arm(experiment: Experiment, customer_id: str) -> Arm:
    b = bucket(experiment.salt, experiment.id, customer_id)
    edge = 0
    for arm in experiment.arms:
        edge += _cut(arm.share)
        if b < edge:
            return arm
    return experiment.arms[-1]  # shares that round below 10,000 in total


class Assigner:
    """Which arm of which experiment a customer is in, for one rule set."""

    def __init__(self, experiments: Sequence[Experiment]) -> None:
        self.universal = next((e for e in experiments if e.id == UNIVERSAL_CONTROL), None)
        self.layers: dict[str, list[Experiment]] = {}
        for experiment in experiments:
            if experiment.id != UNIVERSAL_CONTROL:
                self.layers.setdefault(experiment.layer, []).append(experiment)
        self._arms_by_id = {e.id: {a.id: a for a in e.arms} for e in experiments}

    def arms(self, customer_id: str) -> dict[str, Arm]:
        """Experiment id -> the customer's arm, for every experiment the customer is in."""
        found: dict[str, Arm] = {}
        if self.universal is not None:
            arm = pick_arm(self.universal, customer_id)
            found[UNIVERSAL_CONTROL] = arm
            if arm.id == self.universal.control:
                return found
        for layer, members in self.layers.items():
            experiment = self._in_layer(layer, members, customer_id)
            if experiment is not None:
                found[experiment.id] = pick_arm(experiment, customer_id)
        return found

    def named(self, arms: Mapping[str, str]) -> dict[str, Arm]:
        """The arms named by id (a logged decision's), skipping any this rule set lacks."""
        by_id = self._arms_by_id
        return {e: by_id[e][a] for e, a in arms.items() if a in by_id.get(e, {})}

    @staticmethod
    def _in_layer(layer: str, members: list[Experiment], customer_id: str) -> Experiment | None:
        if len(members) == 1 and members[0].traffic >= 1.0:
            return members[0]  # the whole layer: no need to hash for it
        b = bucket("layer", layer, customer_id)
        edge = 0
        for experiment in members:
            edge += _cut(experiment.traffic)
            if b < edge:
                return experiment
        return None
