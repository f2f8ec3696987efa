"""`nba explain`: why each action was or was not recommended, stage by stage.

For one request, every action gets its story: the segments the customer is in, each
engagement rule (eligible, applicable, suitable) with whether it held, where it lives
and the values its condition read, the suppressions and weights that applied, the
contact policies, and the arithmetic of its score and rank. It runs the detailed
program (every rule evaluated), exactly as a request with `explain` does.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from nba.engine.reference import term_value
from nba.experiments.variants import describe_arm
from nba.pipeline.decider import Decider
from nba.pipeline.types import Decision, DecisionRequest
from nba.ruleset.resolve import Expr, terms_of
from nba.ruleset.ruleset import Action, Rule, RuleSet


@dataclass
class Check:
    """One rule's verdict for one action."""

    stage: str  # segment eligible applicable suitable suppress weight lever policy arbitration
    rule: str
    held: bool | None  # None: not a condition (a lever, a policy note)
    where: str
    text: str
    values: dict[str, Any] = field(default_factory=dict)


@dataclass
class ActionStory:
    action: Action
    verdict: str  # "rank 1 on web", or why not
    checks: list[Check]

    @property
    def recommended(self) -> bool:
        return self.verdict.startswith("rank ")


@dataclass
class Explanation:
    request: DecisionRequest
    decision: Decision
    segments: list[Check]
    actions: list[ActionStory]
    arms: list[Check] = field(default_factory=list)  # the experiments the customer is in


def explain(decider: Decider, request: DecisionRequest, only: str | None = None) -> Explanation:
    """The whole story of one decision (or of one action in it)."""
    from dataclasses import replace

    request = replace(request, explain=True)
    decision = decider.decide_request(request, claim=False)  # a story, not a real decision
    ruleset = decider.variant_for(request.customer_id).ruleset  # with its arms' changes
    fired = {r.index for r in decision.fired}
    segments_in = set(decision.segments)
    segments = [
        _check(r, r.index in fired, decision.request, segments_in, ruleset)
        for r in ruleset.rules
        if r.kind == "segment"
    ]
    chosen = [a for a in ruleset.actions.values() if only is None or a.id == only]
    stories = [_story(a, decision, fired, segments_in, ruleset) for a in chosen]
    return Explanation(decision.request, decision, segments, stories, _arms(decider, decision))


def _arms(decider: Decider, decision: Decision) -> list[Check]:
    """Per experiment the customer is in: the arm, and what it changes."""
    if decider.assigner is None:
        return []
    return [
        Check(
            "experiment", experiment, None, str(arm.location), f"arm {arm.id}: {describe_arm(arm)}"
        )
        for experiment, arm in decider.assigner.named(decision.arms).items()
    ]


def _story(
    action: Action, decision: Decision, fired: set[int], segments: set[str], ruleset: RuleSet
) -> ActionStory:
    request = decision.request
    checks = [
        _check(r, r.index in fired, request, segments, ruleset)
        for r in ruleset.engagement[action.id]
    ]
    for rule in ruleset.rules:
        if rule.kind not in ("suppress", "weight") or action.id not in rule.targets:
            continue
        held = rule.index in fired
        if rule.kind == "suppress" and not held:
            continue  # only the suppressions that apply explain anything
        check = _check(rule, held, request, segments, ruleset)
        if rule.kind == "weight":
            check.text = f"x{rule.factor:g} when {rule.source}  -- {rule.because or rule.words}"
        checks.append(check)
    for lever in ruleset.levers:
        if action.id in lever.targets:
            text = f"x{lever.factor:g} {lever.description}".strip()
            checks.append(Check("lever", lever.id, None, str(lever.location), text))
    pick = next((p for p in decision.picks if p.action.id == action.id), None)
    excluded = next((e for e in decision.excluded if e.action_id == action.id), None)
    if excluded is not None and excluded.stage in ("policy", "channel", "arbitration"):
        where = str(excluded.location) if excluded.location else ""
        checks.append(Check(excluded.stage, excluded.rule, False, where, excluded.reason))
    if pick is not None and pick.scored is not None:
        s = pick.scored
        text = (
            f"score {s.score:.4g} = propensity {s.propensity:g} x weight {s.context_weight:g}"
            f" x value {s.value:g} x lever {s.lever:g}"
        )
        checks.append(Check("arbitration", "score", None, "", text))
        if s.learned is not None:
            checks.append(Check("learning", "propensity", None, "", _learned_text(s)))
            context = _context_text(decision, ruleset)
            if context:
                checks.append(Check("learning", "context", None, "", context))
    return ActionStory(action, _verdict(pick, excluded), checks)


def _context_text(decision: Decision, ruleset: RuleSet) -> str:
    """The bins a contextual model (learning.context) scored this customer in."""
    context = ruleset.learning_context
    attribution = decision.scorer.attribution() if decision.scorer is not None else {}
    if context is None or not attribution:
        return ""
    if context.segments:
        ((_, segment),) = attribution["features"]
        where = "none of its segments" if segment == "-" else f"segment {segment}"
        return f"the posterior is this action's among customers in {where}"
    labels = {
        p.feature: (p.attribute or f"segment {p.segment}", p.bin_labels) for p in context.predictors
    }
    parts = []
    for feature, bin_ in attribution["features"]:
        name, bins = labels.get(feature, (feature, ()))
        parts.append(f"{name} {bins[int(bin_)] if int(bin_) < len(bins) else bin_}")
    return "naive Bayes in this customer's bins: " + ", ".join(parts)


def _learned_text(scored: Any) -> str:
    learned = scored.learned
    how = f"drawn {scored.propensity:.4g} from" if learned.sampled else "the mean of"
    return (
        f"propensity {how} Beta(prior {learned.prior:g} x {learned.prior_strength:g} observations"
        f" + {learned.positives:.3g} positives, {learned.negatives:.3g} negatives):"
        f" posterior mean {learned.posterior_mean:.4g}"
    )


def _verdict(pick: Any, excluded: Any) -> str:
    if pick is not None:
        kind = " (fallback)" if pick.fallback else ""
        return f"rank {pick.rank} on {pick.channel}{kind}"
    if excluded is not None:
        return f"not recommended: {excluded.reason}"
    return "not recommended"


def _check(
    rule: Rule, held: bool, request: DecisionRequest, segments: set[str], ruleset: RuleSet
) -> Check:
    stage = rule.kind
    # An author's reason says why a rule excludes: show it where the rule did exclude; where
    # it holds, its `because:` (or the condition in words) says why.
    excludes = held if rule.kind == "suppress" else not held
    sentence = rule.reason if rule.reason and excludes else ""
    if not excludes and held:
        sentence = rule.why
    text = rule.source + (f"  -- {sentence}" if sentence else "")
    return Check(
        stage,
        rule.id,
        held,
        str(rule.location),
        text,
        _values(rule.expr, request, segments, ruleset),
    )


def _values(
    expr: Expr, request: DecisionRequest, segments: set[str], ruleset: RuleSet
) -> dict[str, Any]:
    """What the condition read: each term with the request's value (`missing` when absent)."""
    values: dict[str, Any] = {}
    for term in terms_of(expr):
        value = term_value(term, request, segments, ruleset)
        values[str(term)] = "missing" if value is None else value
    return values
