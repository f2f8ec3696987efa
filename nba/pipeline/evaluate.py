"""Stages 3-6 in one direction: engine -> engagement -> policies -> arbitrate.

Two ways to the same answer:
- `full`: every rule runs, then each stage once. Explained decisions take it (they need
  every engagement rule, from the engine's detailed program), and so do engines with
  nothing to skip.
- `top_k`: the engine's engaged rules run in chunks, best first, and the stages run after
  a chunk only when the list could be full; evaluation stops once the list's lowest score
  beats the most any chunk left could add. Arbitration walks actions best first and a
  lower score never displaces a higher one, so the chunks skipped cannot change the
  decision: top-k decides exactly what `full` does (tests/test_properties.py holds them
  equal), in a fraction of the engine time on large rule sets.

What a chunk could add is bounded per request: the Scorer's upper bound of each of its
actions, times the context weights that hold for the action's (group, purpose) (0 when a
suppression holds), times any weight above 1 written for single actions in it.
"""

from __future__ import annotations

from dataclasses import dataclass

from nba.engine import RuleEngine
from nba.pipeline.arbitrate import arbitrate
from nba.pipeline.engagement import Effects, engage
from nba.pipeline.policies import PolicyHistory, PolicyStage, RequestPolicies
from nba.pipeline.types import OUTBOUND, DecisionRequest, Engagement, Exclusion, Scored
from nba.ruleset.ruleset import Rule, RuleSet
from nba.scoring import Scorer

# Bounds are products of the same factors as scores, multiplied in another order; this
# margin (a few ulps) keeps a bound above the score it bounds despite rounding.
_BOUND_MARGIN = 1 + 1e-12
TOP_K_MIN_CHUNKS = 4  # fewer engaged chunks and the full path is cheaper (see Evaluator)


@dataclass(slots=True)
class Evaluation:
    """Stages 3-6 for one request: the rules that held and what they led to."""

    fired: list[Rule]
    engagement: Engagement
    policies: RequestPolicies
    ranked: list[Scored]  # the recommendations, best first, each placed on a channel
    excluded: list[Exclusion]  # by policies and arbitration (engagement's are in engagement)
    scorer: Scorer  # the decision's session: what the scores came from


class Evaluator:
    def __init__(
        self, ruleset: RuleSet, engine: RuleEngine, policies: PolicyStage, scorer: Scorer
    ) -> None:
        self.ruleset = ruleset
        self.engine = engine
        self.policies = policies
        self.scorer = scorer
        # Bounding chunks costs ~40 us a decision: measured (us a decision, full / top-k),
        # 2 chunks (the bundled rules) 130 / 166, 4 chunks 403 / 281, 9: 1084 / 449.
        self.top_k_pays = len(engine.engaged_chunks) >= TOP_K_MIN_CHUNKS
        self._always_engaged = len(ruleset.unconditional)
        self._generation = -1
        self._class_bounds: list[list[tuple[tuple[str, str], float]]] = []

    def evaluate(self, request: DecisionRequest, seed: str = "") -> Evaluation:
        """Stages 3-6; `seed` (the decision id) drives a learned scorer's sampling."""
        channel = "" if request.channel == OUTBOUND else request.channel  # "": all channels
        scorer = self.scorer.session(seed, channel)
        if request.explain or not self.top_k_pays:
            return self.full(request, scorer)
        return self.top_k(request, scorer)

    def full(self, request: DecisionRequest, scorer: Scorer | None = None) -> Evaluation:
        scorer = scorer or self.scorer
        fired = self.engine.fire(request, detailed=request.explain)
        history = PolicyHistory(self.policies.history_index, request)
        return self._stages(request, fired, history, scorer)

    def top_k(self, request: DecisionRequest, scorer: Scorer | None = None) -> Evaluation:
        """As full(request), firing only the engaged chunks that could change it.

        Not for explained requests: the ranked program fires one "engaged" rule per action,
        not the separate rules an explanation needs.
        """
        scorer = scorer or self.scorer
        needed = request.max_results
        history = PolicyHistory(self.policies.history_index, request)
        with self.engine.ranked(request) as run:
            bounds = self._chunk_bounds(run.fired, scorer)
            order = sorted(range(len(bounds)), key=bounds.__getitem__, reverse=True)
            engaged = self._always_engaged + _count_engaged(run.fired)
            evaluation: Evaluation | None = None
            for position, index in enumerate(order):
                seen = len(run.fired)
                run.fire_chunk(index)
                engaged += _count_engaged(run.fired, seen)
                rest = bounds[order[position + 1]] if position + 1 < len(order) else -1.0
                if rest >= 0 and engaged < needed:
                    continue  # the list cannot be full yet: nothing to learn from arbitrating
                evaluation = self._stages(request, run.fired, history, scorer)
                ranked = evaluation.ranked
                if len(ranked) >= needed and ranked[-1].score > rest:
                    break
            if evaluation is None:  # no chunks: the whole program ran on entry
                evaluation = self._stages(request, run.fired, history, scorer)
        return evaluation

    def _stages(
        self, request: DecisionRequest, fired: list[Rule], history: PolicyHistory, scorer: Scorer
    ) -> Evaluation:
        # Policies are prepared per pass: their state (what this decision already picked)
        # must start empty each time; the history pass over interactions is shared.
        policies = self.policies.prepare(request, history)
        engagement = engage(self.ruleset, fired, request.explain)
        scorer = scorer.with_context(request.profile, engagement.segments)
        ranked, excluded = arbitrate(
            self.ruleset, scorer, request, engagement.candidates, policies, request.explain
        )
        return Evaluation(fired, engagement, policies, ranked, excluded, scorer)

    def _chunk_bounds(self, fired: list[Rule], scorer: Scorer) -> list[float]:
        """The most each engaged chunk could score, given the weights and suppressions.

        Those are known before any engaged rule runs. Weights written for single actions
        can only raise a bound, so those above 1 multiply the whole chunk's.
        """
        weights = Effects([r for r in fired if r.kind == "weight"])
        suppressions = Effects([r for r in fired if r.kind == "suppress"])
        per_action = [
            r
            for r in fired
            if r.kind == "weight" and r.factor > 1 and r.target and r.target.actions
        ]
        bounds = []
        for chunk, classes in zip(
            self.engine.engaged_chunks, self._bounds_of_classes(scorer), strict=True
        ):
            best = 0.0
            for (group, purpose), base in classes:
                if suppressions.of_class(group, purpose):
                    continue
                factor = 1.0
                for rule in weights.of_class(group, purpose):
                    factor *= rule.factor
                best = max(best, base * factor)
            for rule in per_action:
                if rule.target is not None and rule.target.actions & chunk.actions:
                    best *= rule.factor
            bounds.append(best * _BOUND_MARGIN)
        return bounds

    def _bounds_of_classes(self, scorer: Scorer) -> list[list[tuple[tuple[str, str], float]]]:
        """Per chunk, each (group, purpose) in it and the best upper bound of its actions.

        Recomputed only when the scorer's bounds change (a learned scorer's refresh);
        the static scorer's never do, so this runs once per rule-set load.
        """
        if self._generation != scorer.generation:
            actions, bound = self.ruleset.actions, scorer.upper_bound
            self._class_bounds = [
                [(key, max(bound(actions[a]) for a in ids)) for key, ids in chunk.classes.items()]
                for chunk in self.engine.engaged_chunks
            ]
            self._generation = scorer.generation
        return self._class_bounds


def _count_engaged(fired: list[Rule], start: int = 0) -> int:
    return sum(1 for rule in fired[start:] if rule.kind == "engaged")
