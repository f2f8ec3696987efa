"""Evidence for learned propensities: decayed counts of trials and positives, as store counters.

Per (action, channel) three counts: impressions (showings), positives (the outcomes
`learning.positives` declares: accepts and clicks by default) and negatives
(`learning.negatives`: rejects and dismissals). The posterior's failures are the
negatives, or the impressions no positive answered when there are more of those:

    successes = positives        failures = max(negatives, impressions - positives)

so a web banner learns from impressions and clicks, and a call-center script, where
agents record every answer and no impression, from accepts and rejects. Which
impression a positive answers is not tracked: in aggregate, over a response window far
shorter than the half-life, the two agree. Recent behaviour counts more: an outcome's
weight halves every half-life.

Decay without read-modify-write: an outcome at time `at` adds 2^((at - t0) / h) to its
counter, and a reader divides the sum by 2^((now - t0) / h), which is the sum of the
weights 2^(-(now - at) / h). So every update is a plain atomic increment (the store's
`add_to_counters`), whichever worker or replica makes it. To keep the growing factor
finite, t0 is the start of an era of ERA_HALF_LIVES half-lives, named in the counter:
an outcome adds to its own era's counter, and a reader sums the current era and the
one before (older eras weigh less than 2^-512 and are ignored).

    counter name: "m|<half-life seconds>|<era>|<action>|<channel>|<i, p or n>"

A rule set with `learning.context` (context.py) also counts each outcome in the bins of
the decision that showed the action, one counter per (feature, bin):

    "c|<half-life seconds>|<era>|<action>|<channel>|<feature>|<bin>|<i, p or n>"
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from nba.pipeline.types import Interaction
from nba.ruleset.ruleset import Learning

PREFIX = "m|"
CONTEXT_PREFIX = "c|"
EPOCH = 1_767_225_600.0  # 2026-01-01T00:00:00Z
ERA_HALF_LIVES = 512  # 2^512 ~ 1e154: far from float's limit


IMPRESSION = 1  # nba.v1.Outcome.IMPRESSION


@dataclass(frozen=True, slots=True)
class Evidence:
    """Decayed counts for one (action, channel) as of a moment."""

    impressions: float = 0.0
    positives: float = 0.0
    negatives: float = 0.0

    @property
    def failures(self) -> float:
        """Negatives, or impressions no positive answered when those are more."""
        return max(self.negatives, self.impressions - self.positives)


def era_of(at: float, half_life: int) -> int:
    return math.floor((at - EPOCH) / (half_life * ERA_HALF_LIVES))


def weight(at: float, half_life: int, era: int) -> float:
    """2^((at - start of era) / half_life): the increment an outcome at `at` adds.

    Read at `now`, a counter of that era is multiplied by weight(now)^-1, computed as
    2^-x (which underflows to 0 for a long-gone era instead of overflowing).
    """
    start = EPOCH + era * half_life * ERA_HALF_LIVES
    return float(2.0 ** ((at - start) / half_life))


def _decay(now: float, half_life: int, era: int) -> float:
    start = EPOCH + era * half_life * ERA_HALF_LIVES
    return float(2.0 ** (-(now - start) / half_life))


def counter_name(half_life: int, era: int, action_id: str, channel: str, kind: str) -> str:
    return f"{PREFIX}{half_life}|{era}|{action_id}|{channel}|{kind}"


def increments(learning: Learning, interaction: Interaction) -> dict[str, float]:
    """What one recorded interaction adds to the counters ({} when it is no evidence)."""
    outcome = interaction.outcome
    if outcome == IMPRESSION:
        kind = "i"
    elif outcome in learning.positives:
        kind = "p"
    elif outcome in learning.negatives:
        kind = "n"
    else:
        return {}
    half_life = learning.half_life_seconds
    era = era_of(interaction.at, half_life)
    name = counter_name(half_life, era, interaction.action_id, interaction.channel, kind)
    return {name: weight(interaction.at, half_life, era)}


def context_increments(
    learning: Learning, interaction: Interaction, features: Iterable[tuple[str, str]]
) -> dict[str, float]:
    """What one outcome adds to the counters of the bins it is attributed to."""
    plain = increments(learning, interaction)
    if not plain:
        return {}
    ((name, amount),) = plain.items()
    head, kind = name[len(PREFIX) :].rsplit("|", 1)  # "<hl>|<era>|<action>|<channel>"
    return {f"{CONTEXT_PREFIX}{head}|{f}|{b}|{kind}": amount for f, b in features}


def read_evidence(
    counters: Mapping[str, float], now: float, half_lives: Iterable[int]
) -> dict[tuple[str, str], Evidence]:
    """(action, channel) -> Evidence as of `now`, from the counters of those half-lives."""
    sums = _decayed_sums(counters, now, half_lives, "m", 6)
    for target in sums.values():  # (action, ""): over all its channels
        for (action_id, _), total in list(target.items()):
            target[(action_id, "")] = target.get((action_id, ""), 0.0) + total
    return _evidence(sums)  # type: ignore[return-value]  # keys of 2 parts, as asked


def read_context_evidence(
    counters: Mapping[str, float], now: float, half_lives: Iterable[int]
) -> dict[tuple[str, ...], Evidence]:
    """(action, channel, feature, bin) -> Evidence as of `now`, with channel "" summing the
    channels and bin TOTAL ("*") summing a feature's bins (naive Bayes' per-class totals)."""
    sums = _decayed_sums(counters, now, half_lives, "c", 8)
    for target in sums.values():
        for (action_id, channel, feature, bin_), total in list(target.items()):
            for key in (
                (action_id, "", feature, bin_),
                (action_id, channel, feature, "*"),
                (action_id, "", feature, "*"),
            ):
                target[key] = target.get(key, 0.0) + total
    return _evidence(sums)


def _decayed_sums(
    counters: Mapping[str, float], now: float, half_lives: Iterable[int], family: str, size: int
) -> dict[str, dict[tuple[str, ...], float]]:
    """Per kind (i, p, n): the decayed sum of each counter of `family`, by the name's key."""
    sums: dict[str, dict[tuple[str, ...], float]] = {"i": {}, "p": {}, "n": {}}
    wanted = set(half_lives)
    for name, total in counters.items():
        parts = name.split("|")
        if len(parts) != size or parts[0] != family or parts[-1] not in sums:
            continue
        try:
            half_life, era = int(parts[1]), int(parts[2])
        except ValueError:
            continue
        if half_life not in wanted:
            continue
        current = era_of(now, half_life)
        if era not in (current, current - 1):
            continue  # older than 512 half-lives: weighs nothing
        key = tuple(parts[3:-1])
        target = sums[parts[-1]]
        target[key] = target.get(key, 0.0) + total * _decay(now, half_life, era)
    return sums


def _evidence(sums: dict[str, dict[tuple[str, ...], float]]) -> dict[tuple[str, ...], Evidence]:
    impressions, positives, negatives = sums["i"], sums["p"], sums["n"]
    keys = impressions.keys() | positives.keys() | negatives.keys()
    return {
        k: Evidence(impressions.get(k, 0.0), positives.get(k, 0.0), negatives.get(k, 0.0))
        for k in keys
    }
