"""A Decision -> its DecisionRecord (masked, hashed), and a record's request back again.

Masking follows OPA's decision-log masking: configured paths are removed ("drop") or
their value replaced ("mask", by MASK), and the record lists what was done, so a reader
knows the record is not the whole request. Only `profile.<attribute>` paths exist: the
rest of the request is what replay needs and carries no free-form personal data beyond
the customer id, which a keyed HMAC-SHA256 replaces when a key is configured (the same
customer gives the same digest, so one customer's decisions can still be found).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Iterable, Mapping
from typing import Any

from nba.decisionlog import DecisionRecord
from nba.pipeline.types import Decision, DecisionRequest, Interaction, Pick

MASK = "***"
PROFILE_PREFIX = "profile."
DEADLINE = "deadline"  # the path of a decision answered by the fallback at once (no time left)
DECIDED = "decided"


class RecordBuilder:
    """Turns Decisions into records with one configuration of masking and hashing."""

    def __init__(
        self,
        drop: Iterable[str] = (),
        mask: Iterable[str] = (),
        hash_key: bytes | None = None,
        engine: str = "durable",
    ) -> None:
        self.drop = frozenset(profile_attribute(p) for p in drop)
        self.mask = frozenset(profile_attribute(p) for p in mask) - self.drop
        self.hash_key = hash_key
        self.engine = engine

    def record(self, decision: Decision, at: float) -> DecisionRecord:
        request = decision.request
        profile, masked = self._masked_profile(request.profile)
        model = decision.scorer.parameters() if decision.scorer is not None else {}
        return DecisionRecord(
            decision_id=decision.decision_id,
            time=at,
            ruleset_version=decision.ruleset_version,
            customer=self.customer(request.customer_id),
            touchpoint={
                "channel": request.channel,
                "placement": request.placement,
                "intent": request.intent,
            },
            segments=list(decision.segments),
            recommendations=[recommendation(p) for p in decision.picks],
            excluded=[
                {
                    "action": e.action_id,
                    "channel": e.channel,
                    "stage": e.stage,
                    "rule": e.rule,
                    "reason": e.reason,
                }
                for e in decision.excluded
            ],
            request=request_dict(request, profile),
            engine=self.engine,
            path=decision_path(decision),
            masked=masked,
            # What a learned scorer scored with ([positives, failures] per learning action,
            # the touchpoint's channel) and its exploration seed (the decision id).
            model=model,
            seed=decision.decision_id if model else "",
            arms=dict(decision.arms),
        )

    def customer(self, customer_id: str) -> str:
        if self.hash_key is None:
            return customer_id
        digest = hmac.new(self.hash_key, customer_id.encode(), hashlib.sha256).hexdigest()
        return f"hmac-sha256:{digest}"

    def _masked_profile(self, profile: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, str]]:
        kept: dict[str, Any] = {}
        masked: dict[str, str] = {}
        for name, value in profile.items():
            if name in self.drop:
                masked[PROFILE_PREFIX + name] = "dropped"
            elif name in self.mask:
                masked[PROFILE_PREFIX + name] = "masked"
                kept[name] = MASK
            else:
                kept[name] = sorted(value) if isinstance(value, frozenset) else value
        return kept, masked


def profile_attribute(path: str) -> str:
    """`profile.income` -> `income`; ValueError for any other path."""
    name = path.removeprefix(PROFILE_PREFIX)
    if not path.startswith(PROFILE_PREFIX) or not name or "." in name:
        raise ValueError(f"'{path}': expected profile.<attribute>, e.g. profile.monthly_income")
    return name


def recommendation(pick: Pick) -> dict[str, Any]:
    out: dict[str, Any] = {
        "rank": pick.rank,
        "action": pick.action.id,
        "channel": pick.channel,
        "fallback": pick.fallback,
    }
    scored = pick.scored
    if scored is not None:
        out |= {
            "score": scored.score,
            "propensity": scored.propensity,
            "weight": scored.context_weight,
            "value": scored.value,
            "lever": scored.lever,
        }
        if scored.learned is not None:
            out["learned"] = {
                "prior": scored.learned.prior,
                "prior_strength": scored.learned.prior_strength,
                "positives": scored.learned.positives,
                "negatives": scored.learned.negatives,
                "posterior_mean": scored.learned.posterior_mean,
                "sampled": scored.learned.sampled,
            }
    return out


def decision_path(decision: Decision) -> str:
    """DEADLINE when the decision can only have been the out-of-time fallback.

    That answer (Decider.out_of_time) runs no rules: nothing fired, no segment, no
    exclusion, a fallback pick, degraded. A decision made in full that came to the same
    (degraded, nothing fired or excluded) picks the same fallback by the same policies,
    so replaying either way gives the same answer.
    """
    request = decision.request
    no_rules = not decision.fired and not decision.segments and not decision.excluded
    if request.degraded and no_rules and all(p.fallback for p in decision.picks):
        return DEADLINE
    return DECIDED


def request_dict(request: DecisionRequest, profile: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "profile": dict(profile),
        "lifecycle": request.lifecycle,
        "channel": request.channel,
        "placement": request.placement,
        "intent": request.intent,
        "interactions": [
            [i.action_id, i.channel, i.outcome, i.at, i.interaction_id, i.decision_id]
            for i in request.interactions
        ],
        "consent": dict(request.consent),
        "max_results": request.max_results,
        "explain": request.explain,
        "as_of": request.as_of,
        "preferred_channels": list(request.preferred_channels),
        "time_zone": request.time_zone,
        "degraded": request.degraded,
    }


def decision_request(record: DecisionRecord, profile: Mapping[str, Any]) -> DecisionRequest:
    """The request a record was decided on; `profile` already converted to the rule set's
    types (sets are lists in JSON)."""
    logged = record.request
    return DecisionRequest(
        customer_id=record.customer,  # no stage decides by the id; the store is not read
        profile=profile,
        lifecycle=logged["lifecycle"],
        channel=logged["channel"],
        placement=logged["placement"],
        intent=logged["intent"],
        interactions=tuple(Interaction(*item) for item in logged["interactions"]),
        consent=dict(logged["consent"]),
        max_results=logged["max_results"],
        explain=logged["explain"],
        as_of=logged["as_of"],
        preferred_channels=tuple(logged["preferred_channels"]),
        time_zone=logged["time_zone"],
        degraded=logged["degraded"],
    )
