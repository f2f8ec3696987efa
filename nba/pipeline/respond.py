"""Pipeline stage 7, respond: a Decision becomes a DecideResponse.

A reason's description is for people: the author's `because:` sentence, else the condition
in plain words (nba.ruleset.wording); its rule id, file and line lead to the condition.

Treatments, offers and the reasons that never change (an action's engagement rules, its
levers) are built as protobuf messages once per rule-set load; a response copies them.
"""

from __future__ import annotations

from nba.pipeline.types import Decision, Pick
from nba.ruleset.ruleset import Action, Rule, RuleSet
from nba.v1 import decisioning_pb2 as pb

_TREATMENT_FIELDS = ("headline", "body", "call_to_action", "script", "subject", "url")


class ResponseBuilder:
    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        # Everything about a recommendation that depends only on (action, channel), built
        # once: a response copies one message instead of setting a dozen fields.
        self.templates = {
            (a.id, channel): _template(ruleset, a, channel)
            for a in ruleset.actions.values()
            for channel in a.treatments
        }

    def build(self, decision: Decision) -> pb.DecideResponse:
        response = pb.DecideResponse(
            decision_id=decision.decision_id,
            ruleset_version=decision.ruleset_version,
            degraded=decision.request.degraded,
        )
        if decision.arms:
            response.arms.update(decision.arms)
        for pick in decision.picks:
            self._recommendation(response.recommendations.add(), pick, decision.segments)
        if decision.request.explain:
            for item in decision.excluded:
                response.excluded.add(
                    action_id=item.action_id,
                    rule=item.rule,
                    reason=item.reason,
                    stage=item.stage,
                    file=item.location.file if item.location else "",
                    line=item.location.line if item.location else 0,
                    channel=item.channel,
                )
            response.segments.extend(decision.segments)
        return response

    def _recommendation(self, rec: pb.Recommendation, pick: Pick, segments: list[str]) -> None:
        rec.CopyFrom(self.templates[(pick.action.id, pick.channel)])
        rec.rank = pick.rank
        scored = pick.scored
        if scored is None:
            rec.fallback = True
            del rec.reasons[:]  # a fallback's engagement rules were not what chose it
            rec.reasons.add(
                rule_id="fallback",
                kind="fallback",
                description="Nothing else qualified; the rule set's fallback for this touchpoint",
                file=pick.fallback_from.location.file if pick.fallback_from else "",
                line=pick.fallback_from.location.line if pick.fallback_from else 0,
            )
            return
        rec.score = scored.score
        components = rec.components
        components.propensity = scored.propensity
        components.context_weight = scored.context_weight
        components.value = scored.value
        components.lever = scored.lever
        learned = scored.learned
        if learned is not None:
            components.learned.prior = learned.prior
            components.learned.prior_strength = learned.prior_strength
            components.learned.positives = learned.positives
            components.learned.negatives = learned.negatives
            components.learned.posterior_mean = learned.posterior_mean
            components.learned.sampled = learned.sampled
        for rule in scored.candidate.weight_rules:
            why = rule.because or rule.reason or rule.words  # `reason` was a weight's why before
            rec.reasons.append(rule_reason(rule, f"x{rule.factor:g}: {why}"))


def rule_reason(rule: Rule, description: str = "") -> pb.Reason:
    return pb.Reason(
        rule_id=rule.id,
        file=rule.location.file,
        line=rule.location.line,
        kind=rule.kind,
        description=description or rule.why,
    )


def _static_reasons(ruleset: RuleSet, action: Action) -> list[pb.Reason]:
    """Why the action qualifies, whatever the request: its engagement rules and levers.

    An action without engagement rules qualifies for everyone; it says so, pointing at
    the action itself, so that no recommendation comes back without a reason.
    """
    reasons = [rule_reason(r, r.why) for r in ruleset.engagement[action.id]]
    if not reasons:
        reasons.append(
            pb.Reason(
                rule_id=action.id,
                file=action.location.file,
                line=action.location.line,
                kind="unconditional",
                description="Applies to everyone: the action has no eligible, applicable"
                " or suitable rules",
            )
        )
    for lever in ruleset.levers:
        if action.id in lever.targets:
            reasons.append(
                pb.Reason(
                    rule_id=lever.id,
                    file=lever.location.file,
                    line=lever.location.line,
                    kind="lever",
                    description=f"x{lever.factor:g}: {lever.description or 'business lever'}",
                )
            )
    return reasons


def _template(ruleset: RuleSet, action: Action, channel: str) -> pb.Recommendation:
    template = pb.Recommendation(
        action_id=action.id,
        channel=channel,
        purpose=action.purpose.value,
        name=action.name,
        group=action.group,
        treatment=_treatment(action, channel),
    )
    if action.offer is not None:
        template.offer.CopyFrom(_offer(action))
    template.reasons.extend(_static_reasons(ruleset, action))
    return template


def _treatment(action: Action, channel: str) -> pb.Treatment:
    spec = action.treatments[channel]
    message = pb.Treatment(id=spec.id or f"{action.id}.{channel}", channel=channel)
    for name in _TREATMENT_FIELDS:
        setattr(message, name, getattr(spec, name))
    message.attributes.update({k: str(v) for k, v in (spec.model_extra or {}).items()})
    return message


def _offer(action: Action) -> pb.Offer:
    spec = action.offer
    assert spec is not None
    message = pb.Offer(code=spec.code, name=spec.name, terms=spec.terms)
    message.attributes.update({k: str(v) for k, v in (spec.model_extra or {}).items()})
    return message
