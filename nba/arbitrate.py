"""Pipeline stage 6, arbitrate: score, rank, diversify, cut to size; or fall back.

score = propensity x context weight x value x lever. Ranking is by score, highest first,
then by action id, so the same request always gets the same order. `max_per_group`
keeps only the best action of each group; `max_results` cuts the list.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from dataclasses import dataclass

from nba.engagement import Candidate, Exclusion
from nba.policies import CapBudget, PolicyHistory, PolicyStage
from nba.request import DecisionRequest
from nba.ruleset.ruleset import Fallback, RuleSet


@dataclass(frozen=True, slots=True)
class Scored:
    candidate: Candidate
    score: float
    propensity: float
    context_weight: float
    value: float
    lever: float


def score(ruleset: RuleSet, candidate: Candidate) -> Scored:
    action = candidate.action
    lever = ruleset.lever_factor[action.id]
    total = action.propensity * candidate.weight * action.value * lever
    return Scored(candidate, total, action.propensity, candidate.weight, action.value, lever)


def arbitrate(
    ruleset: RuleSet,
    request: DecisionRequest,
    candidates: list[Candidate],
    explain: bool,
    budget: CapBudget,
) -> tuple[list[Scored], list[Exclusion]]:
    """The top actions, best first, each on the first of its channels a cap still allows."""
    ranked = sorted(
        (score(ruleset, c) for c in candidates),
        key=lambda s: (-s.score, s.candidate.action.id),
    )
    per_group = ruleset.arbitration.max_per_group
    chosen: list[Scored] = []
    excluded: list[Exclusion] = []
    in_group: Counter[str] = Counter()
    best_of_group: dict[str, str] = {}
    for item in ranked:
        action = item.candidate.action
        if per_group and in_group[action.group] >= per_group:
            if explain:
                excluded.append(
                    Exclusion(
                        action.id,
                        "arbitration.max_per_group",
                        f"A better {action.group} action ranked higher"
                        f" ({best_of_group[action.group]}); at most {per_group} per group",
                        "arbitration",
                    )
                )
            continue
        if len(chosen) >= request.max_results:
            if explain:
                excluded.append(
                    Exclusion(
                        action.id,
                        "arbitration.max_results",
                        f"Ranked below the top {request.max_results}",
                        "arbitration",
                    )
                )
            continue
        channel = _uncapped(item.candidate, budget)
        if not channel:
            if explain:
                excluded.append(_capped(item.candidate, budget))
            continue
        budget.take(action, channel)
        item.candidate.channel = channel
        chosen.append(item)
        in_group[action.group] += 1
        best_of_group.setdefault(action.group, action.id)
    return chosen, excluded


def _uncapped(candidate: Candidate, budget: CapBudget) -> str:
    for channel in candidate.channels:
        if budget.full(candidate.action, channel) is None:
            return channel
    return ""


def _capped(candidate: Candidate, budget: CapBudget) -> Exclusion:
    action = candidate.action
    caps = [(c, budget.full(action, c)) for c in candidate.channels]
    first = caps[0][1]
    assert first is not None
    if len(caps) == 1:
        channel = caps[0][0]
        text = budget.describe(first, action)
        return Exclusion(action.id, f"caps.{first.id}", text, "policy", first.location, channel)
    text = "; ".join(f"{c}: {budget.describe(cap, action)}" for c, cap in caps if cap)
    return Exclusion(action.id, f"caps.{first.id}", f"No channel under its caps. {text}", "policy")


def pick_fallback(
    ruleset: RuleSet,
    request: DecisionRequest,
    policies: PolicyStage,
    history: PolicyHistory,
    budget: CapBudget,
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
        kept, _, _ = policies.apply(request, [candidate], explain=False, history=history)
        chosen = _uncapped(candidate, budget) if kept else ""
        if chosen:
            budget.take(candidate.action, chosen)
            return fallback, chosen
    return None
