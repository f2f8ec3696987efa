"""Scoring: how much a candidate is worth, and the most any action could be worth.

    score = propensity x context weight x value x lever

A Scorer turns an engaged candidate into its score (arbitration ranks by it) and says,
per action, the most it could score before context weights (top-k evaluation skips a
chunk of engagement rules when even that bound, times the weights that hold, cannot
reach the list). The two must agree, or top-k stops decisions differing from full
evaluation:

    score(candidate) <= upper_bound(candidate.action) x candidate.weight

One module per implementation, as the store package has one per backend:
- `static`    the rule file's propensity, value and lever (never moves).
- `adaptive`  propensity learned from outcomes: a Beta posterior per action and channel,
              Thompson sampling, evidence shared through the store (`evidence.py`).

A learned scorer (adaptive.py) gives each decision a `session`: one snapshot of its model
and the decision's seed for sampling, so bounds and scores agree within the decision;
its upper_bound is the most its propensity may reach in that snapshot (1.0 when it may
sample), and `generation` changes with the snapshot, so top-k recomputes chunk bounds.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from nba.pipeline.types import Candidate, Scored
from nba.ruleset.ruleset import Action, RuleSet

if TYPE_CHECKING:
    from nba.scoring.adaptive import ModelCache


class Scorer(Protocol):
    """The score of engaged candidates, and an upper bound per action (see module doc)."""

    # Changes whenever upper_bound may answer differently (a model refresh); the static
    # scorer's never does.
    generation: int

    def total(self, candidate: Candidate) -> float:
        """The candidate's score (what arbitration ranks by), without its parts."""
        ...

    def score(self, candidate: Candidate) -> Scored:
        """The candidate's score and the parts it is made of (for the response)."""
        ...

    def upper_bound(self, action: Action) -> float:
        """The most `total` can be for this action with a context weight of 1."""
        ...

    def parameters(self) -> dict[str, list[float]]:
        """What this decision's learned scores came from, per action ([positives,
        failures] of the evidence it read): for the decision log, so a replay can score
        again exactly. {} for a scorer that learns nothing."""
        ...

    def with_context(self, profile: Mapping[str, Any], segments: Collection[str]) -> Scorer:
        """This decision's scorer once its segments are known: a contextual model's
        (learning.context) scores in the customer's bins; any other returns itself."""
        ...

    def attribution(self) -> dict[str, Any]:
        """What an outcome of this decision should count in (nba/scoring/attribution.py):
        the decision's bins and score bins; {} when nothing is learned per context."""
        ...

    def session(self, seed: str, channel: str = "") -> Scorer:
        """The scorer for one decision: `seed` (its id) drives any sampling, `channel` (the
        touchpoint's; "" for none) picks a learned scorer's evidence, and a learned scorer
        reads one snapshot of its model for the whole decision."""
        ...


def make_scorer(ruleset: RuleSet, model: ModelCache | None = None) -> Scorer:
    """The scorer a rule set asks for: adaptive when its actions learn and a model (the
    store's evidence) is at hand, else static."""
    if ruleset.learning and model is not None:
        from nba.scoring.adaptive import AdaptiveScorer

        return AdaptiveScorer(ruleset, model)
    from nba.scoring.static import StaticScorer

    return StaticScorer(ruleset)


__all__ = ["Scorer", "make_scorer"]
