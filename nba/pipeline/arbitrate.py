"""Pipeline stage 6, arbitrate: score, rank, apply policies, diversify, cut; or fall back.

The score is the Scorer's (nba/scoring/). Ranking is by score, highest first,
then by action id, so the same request always gets the same order. Walking the ranking,
an action is recommended when the contact policies allow it on some channel with cap
room (the decision's own picks use that room), its group has room (`max_per_group`) and
the list is not full (`max_results`). Policies are checked lazily: once the list is full
nothing below can be chosen, so unless the decision is explained the walk stops there,
which keeps large rule sets cheap.
"""

from __future__ import annotations

import heapq
from collections import Counter
from collections.abc import Collection
from typing import TYPE_CHECKING

from nba.pipeline.policies import RequestPolicies
from nba.pipeline.types import Candidate, DecisionRequest, Exclusion, Scored
from nba.ruleset.ruleset import Action, Fallback, RuleSet

if TYPE_CHECKING:
    from nba.scoring import Scorer


class _Slots:
    """Room left in the list and in each group."""

    def __init__(self, per_group: int, limit: int) -> None:
        self.per_group = per_group
        self.limit = limit
        self.taken = 0
        self.in_group: Counter[str] = Counter()
        self.best_of_group: dict[str, str] = {}

    @property
    def full(self) -> bool:
        return self.taken >= self.limit

    def why_not(self, action: Action) -> Exclusion | None:
        if self.per_group and self.in_group[action.group] >= self.per_group:
            return Exclusion(
                action.id,
                "arbitration.max_per_group",
                f"A better {action.group} action ranked higher"
                f" ({self.best_of_group[action.group]}); at most {self.per_group} per group",
                "arbitration",
                action.location,  # where its group and score (value, propensity) are written
            )
        if self.full:
            return Exclusion(
                action.id,
                "arbitration.max_results",
                f"Ranked below the top {self.limit}",
                "arbitration",
                action.location,
            )
        return None

    def take(self, action: Action) -> None:
        self.taken += 1
        self.in_group[action.group] += 1
        self.best_of_group.setdefault(action.group, action.id)


def arbitrate(
    ruleset: RuleSet,
    scorer: Scorer,
    request: DecisionRequest,
    candidates: list[Candidate],
    policies: RequestPolicies,
    explain: bool,
) -> tuple[list[Scored], list[Exclusion]]:
    """The recommended actions, best first, each placed on a channel; and the others' reasons.

    The policy verdict is asked first because it is the most useful explanation ("opted
    out" says more than "ranked fourth"); the chosen list is the same in either order.
    """
    # A heap, not a sort: most decisions fill their few slots from the top of a long list.
    total = scorer.total
    heap = [(-total(c), c.action.id, c) for c in candidates]
    heapq.heapify(heap)
    slots = _Slots(ruleset.arbitration.max_per_group, request.max_results)
    chosen: list[Scored] = []
    excluded: list[Exclusion] = []
    while heap and (explain or not slots.full):
        candidate = heapq.heappop(heap)[2]
        why = (
            policies.check(candidate)
            or slots.why_not(candidate.action)
            or policies.place(candidate)
        )
        if why is not None:
            if explain:
                excluded.append(why)
            continue
        slots.take(candidate.action)
        chosen.append(scorer.score(candidate))
    return chosen, excluded


def pick_fallback(
    ruleset: RuleSet,
    request: DecisionRequest,
    policies: RequestPolicies,
    suppressed: Collection[str] = (),
) -> tuple[Fallback, str] | None:
    """The most specific fallback for the touchpoint that the policies allow, and its channel.

    A fallback skips its action's engagement rules (it is what is said when nothing
    qualifies) but not suppressions, consent, contact policies or caps: those always win.
    """
    channel = request.channel

    def specificity(f: Fallback) -> int:
        if f.channel is None:
            return 0
        if f.channel != channel:
            return -1
        if f.placement is None:
            return 1
        return 2 if f.placement == request.placement else -1

    matches = sorted(
        (f for f in ruleset.fallbacks if specificity(f) >= 0), key=specificity, reverse=True
    )
    for fallback in matches:
        if fallback.action in suppressed:
            continue
        candidate = Candidate(ruleset.actions[fallback.action])
        if policies.check(candidate) is None and policies.place(candidate) is None:
            return fallback, candidate.channel
    return None
