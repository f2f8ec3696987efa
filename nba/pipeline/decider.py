"""The decision pipeline for one loaded rule set.

    stage       module
    validate    request.py     proto -> checked DecisionRequest (profile schema from the rules)
    context     context.py     stored history merged with the request's interactions
    facts       facts.py       term values: profile, lifecycle, touchpoint, history counts
    rules       engine/        which rules hold (durable_rules, or the reference evaluator)
                engagement.py  what they mean per action: eligible, suppressed, weighted
    policies    policies.py    consent, channel selection
    arbitrate   arbitrate.py   score, rank, diversify, cut; fallback when nothing qualifies
    respond     respond.py     DecideResponse

A Decider is built once per rule-set load (every per-load cache hangs off it) and is
immutable afterwards: a reload builds a new one and swaps it in whole.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Collection
from dataclasses import replace
from typing import Any

from nba.engine import RuleEngine, make_engine
from nba.pipeline.arbitrate import arbitrate, chunk_bounds, pick_fallback
from nba.pipeline.context import merge_context, merge_history
from nba.pipeline.engagement import Engagement, engage
from nba.pipeline.policies import PolicyHistory, PolicyStage, RequestPolicies
from nba.pipeline.respond import ResponseBuilder
from nba.pipeline.types import Decision, DecisionRequest, Exclusion, Pick, Scored
from nba.pipeline.validate import RequestValidator
from nba.ruleset.ruleset import Rule, RuleSet
from nba.store import InteractionStore, StoreError
from nba.v1 import decisioning_pb2 as pb

log = logging.getLogger(__name__)
UNBOUNDED_HISTORY_SECONDS = 400 * 86400  # counts without a window look this far back


class Decider:
    def __init__(
        self,
        ruleset: RuleSet,
        engine: str | RuleEngine = "durable",
        store: InteractionStore | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.ruleset = ruleset
        self.validator = RequestValidator(ruleset)
        self.engine = make_engine(ruleset, engine) if isinstance(engine, str) else engine
        self.policies = PolicyStage(ruleset)
        self.responses = ResponseBuilder(ruleset)
        self.store = store
        self.clock = clock
        self.history_seconds = history_horizon(ruleset)
        # Top-k evaluation can skip chunks of engaged rules; with one there is nothing to skip.
        self._top_k_pays = len(getattr(self.engine, "ranked", ())) > 1

    @property
    def version(self) -> str:
        return self.ruleset.version

    def close(self) -> None:
        """Free the engine's resources; the Decider must not be used afterwards."""
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()

    def decide(self, message: pb.DecideRequest) -> pb.DecideResponse:
        """The whole pipeline. Raises RequestError for a malformed request."""
        request = self.validator.validate(message, self.clock())
        return self.responses.build(self.decide_request(request))

    def decide_request(self, request: DecisionRequest) -> Decision:
        if self.store is not None:
            request = self._with_stored_context(request)
        else:  # the request's own interactions: clamp those a few seconds ahead to as_of
            request = merge_history(request, (), self.ruleset.policies.clock_skew_seconds)
        explain = request.explain
        if explain or not self._top_k_pays:
            fired = self.engine.fire(request, detailed=explain)
            engagement = engage(self.ruleset, fired, explain)
            policies = self.policies.prepare(request)
            ranked, excluded_by_rank = arbitrate(
                self.ruleset, request, engagement.candidates, policies, explain
            )
        else:
            fired, engagement, policies, ranked, excluded_by_rank = self._top_k(request)
        picks = [
            Pick(rank, s.candidate.action, s.candidate.channel, s)
            for rank, s in enumerate(ranked, start=1)
        ]
        excluded = [*engagement.excluded, *excluded_by_rank]
        if not picks:
            picks = self._fallback(request, policies, engagement.suppressed)
            chosen = {p.action.id for p in picks}
            excluded = [e for e in excluded if e.action_id not in chosen]
        return Decision(
            decision_id=os.urandom(16).hex(),  # 128 random bits, like uuid4, 4x cheaper
            ruleset_version=self.ruleset.version,
            request=request,
            picks=picks,
            excluded=excluded,
            segments=engagement.segments,
            fired=fired,
        )

    def _top_k(
        self, request: DecisionRequest
    ) -> tuple[list[Rule], Engagement, RequestPolicies, list[Scored], list[Exclusion]]:
        """Evaluate engagement in score order and stop once nothing left can make the list.

        Arbitration walks actions best first and a lower score never displaces a higher
        one, so once the list is full and its lowest score beats the best score any
        unevaluated action could reach, evaluating more cannot change the decision.
        """
        ruleset = self.ruleset
        history = PolicyHistory(self.policies.history_index, request)
        needed = request.max_results
        always = len(ruleset.unconditional)
        outcome: list[tuple[Any, ...]] = []

        def enough(fired: list[Rule], bound: float) -> bool:
            engaged = always + sum(1 for r in fired if r.kind == "engaged")
            if bound >= 0 and engaged < needed:
                return False  # cannot be full yet: skip arbitrating
            engagement = engage(ruleset, fired, False)
            policies = self.policies.prepare(request, history)
            ranked, excluded = arbitrate(ruleset, request, engagement.candidates, policies, False)
            outcome[:] = [list(fired), engagement, policies, ranked, excluded]
            return len(ranked) >= needed and ranked[-1].score > bound

        self.engine.fire_until(request, chunk_bounds, enough)  # type: ignore[attr-defined]
        return tuple(outcome)  # type: ignore[return-value]

    def _with_stored_context(self, request: DecisionRequest) -> DecisionRequest:
        try:
            stored, consent = self.store.snapshot(  # type: ignore[union-attr]
                request.customer_id,
                request.as_of - self.history_seconds,
                self.ruleset.policies.stored_consent,
            )
        except StoreError as exc:
            log.warning("store unavailable, deciding without marketing: %s", exc)
            return replace(request, degraded=True)
        return merge_context(request, stored, consent, self.ruleset.policies.clock_skew_seconds)

    def _fallback(
        self, request: DecisionRequest, policies: RequestPolicies, suppressed: Collection[str]
    ) -> list[Pick]:
        found = pick_fallback(self.ruleset, request, policies, suppressed)
        if found is None:
            return []
        fallback, channel = found
        action = self.ruleset.actions[fallback.action]
        return [Pick(1, action, channel, None, fallback=True, fallback_from=fallback)]


def history_horizon(ruleset: RuleSet) -> float:
    """How far back rules and policies look; this is also the store's retention.

    Counts without a window, and one-time offers (never again after an accept), look
    back UNBOUNDED_HISTORY_SECONDS.
    """
    from nba.ruleset.resolve import CountTerm

    windows = [
        t.window_seconds or UNBOUNDED_HISTORY_SECONDS
        for t in ruleset.terms.values()
        if isinstance(t, CountTerm)
    ]
    windows.append(ruleset.policies.horizon_seconds())
    if any(a.one_time for a in ruleset.actions.values()):
        windows.append(UNBOUNDED_HISTORY_SECONDS)
    return float(max(windows, default=86400) or 86400)
