"""The static scorer: the rule file's propensity, value and lever, fixed per load."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from nba.pipeline.types import Candidate, Scored
from nba.ruleset.ruleset import Action, RuleSet


class StaticScorer:
    """propensity x context weight x value x lever, from the rule files."""

    generation = 0  # the rule set's numbers never move between loads

    def __init__(self, ruleset: RuleSet) -> None:
        self._lever: Mapping[str, float] = ruleset.lever_factor

    def total(self, candidate: Candidate) -> float:
        return self._formula(candidate.action, candidate.weight)

    def score(self, candidate: Candidate) -> Scored:
        action, weight = candidate.action, candidate.weight
        lever = self._lever[action.id]
        return Scored(
            candidate, self._formula(action, weight), action.propensity, weight, action.value, lever
        )

    def parameters(self) -> dict[str, list[float]]:
        return {}

    def session(self, seed: str, channel: str = "") -> StaticScorer:
        return self  # nothing to sample, nothing that moves

    def with_context(self, profile: Mapping[str, Any], segments: Collection[str]) -> StaticScorer:
        return self  # the same for every customer

    def attribution(self) -> dict[str, Any]:
        return {}

    def upper_bound(self, action: Action) -> float:
        # Exact, not loose: x * 1.0 == x in floating point, so this is total() at weight 1.
        return self._formula(action, 1.0)

    def _formula(self, action: Action, weight: float) -> float:
        # The one place the score is written. The order of the factors is fixed so that a
        # score and its bound round alike and equal scores tie exactly.
        return action.propensity * weight * action.value * self._lever[action.id]
