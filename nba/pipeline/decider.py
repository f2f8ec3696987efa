"""The decision pipeline for one loaded rule set.

    stage       module
    validate    validate.py    proto -> checked DecisionRequest (profile schema from the rules)
    context     context.py     stored history merged with the request's interactions
    facts       engine/facts   term values: profile, lifecycle, touchpoint, history counts
    rules       engine/        which rules hold (durable_rules, or the reference evaluator)
    engagement  engagement.py  what they mean per action: eligible, suppressed, weighted
    policies    policies.py    consent, contact policies, channel selection
    arbitrate   arbitrate.py   rank by the Scorer (nba/scoring), diversify, cut; the fallback
    respond     respond.py     DecideResponse

Stages 3-6 run in evaluate.py, in one direction (full, or top-k on large rule sets); the
engine builds the facts itself, since the reference evaluator reads the request directly.

A Decider is built once per rule-set load (every per-load cache hangs off it) and is
immutable afterwards: a reload builds a new one and swaps it in whole.
"""

from __future__ import annotations

import copy
import logging
import os
import time
from collections.abc import Callable, Collection, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from nba.engine import RuleEngine, make_engine
from nba.experiments.assign import Assigner
from nba.experiments.variants import Key, combinations, key_of, variant
from nba.pipeline import budgets as budgeting
from nba.pipeline.arbitrate import pick_fallback
from nba.pipeline.context import merge_context, merge_history
from nba.pipeline.evaluate import Evaluator
from nba.pipeline.policies import PolicyStage, RequestPolicies
from nba.pipeline.respond import ResponseBuilder
from nba.pipeline.types import Decision, DecisionRequest, Exclusion, Pick, Scored
from nba.pipeline.validate import RequestValidator
from nba.ruleset.ruleset import Arm, RuleSet
from nba.scoring import Scorer, make_scorer

if TYPE_CHECKING:
    from nba.scoring.adaptive import ModelCache
from nba.store import InteractionStore, StoreError
from nba.v1 import decisioning_pb2 as pb

log = logging.getLogger(__name__)
UNBOUNDED_HISTORY_SECONDS = 400 * 86400  # counts without a window look this far back
# Less time left than this and a decision answers the fallback at once: a store round trip
# and the rules take about a millisecond each when all is well, and a late answer is lost.
MIN_DECISION_SECONDS = 0.005
# With budgets, the evaluation ranks up to this many candidates past max_results, so that
# a pick a spent budget refuses is replaced without evaluating again.
MAX_BUDGET_SPARES = 8


class Decider:
    def __init__(
        self,
        ruleset: RuleSet,
        engine: str | RuleEngine = "durable",
        store: InteractionStore | None = None,
        clock: Callable[[], float] = time.time,
        scorer: Scorer | None = None,
        model: ModelCache | None = None,
    ) -> None:
        self.ruleset = ruleset
        self.validator = RequestValidator(ruleset)
        self.engine = make_engine(ruleset, engine) if isinstance(engine, str) else engine
        self.policies = PolicyStage(ruleset)
        self.scorer = scorer or make_scorer(ruleset, model)
        self.evaluator = Evaluator(ruleset, self.engine, self.policies, self.scorer)
        self.responses = ResponseBuilder(ruleset)
        self.store = store
        self.clock = clock
        self.history_seconds = history_horizon(ruleset)
        self.budgets, self.budget_store = self._budgets(ruleset, store, clock)
        # Experiments: each customer's arms, and the prebuilt Decider of every combination of
        # arms that changes something (nba/experiments); None: no experiments, no cost.
        self.assigner = Assigner(ruleset.experiments) if ruleset.experiments else None
        self.variants: dict[Key, Decider] = {}
        for arms in combinations(ruleset.experiments):
            if arms:
                rules = variant(ruleset, [a for _, a in arms])
                engine_name = engine if isinstance(engine, str) else self.engine.name
                decider = Decider(rules, engine_name, store, clock, None, model)
                decider.budget_store = self.budget_store  # one count, whatever the arm
                self.variants[key_of(arms)] = decider

    @staticmethod
    def _budgets(
        ruleset: RuleSet, store: InteractionStore | None, clock: Callable[[], float]
    ) -> tuple[budgeting.Budgets | None, InteractionStore | None]:
        """The rule set's budgets and where they are counted; (None, None) without budgets."""
        if not ruleset.budgets:
            return None, None
        if store is None:
            # No store: budgets are counted in this process only (a MemoryStore per Decider,
            # so also afresh after a reload), not shared with other workers or replicas.
            from nba.store.memory import MemoryStore

            store = MemoryStore(retention_seconds=UNBOUNDED_HISTORY_SECONDS, clock=clock)
        return budgeting.Budgets(ruleset.budgets, ruleset.meta.time_zone), store

    @property
    def version(self) -> str:
        return self.ruleset.version

    def close(self) -> None:
        """Free the engine's resources; the Decider must not be used afterwards."""
        close = getattr(self.engine, "close", None)
        if close is not None:
            close()
        for decider in self.variants.values():
            decider.close()

    def decide(self, message: pb.DecideRequest, deadline: float | None = None) -> pb.DecideResponse:
        """The whole pipeline. Raises RequestError for a malformed request.

        `deadline` (time.monotonic()): with less than MIN_DECISION_SECONDS left after
        validation, the answer is the touchpoint's fallback, marked degraded, without
        reading the store or running the rules.
        """
        return self.decision_and_response(message, deadline)[1]

    def decision_and_response(
        self, message: pb.DecideRequest, deadline: float | None = None
    ) -> tuple[Decision, pb.DecideResponse]:
        """As decide(), with the Decision it answers (for metrics and logs)."""
        request = self.validator.validate(message, self.clock())
        if deadline is not None and deadline - time.monotonic() < MIN_DECISION_SECONDS:
            decision = self.out_of_time(request)
        else:
            decision = self.decide_request(request)
        return decision, self.responses.build(decision)

    def out_of_time(self, request: DecisionRequest) -> Decision:
        """The touchpoint's fallback, for a request with no time left to decide.

        Degraded, as when the store is down: stored consent is unknown, so no marketing.
        """
        skew = self.ruleset.policies.clock_skew_seconds
        request = merge_history(replace(request, degraded=True), (), skew)
        picks = self._fallback(request, self.policies.prepare(request), ())
        if self.budgets is not None and any(
            self.budgets.covers(p.action, p.channel) for p in picks
        ):
            picks = []  # no time to claim its budget: the safe side is saying nothing
        arms = self.assigner.arms(request.customer_id) if self.assigner is not None else {}
        return Decision(
            decision_id=new_decision_id(),
            ruleset_version=self.ruleset.version,
            request=request,
            picks=picks,
            excluded=[],
            segments=[],
            fired=[],
            arms=arm_ids(arms),
        )

    def decide_request(
        self,
        request: DecisionRequest,
        decision_id: str = "",
        arms: Mapping[str, str] | None = None,
        claim: bool = True,
    ) -> Decision:
        """`decision_id` (new when empty) also seeds a learned scorer's sampling; with
        experiments, the customer's arms choose the rule set the decision is made with.
        `arms` (experiment id -> arm id): decide in these instead, as a replay does (a log
        may keep only a hash of the customer id).

        `claim`: count the picks against the rule set's budgets; False for what is not a
        real decision (`nba explain`, scenario tests), which then ignores budgets.
        """
        if self.assigner is None:
            return self._decide(request, decision_id, claim)
        if arms is None:
            found = self.assigner.arms(request.customer_id)
        else:
            found = self.assigner.named(arms)
        decision = self._variant(found)._decide(request, decision_id, claim)
        decision.arms = arm_ids(found)
        return decision

    def variant_for(self, customer_id: str) -> Decider:
        """The Decider this customer's decisions are made with (self without experiments)."""
        if self.assigner is None:
            return self
        return self._variant(self.assigner.arms(customer_id))

    def _variant(self, arms: Mapping[str, Arm]) -> Decider:
        return self.variants.get(key_of(arms.items()), self)  # no arm changes anything: self

    def _decide(self, request: DecisionRequest, decision_id: str, claim: bool) -> Decision:
        decision_id = decision_id or new_decision_id()
        request = self._with_context(request)
        budgeted = claim and self.budgets is not None
        evaluated = self._with_spares(request) if budgeted else request
        evaluation = self.evaluator.evaluate(evaluated, decision_id)
        engagement = evaluation.engagement
        ranked = evaluation.ranked
        excluded = [*engagement.excluded, *evaluation.excluded]
        if budgeted:
            ranked, request = self._within_budgets(request, ranked, excluded)
        picks = [
            Pick(rank, s.candidate.action, s.candidate.channel, s)
            for rank, s in enumerate(ranked, start=1)
        ]
        if not picks:
            picks = self._fallback(request, evaluation.policies, engagement.suppressed)
            if budgeted and picks:
                picks, request = self._budgeted_fallback(request, picks, excluded)
            chosen = {p.action.id for p in picks}
            excluded = [e for e in excluded if e.action_id not in chosen]
        return Decision(
            decision_id=decision_id,
            ruleset_version=self.ruleset.version,
            request=request,
            picks=picks,
            excluded=excluded,
            segments=engagement.segments,
            fired=evaluation.fired,
            scorer=evaluation.scorer,
            suppressed=engagement.suppressed,
        )

    def fallback_for(self, decision: Decision) -> list[Pick]:
        """The touchpoint's fallback for a decision of this Decider, as if nothing had
        qualified: what a batch shows a customer whose every option ran out of budget."""
        request = decision.request
        return self._fallback(request, self.policies.prepare(request), decision.suppressed)

    @property
    def budget_spares(self) -> int:
        """How many candidates past max_results a budgeted decision ranks: one per budgeted
        action (each may be refused once), at most MAX_BUDGET_SPARES; 0 without budgets."""
        return min(len(self.budgets.covered), MAX_BUDGET_SPARES) if self.budgets else 0

    def _with_spares(self, request: DecisionRequest) -> DecisionRequest:
        """The request evaluated for a budgeted decision: ranking the spares too."""
        widened = copy.copy(request)  # a third of what dataclasses.replace costs
        widened.max_results += self.budget_spares
        return widened

    def _within_budgets(
        self, request: DecisionRequest, ranked: list[Scored], excluded: list[Exclusion]
    ) -> tuple[list[Scored], DecisionRequest]:
        """The first max_results of `ranked` the budgets allow, claimed in the store.

        Adds the budgets' exclusions to `excluded`; a store error marks the request degraded.
        """
        assert self.budgets is not None and self.budget_store is not None
        options = [(s.candidate.action, s.candidate.channel) for s in ranked]
        outcome = budgeting.claim(
            self.budgets, self.budget_store, options, request.max_results, self.clock()
        )
        excluded.extend(outcome.excluded)
        kept = [ranked[i] for i in outcome.kept]
        if request.explain:
            _ranked_below(request.max_results, ranked, set(outcome.kept), outcome, excluded)
        return kept, replace(request, degraded=True) if outcome.failed else request

    def _budgeted_fallback(
        self, request: DecisionRequest, picks: list[Pick], excluded: list[Exclusion]
    ) -> tuple[list[Pick], DecisionRequest]:
        """The fallback, if no budget covering it is spent: a budget holds for it too."""
        assert self.budgets is not None and self.budget_store is not None
        options = [(p.action, p.channel) for p in picks]
        outcome = budgeting.claim(self.budgets, self.budget_store, options, 1, self.clock())
        excluded.extend(outcome.excluded)
        request = replace(request, degraded=True) if outcome.failed else request
        return [picks[i] for i in outcome.kept], request

    def _with_context(self, request: DecisionRequest) -> DecisionRequest:
        """Stage 2: the request's interactions and consent merged with the stored ones."""
        if self.store is None:  # the request's own interactions: clamp those a few seconds ahead
            return merge_history(request, (), self.ruleset.policies.clock_skew_seconds)
        return self._with_stored_context(request, self.store)

    def _with_stored_context(
        self, request: DecisionRequest, store: InteractionStore
    ) -> DecisionRequest:
        try:
            stored, consent = store.snapshot(
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


def _ranked_below(
    limit: int,
    ranked: list[Scored],
    kept: set[int],
    outcome: budgeting.Outcome,
    excluded: list[Exclusion],
) -> None:
    """Explained decisions: the spares not needed are ranked below the top `limit`, and the
    arbitration exclusions of the widened evaluation say the request's limit, not its own."""
    refused = {e.action_id for e in outcome.excluded}
    for item in excluded:
        if item.rule == "arbitration.max_results":
            item.reason = f"Ranked below the top {limit}"
    for index, scored in enumerate(ranked):
        action = scored.candidate.action
        if index not in kept and action.id not in refused:
            excluded.append(
                Exclusion(
                    action.id,
                    "arbitration.max_results",
                    f"Ranked below the top {limit}",
                    "arbitration",
                    action.location,
                )
            )


def arm_ids(arms: Mapping[str, Arm]) -> dict[str, str]:
    """Experiment id -> arm id: how a Decision names a customer's arms."""
    return {experiment: arm.id for experiment, arm in arms.items()}


def new_decision_id() -> str:
    return os.urandom(16).hex()  # 128 random bits, like uuid4, 4x cheaper


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
