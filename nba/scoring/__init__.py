"""Scoring: how much a candidate is worth, and the most any action could be worth.

    score = propensity x context weight x value x lever

A Scorer turns an engaged candidate into its score (arbitration ranks by it) and says,
per action, the most it could score before context weights (top-k evaluation skips a
chunk of engagement rules when even that bound, times the weights that hold, cannot
reach the list). The two must agree, or top-k stops decisions differing from full
evaluation:

    score(candidate) <= upper_bound(candidate.action) x candidate.weight

One module per implementation, as the store package has one per backend:
- `static`  the rule file's propensity, value and lever (the default; never moves).

Where a learned score plugs in: a scorer whose propensity comes from outcomes (issue 14)
implements this protocol; its upper_bound is the most its propensity may reach until its
next refresh (e.g. the posterior's upper quantile, or 1.0 for sampled exploration), and
it bumps `generation` when that bound changes, so top-k recomputes its chunk bounds.
"""

from __future__ import annotations

from typing import Protocol

from nba.pipeline.types import Candidate, Scored
from nba.ruleset.ruleset import Action, RuleSet


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


def make_scorer(ruleset: RuleSet) -> Scorer:
    """The scorer a rule set asks for; today every rule set scores statically."""
    from nba.scoring.static import StaticScorer

    return StaticScorer(ruleset)


__all__ = ["Scorer", "make_scorer"]
