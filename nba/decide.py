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
import time
import uuid
from collections.abc import Callable, Collection
from dataclasses import replace

from nba.arbitrate import arbitrate, pick_fallback
from nba.context import merge_context
from nba.engagement import engage
from nba.engine import RuleEngine, make_engine
from nba.policies import CapBudget, PolicyHistory, PolicyStage
from nba.request import DecisionRequest, RequestValidator
from nba.respond import Decision, Pick, ResponseBuilder
from nba.ruleset.ruleset import RuleSet
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
        explain = request.explain
        fired = self.engine.fire(request, detailed=explain)
        engagement = engage(self.ruleset, fired, explain)
        candidates, excluded_by_policy, history = self.policies.apply(
            request, engagement.candidates, explain
        )
        budget = CapBudget(self.ruleset.policies, history.cap_counts)
        ranked, excluded_by_rank = arbitrate(self.ruleset, request, candidates, explain, budget)
        picks = [
            Pick(rank, s.candidate.action, s.candidate.channel, s)
            for rank, s in enumerate(ranked, start=1)
        ]
        excluded = [*engagement.excluded, *excluded_by_policy, *excluded_by_rank]
        if not picks:
            picks = self._fallback(request, history, budget, engagement.suppressed)
            chosen = {p.action.id for p in picks}
            excluded = [e for e in excluded if e.action_id not in chosen]
        return Decision(
            decision_id=uuid.uuid4().hex,
            ruleset_version=self.ruleset.version,
            request=request,
            picks=picks,
            excluded=excluded,
            segments=engagement.segments,
            fired=fired,
        )

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
        return merge_context(request, stored, consent)

    def _fallback(
        self,
        request: DecisionRequest,
        history: PolicyHistory,
        budget: CapBudget,
        suppressed: Collection[str],
    ) -> list[Pick]:
        found = pick_fallback(self.ruleset, request, self.policies, history, budget, suppressed)
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
