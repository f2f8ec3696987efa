"""Synthetic but realistic rule sets and customers, for the scaling benchmarks.

A generated set looks like the bundled retail bank, scaled: the same channels and
lifecycle, a profile schema with numbers, enums, sets and model scores, segments that
depend on other segments, actions with treatments on several channels and engagement
rules drawn from the constructs authors really write (thresholds, `in [...]`, set
membership, `dismissals(30d, action=this) < 2`, group and channel scoped counts), and
suppression and weight rules. Everything is seeded: the same spec gives the same text.

Thresholds are chosen so that each condition holds for most generated customers (as in
real rule sets, where most rules pass for most customers), so a decent share of rules
fire; `python -m bench.generate` prints that share.

    python -m bench.generate --actions 100 --rules 500            # summary and fired share
    python -m bench.generate --actions 100 --rules 500 --out DIR  # write the YAML files
"""

from __future__ import annotations

import argparse
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from google.protobuf import timestamp_pb2

from bench.common import Target, show, table
from nba.v1 import decisioning_pb2 as pb

AS_OF = "2026-11-20T09:00:00Z"  # every generated request decides for this moment
HISTORY_DAYS = 60  # generated interactions fall within this many days before as_of

STAGES = ("prospect", "onboarding", "active", "growing", "at_risk", "lapsed")
STAGE_WEIGHTS = (10, 10, 35, 25, 12, 8)
# (id, direction, marketing consent): the bundled bank's channels, in its order.
CHANNELS = (
    ("email", "outbound", "opt_in"),
    ("push", "outbound", "opt_in"),
    ("sms", "outbound", "opt_in"),
    ("postal_mail", "outbound", "opt_out"),
    ("call_center", "both", "opt_out"),
    ("mobile_app", "inbound", "opt_out"),
    ("web", "inbound", "opt_out"),
    ("branch", "inbound", "opt_out"),
)
CHANNEL_IDS = tuple(c[0] for c in CHANNELS)
INBOUND = ("call_center", "mobile_app", "web", "branch")
OUTBOUND = ("email", "push", "sms", "postal_mail", "call_center")
PRODUCTS = (
    "checking",
    "savings",
    "fixed_deposit",
    "isa",
    "investment",
    "credit_card",
    "personal_loan",
    "auto_loan",
    "mortgage",
    "home_insurance",
    "travel_insurance",
    "life_insurance",
)
INTERESTS = ("travel", "home", "family", "investing", "sport", "tech", "cars", "pets")
REGIONS = ("london", "south_east", "south_west", "east", "midlands", "north", "scotland", "wales")
EMPLOYMENT = ("employed", "self_employed", "retired", "student", "unemployed")
TIERS = ("bronze", "silver", "gold", "platinum")
INTENTS = ("cancel", "complaint", "mortgage", "open_account", "travel", "savings", "card")
PLACEMENTS = ("homepage_hero", "home_feed", "savings_hub", "travel_money", "login", "offers")
GROUP_WORDS = ("cards", "loans", "savings", "insurance", "mortgages", "invest", "accounts")
MODEL_SCORES = 10  # profile.model_score_0..9: 0-100 scores from upstream models

# Outcome mix of synthetic history (complaints excluded: one pauses all marketing, which
# would make the requests with history cheaper for a reason that has nothing to do with
# their size).
OUTCOME_WEIGHTS = {
    pb.IMPRESSION: 50,
    pb.CLICK: 15,
    pb.DISMISS: 20,
    pb.ACCEPT: 5,
    pb.REJECT: 10,
}


@dataclass(frozen=True, slots=True)
class Spec:
    """What to generate. rules: the total rule count (segments + engagement + rules)."""

    actions: int = 100
    rules: int = 500
    seed: int = 7

    @property
    def segments(self) -> int:
        return max(2, round(self.rules * 0.04))

    @property
    def global_rules(self) -> int:
        return max(2, round(self.rules * 0.08))

    @property
    def engagement_rules(self) -> int:
        return self.rules - self.segments - self.global_rules

    @property
    def label(self) -> str:
        return f"{self.actions} actions / {self.rules} rules"


@dataclass
class Generated:
    """A generated rule set: its files as text, and what requests need to know about it."""

    spec: Spec
    documents: list[tuple[str, str]]
    action_channels: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def write(self, directory: Path) -> Path:
        for name, text in self.documents:
            path = directory / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
        return directory

    def load(self) -> Any:
        from nba.ruleset.loader import load_documents

        return load_documents(self.documents)


# ---------------------------------------------------------------------------- rule sets


def generate(spec: Spec) -> Generated:
    if spec.engagement_rules < 0:
        raise ValueError(f"{spec.rules} rules is too few for segments and global rules")
    rng = random.Random(spec.seed)
    groups = _groups(spec.actions)
    segments, rare = _segments(rng, spec.segments)
    actions = _actions(rng, spec, groups, [s["id"] for s in segments], rare)
    action_ids = [a["id"] for a in actions]
    rules = _global_rules(rng, spec.global_rules, groups, action_ids, segments, rare)
    generated = Generated(spec, [])
    generated.action_channels = {a["id"]: tuple(a["treatments"]) for a in actions}
    docs = generated.documents
    docs.append(("ruleset.yaml", _dump(_header(rng, groups))))
    docs.append(("profile.yaml", _dump({"profile": _profile()})))
    docs.append(("segments.yaml", _dump({"segments": segments})))
    docs.append(("rules.yaml", _dump({"rules": rules})))
    for start in range(0, len(actions), 100):  # files of 100 actions, as authors split them
        docs.append(
            (
                f"actions/actions_{start // 100:03d}.yaml",
                _dump({"actions": actions[start : start + 100]}),
            )
        )
    return generated


def _dump(data: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(data), sort_keys=False, width=1000, allow_unicode=True)


def _groups(actions: int) -> list[str]:
    count = max(3, actions // 10)
    return [f"g{i:03d}_{GROUP_WORDS[i % len(GROUP_WORDS)]}" for i in range(count)]


def _header(rng: random.Random, groups: list[str]) -> dict[str, Any]:
    channels = [{"id": c, "direction": d, "marketing_consent": m} for c, d, m in CHANNELS]
    levers = [
        {"id": f"lever_{i}", "groups": [g], "factor": round(rng.uniform(0.8, 1.4), 2)}
        for i, g in enumerate(rng.sample(groups, min(3, len(groups))))
    ]
    return {
        "ruleset": {"name": "generated", "time_zone": "Europe/London"},
        "lifecycle_stages": list(STAGES),
        "channels": channels,
        "arbitration": {"max_results": 3, "max_per_group": 1},
        "levers": levers,
        "fallbacks": [{"action": "svc_fallback"}],
    }


def _profile() -> dict[str, Any]:
    profile: dict[str, Any] = {
        "age": {"type": "int", "min": 18, "max": 120, "required": True},
        "monthly_income": {"type": "number", "min": 0},
        "credit_score": {"type": "int", "min": 300, "max": 850},
        "total_balance": {"type": "number", "min": 0},
        "tenure_months": {"type": "int", "min": 0},
        "digital_logins_30d": {"type": "int", "min": 0},
        "num_children": {"type": "int", "min": 0, "max": 20},
        "days_past_due": {"type": "int", "min": 0},
        "card_utilisation_pct": {"type": "int", "min": 0, "max": 200},
        "has_mobile_app": "bool",
        "home_owner": "bool",
        "vulnerable": "bool",
        "paperless": "bool",
        "travels_abroad": "bool",
        "region": {"type": "enum", "values": list(REGIONS)},
        "employment": {"type": "enum", "values": list(EMPLOYMENT)},
        "tier": {"type": "enum", "values": list(TIERS)},
        "products": {"type": "set", "values": list(PRODUCTS)},
        "interests": {"type": "set", "values": list(INTERESTS)},
    }
    for i in range(MODEL_SCORES):
        profile[f"model_score_{i}"] = {"type": "int", "min": 0, "max": 100}
    return profile


def _quoted(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


# Base segments: (kind, template). Those marked rare hold for few customers and are the
# ones suppressions and "not segment.x" engagement rules refer to.
_BASE_SEGMENTS = (
    ("affluent", "profile.total_balance >= {bal} or profile.monthly_income >= {inc}", False),
    ("long_standing", "profile.tenure_months >= {months}", False),
    ("digital", "profile.has_mobile_app and profile.digital_logins_30d >= {logins}", False),
    ("arrears", "profile.days_past_due > {dpd}", True),
    ("stretched", "profile.card_utilisation_pct >= {util} or profile.days_past_due > 0", True),
    ("prime", "profile.credit_score >= {score}", False),
    ("family", "profile.num_children >= 1 and profile.age <= {age}", False),
    ("holder", '"{product}" in profile.products', False),
    ("model_high", "profile.model_score_{m} >= {pct}", False),
    ("stage", "lifecycle in {stages}", False),
    ("regional", "profile.region in {regions}", False),
)
_DERIVED_SEGMENTS = (
    ("both", "segment.{a} and segment.{b}"),
    ("but_not", "segment.{a} and not segment.{b}"),
    ("either", "segment.{a} or profile.credit_score >= {score}"),
    ("at_risk", 'segment.{a} and lifecycle == "at_risk"'),
)


def _segments(rng: random.Random, count: int) -> tuple[list[dict[str, Any]], list[str]]:
    """About half base segments, the rest built on earlier ones (two or three strata)."""
    segments: list[dict[str, Any]] = []
    rare: list[str] = []
    base = max(2, count // 2)
    for i in range(count):
        if i < base:
            kind, template, is_rare = _BASE_SEGMENTS[i % len(_BASE_SEGMENTS)]
            when = template.format(**_segment_params(rng))
        else:
            kind, template = _DERIVED_SEGMENTS[i % len(_DERIVED_SEGMENTS)]
            a, b = rng.sample([s["id"] for s in segments], 2)
            when = template.format(a=a, b=b, score=rng.choice((620, 650, 680)))
            is_rare = False
        segment_id = f"seg_{i:03d}_{kind}"
        segments.append({"id": segment_id, "description": f"generated {kind}", "when": when})
        if is_rare:
            rare.append(segment_id)
    return segments, rare


def _segment_params(rng: random.Random) -> dict[str, Any]:
    return {
        "bal": rng.choice((20000, 50000, 100000)),
        "inc": rng.choice((5000, 8000, 12000)),
        "months": rng.choice((12, 36, 60)),
        "logins": rng.choice((4, 8, 12)),
        "dpd": rng.choice((30, 60)),
        "util": rng.choice((90, 100)),
        "score": rng.choice((650, 700, 750)),
        "age": rng.choice((45, 50, 55)),
        "product": rng.choice(PRODUCTS),
        "m": rng.randrange(MODEL_SCORES),
        "pct": rng.choice((40, 50, 60)),
        "stages": _quoted(rng.sample(STAGES, 3)),
        "regions": _quoted(rng.sample(REGIONS, 4)),
    }


# Engagement rule templates: each holds for most generated customers (70-100%).
_ENGAGEMENT = (
    ("adult", "profile.age >= 18"),
    ("age_band", "profile.age between 18 and {max_age}"),
    ("income", "profile.monthly_income >= {income}"),
    ("score", "profile.credit_score >= {score}"),
    ("stage", "lifecycle in {stages}"),
    ("not_held", 'not ("{product}" in profile.products)'),
    ("has_checking", '"checking" in profile.products'),
    ("not_dismissed", "dismissals(30d, action=this) < 2"),
    ("not_rejected", "rejections(90d, action=this) == 0"),
    ("not_overexposed", "impressions(7d, action=this) < {shown}"),
    ("not_accepted", "accepts(action=this) == 0"),
    ("not_rare_segment", "not segment.{rare}"),
    ("region", "profile.region not in {regions}"),
    ("not_vulnerable", "not profile.vulnerable"),
    ("model", "profile.model_score_{m} >= {pct}"),
    ("group_clicks", 'clicks(30d, group="{group}") < 5'),
    ("channel_quiet", 'impressions(1d, channel="{channel}") < 3'),
    ("tenure", "profile.tenure_months >= {months}"),
    ("not_here", 'touchpoint.channel != "{channel}"'),
    ("tier", "profile.tier in {tiers}"),
    ("no_arrears", "not (profile.days_past_due > 30)"),
    ("segment_or", "segment.{segment} or profile.monthly_income >= {income}"),
)


def _engagement_params(
    rng: random.Random, group: str, segments: list[str], rare: list[str]
) -> dict[str, Any]:
    return {
        "max_age": rng.choice((70, 75, 80, 85)),
        "income": rng.choice((500, 800, 1200, 1500)),
        "score": rng.choice((520, 560, 600)),
        "stages": _quoted(rng.sample(STAGES[1:], 4)),
        "product": rng.choice(PRODUCTS[2:]),
        "shown": rng.choice((3, 4, 5)),
        "rare": rng.choice(rare or segments),
        "regions": _quoted(rng.sample(REGIONS, 2)),
        "m": rng.randrange(MODEL_SCORES),
        "pct": rng.choice((10, 20, 30)),
        "group": group,
        "channel": rng.choice(CHANNEL_IDS),
        "months": rng.choice((0, 1, 3, 6)),
        "tiers": _quoted(TIERS[rng.randrange(2) :]),
        "segment": rng.choice(segments),
    }


def _actions(
    rng: random.Random, spec: Spec, groups: list[str], segments: list[str], rare: list[str]
) -> list[dict[str, Any]]:
    counts = _spread(rng, spec.engagement_rules, spec.actions - 1)  # the fallback has none
    actions = [_fallback_action()]
    for i, count in enumerate(counts, start=1):
        group = groups[i % len(groups)]
        actions.append(_action(rng, i, group, count, segments, rare))
    return actions


def _spread(rng: random.Random, total: int, buckets: int) -> list[int]:
    """total split into buckets as evenly as possible, the remainder to random buckets."""
    counts = [total // buckets] * buckets
    for i in rng.sample(range(buckets), total % buckets):
        counts[i] += 1
    return counts


def _fallback_action() -> dict[str, Any]:
    return {
        "id": "svc_fallback",
        "name": "Security tips",
        "purpose": "service",
        "group": "fallback",
        "value": 1,
        "propensity": 0.05,
        "treatments": {
            c: {"headline": "Stay safe online", "body": "Five tips."} for c in CHANNEL_IDS
        },
    }


def _action(
    rng: random.Random, i: int, group: str, rule_count: int, segments: list[str], rare: list[str]
) -> dict[str, Any]:
    purpose = "service" if rng.random() < 0.2 else "marketing"
    action: dict[str, Any] = {
        "id": f"a{i:04d}_{group.split('_', 1)[1]}",
        "name": f"Generated action {i}",
        "purpose": purpose,
        "group": group,
        "value": rng.choice((10, 40, 80, 120, 200, 400)),
        "propensity": round(rng.uniform(0.01, 0.2), 3),
    }
    if purpose == "marketing":
        action["one_time"] = rng.random() < 0.5
        action["offer"] = {"code": f"OFFER{i}", "name": f"Offer {i}", "terms": "Terms apply."}
    channels = [
        *rng.sample(INBOUND, rng.randint(1, 3)),
        *rng.sample(OUTBOUND[:4], rng.randint(1, 3)),
    ]
    action["treatments"] = {
        c: _treatment(c, i) for c in sorted(set(channels), key=CHANNEL_IDS.index)
    }
    stages: dict[str, list[dict[str, str]]] = {"eligible": [], "applicable": [], "suitable": []}
    picks = _template_order(rng, rule_count)
    for n, index in enumerate(picks):
        name, template = _ENGAGEMENT[index]
        when = template.format(**_engagement_params(rng, group, segments, rare))
        stage = ("eligible", "applicable", "suitable")[n % 3]
        stages[stage].append({"id": f"r{n}_{name}", "when": when, "reason": f"Fails {name}."})
    action.update({k: v for k, v in stages.items() if v})
    return action


def _template_order(rng: random.Random, count: int) -> list[int]:
    """Distinct templates first (an author rarely repeats a test), then repeats if needed."""
    order: list[int] = []
    while len(order) < count:
        order.extend(rng.sample(range(len(_ENGAGEMENT)), len(_ENGAGEMENT)))
    return order[:count]


def _treatment(channel: str, i: int) -> dict[str, str]:
    if channel in ("call_center", "branch"):
        return {"script": f"Mention generated offer {i} and what it costs."}
    if channel == "email":
        return {"subject": f"Offer {i} for you", "body": "A paragraph of copy about the offer."}
    if channel in ("sms", "push"):
        return {"body": f"Offer {i}: see the app. Reply STOP to opt out"}
    return {
        "headline": f"Offer {i}",
        "body": "Two sentences of copy about the offer and why it suits the customer.",
        "call_to_action": "Find out more",
        "url": f"/offers/{i}",
    }


_SUPPRESS = (
    "segment.{rare}",
    'lifecycle == "prospect"',
    'touchpoint.intent == "complaint"',
    "complaints(30d) > 0",
    'touchpoint.channel == "outbound" and impressions(7d) >= 8',
    'profile.vulnerable and touchpoint.channel in ["call_center", "branch"]',
    'lifecycle == "lapsed" and not segment.{segment}',
)
_WEIGHT = (
    'touchpoint.intent == "{intent}"',
    'lifecycle == "{stage}"',
    'touchpoint.placement == "{placement}"',
    "segment.{segment}",
    'touchpoint.channel == "{channel}"',
    'clicks(7d, group="{group}") >= 1',
    '"{interest}" in profile.interests',
)


def _global_rules(
    rng: random.Random,
    count: int,
    groups: list[str],
    action_ids: list[str],
    segments: list[dict[str, Any]],
    rare: list[str],
) -> list[dict[str, Any]]:
    segment_ids = [s["id"] for s in segments]
    rules = []
    for i in range(count):
        params = {
            "rare": rng.choice(rare or segment_ids),
            "segment": rng.choice(segment_ids),
            "intent": rng.choice(INTENTS),
            "stage": rng.choice(STAGES),
            "placement": rng.choice(PLACEMENTS),
            "channel": rng.choice(CHANNEL_IDS),
            "group": rng.choice(groups),
            "interest": rng.choice(INTERESTS),
        }
        targets = _targets(rng, groups, action_ids)
        if i % 3 == 0:
            when = _SUPPRESS[(i // 3) % len(_SUPPRESS)].format(**params)
            rule = {"id": f"rule_{i:03d}_suppress", "when": when, "suppress": targets}
            rule["reason"] = "Generated suppression."
        else:
            when = rng.choice(_WEIGHT).format(**params)
            factor = rng.choice((0.5, 0.8, 1.25, 1.5, 2.0, 3.0))
            rule = {
                "id": f"rule_{i:03d}_weight",
                "when": when,
                "weight": {**targets, "factor": factor},
            }
        rules.append(rule)
    return rules


def _targets(rng: random.Random, groups: list[str], action_ids: list[str]) -> dict[str, Any]:
    roll = rng.random()
    if roll < 0.6:
        return {"groups": rng.sample(groups, min(len(groups), rng.randint(1, 3)))}
    if roll < 0.85:
        return {"actions": rng.sample(action_ids[1:], min(len(action_ids) - 1, rng.randint(1, 4)))}
    return {"purposes": ["marketing"]}


# ---------------------------------------------------------------------------- requests


def timestamp(text: str) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromJsonString(text)
    return ts


def synthetic_interactions(
    rng: random.Random,
    action_channels: Mapping[str, Sequence[str]],
    count: int,
    as_of: timestamp_pb2.Timestamp,
) -> list[pb.Interaction]:
    """count interactions on real actions, mixed outcomes, within HISTORY_DAYS of as_of.

    Customers come back to a few actions (a favourite handful gets most of the history),
    so per-action counts such as dismissals(30d, action=this) do reach their thresholds.
    """
    ids = sorted(action_channels)
    favourites = rng.sample(ids, min(5, len(ids)))
    outcomes = list(OUTCOME_WEIGHTS)
    weights = list(OUTCOME_WEIGHTS.values())
    items = []
    for _ in range(count):
        action = rng.choice(favourites) if rng.random() < 0.7 else rng.choice(ids)
        at = timestamp_pb2.Timestamp()
        at.FromNanoseconds(as_of.ToNanoseconds() - rng.randrange(HISTORY_DAYS * 86400 * 10**9))
        items.append(
            pb.Interaction(
                action_id=action,
                channel=rng.choice(list(action_channels[action])),
                outcome=rng.choices(outcomes, weights)[0],
                at=at,
            )
        )
    return items


def customers(
    generated: Generated, count: int, interactions: int, seed: int = 11
) -> list[pb.DecideRequest]:
    """count DecideRequests for customers of the generated schema, explain off.

    History has its own random stream per customer, so the same seed gives the same
    customers (profile, stage, touchpoint) whatever the number of interactions: the
    interactions curve varies history alone.
    """
    rng = random.Random(seed)
    as_of = timestamp(AS_OF)
    requests = []
    for i in range(count):
        msg = pb.DecideRequest(
            customer_id=f"gen-{i:05d}",
            lifecycle_stage=rng.choices(STAGES, STAGE_WEIGHTS)[0],
            as_of=as_of,
        )
        msg.profile.update(_customer_profile(rng))
        _touchpoint(rng, msg)
        history = random.Random(seed * 1_000_003 + i)
        msg.interactions.extend(
            synthetic_interactions(history, generated.action_channels, interactions, as_of)
        )
        requests.append(msg)
    return requests


def _touchpoint(rng: random.Random, msg: pb.DecideRequest) -> None:
    if rng.random() < 0.3:  # outbound: the engine picks channels, consent matters
        msg.touchpoint.channel = "outbound"
        for channel in ("email", "push", "sms"):
            msg.consent[channel] = rng.random() < 0.6
        return
    msg.touchpoint.channel = rng.choice(INBOUND)
    msg.touchpoint.placement = rng.choice(PLACEMENTS)
    if rng.random() < 0.3:
        msg.touchpoint.intent = rng.choice(INTENTS)


def _customer_profile(rng: random.Random) -> dict[str, Any]:
    """Attribute values with plausible distributions; optional ones missing 10% of the time."""
    income = round(rng.lognormvariate(7.9, 0.5))  # median ~2,700 a month
    values: dict[str, Any] = {
        "monthly_income": income,
        "credit_score": min(850, max(300, round(rng.gauss(690, 60)))),
        "total_balance": round(rng.lognormvariate(8.5, 1.4)),
        "tenure_months": rng.randrange(0, 240),
        "digital_logins_30d": rng.randrange(0, 40),
        "num_children": rng.choice((0, 0, 0, 1, 2, 3)),
        "days_past_due": 0 if rng.random() < 0.9 else rng.randrange(1, 120),
        "card_utilisation_pct": min(200, round(rng.expovariate(1 / 35))),
        "has_mobile_app": rng.random() < 0.7,
        "home_owner": rng.random() < 0.55,
        "vulnerable": rng.random() < 0.05,
        "paperless": rng.random() < 0.6,
        "travels_abroad": rng.random() < 0.35,
        "region": rng.choice(REGIONS),
        "employment": rng.choices(EMPLOYMENT, (60, 15, 12, 8, 5))[0],
        "tier": rng.choices(TIERS, (40, 30, 20, 10))[0],
        "products": [p for p in PRODUCTS if rng.random() < (0.85 if p == "checking" else 0.2)],
        "interests": rng.sample(INTERESTS, rng.randint(0, 3)),
    }
    for i in range(MODEL_SCORES):
        values[f"model_score_{i}"] = rng.randrange(0, 101)
    kept = {k: v for k, v in values.items() if rng.random() < 0.9}
    kept["age"] = rng.randint(18, 90)  # the one required attribute
    return kept


# ---------------------------------------------------------------------------- check


@dataclass(frozen=True, slots=True)
class FiredShare:
    rules: int
    requests: int
    load_ms: float  # parse, check and resolve the YAML (load_documents)
    compile_ms: float  # Decider(): compile onto durable_rules, build per-load caches
    chunks: int  # durable_rules rulesets the rules were split into
    fired_detailed: float  # mean share of rules that hold per request (every rule separately)
    engaged_actions: float  # mean share of actions whose engagement rules all hold
    recommended: float  # mean recommendations per decision
    fallback: float  # share of decisions that fell back


def fired_share(generated: Generated, requests: Sequence[pb.DecideRequest]) -> FiredShare:
    """How much of the generated set is live for the generated customers (durable engine)."""
    from nba.pipeline.decider import Decider

    start = time.perf_counter()
    ruleset = generated.load()
    loaded = time.perf_counter()
    decider = Decider(ruleset, "durable")
    compiled = time.perf_counter()
    fired = engaged = recommended = fallback = 0
    for msg in requests:
        request = decider.validator.validate(msg)
        fired += len(decider.engine.fire(request, detailed=True))
        fast = decider.engine.fire(request, detailed=False)
        engaged += sum(1 for r in fast if r.kind == "engaged")
        response = decider.decide(msg)
        recommended += len(response.recommendations)
        fallback += any(r.fallback for r in response.recommendations)
    n = len(requests)
    conditional = max(1, len(ruleset.actions) - len(ruleset.unconditional))
    return FiredShare(
        rules=ruleset.rule_count,
        requests=n,
        load_ms=(loaded - start) * 1000,
        compile_ms=(compiled - loaded) * 1000,
        chunks=getattr(decider.engine, "chunk_count", 0),
        fired_detailed=fired / n / ruleset.rule_count,
        engaged_actions=engaged / n / conditional,
        recommended=recommended / n,
        fallback=fallback / n,
    )


SPECS = (Spec(10, 20), Spec(100, 100), Spec(100, 500), Spec(100, 2000), Spec(1000, 2000))


def run(quick: bool = False, interactions: int = 20) -> list[Target]:
    """Generate the benchmark's sets, check they load, and show how much of each fires."""
    count = 15 if quick else 50
    rows = []
    for spec in SPECS:
        generated = generate(spec)
        share = fired_share(generated, customers(generated, count, interactions))
        if share.rules != spec.rules:
            raise SystemExit(f"{spec.label}: generated {share.rules} rules, not {spec.rules}")
        rows.append(_share_row(generated, share))
    title = f"Generated rule sets ({count} customers, {interactions} interactions each)"
    show(table(_SHARE_HEADERS, rows, title))
    return []


_SHARE_HEADERS = [
    "generated set",
    "files",
    "load ms",
    "compile ms",
    "chunks",
    "rules fired",
    "actions engaged",
    "recs / decision",
    "fallbacks",
]


def _share_row(generated: Generated, share: FiredShare) -> list[object]:
    return [
        generated.spec.label,
        len(generated.documents),
        f"{share.load_ms:.0f}",
        f"{share.compile_ms:.0f}",
        share.chunks,
        f"{share.fired_detailed:.0%}",
        f"{share.engaged_actions:.0%}",
        f"{share.recommended:.1f}",
        f"{share.fallback:.0%}",
    ]


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--actions", type=int, default=100)
    parser.add_argument("--rules", type=int, default=500)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--customers", type=int, default=50)
    parser.add_argument("--interactions", type=int, default=20)
    parser.add_argument("--out", type=Path, help="write the rule files into this directory")
    parser.add_argument("--all", action="store_true", help="every set the benchmarks use")
    args = parser.parse_args(argv)
    if args.all:
        run(interactions=args.interactions)
        return
    generated = generate(Spec(args.actions, args.rules, args.seed))
    if args.out:
        generated.write(args.out)
        show(f"wrote {len(generated.documents)} files to {args.out}")
    share = fired_share(generated, customers(generated, args.customers, args.interactions))
    title = f"{args.customers} customers, {args.interactions} interactions each"
    show(table(_SHARE_HEADERS, [_share_row(generated, share)], title))


if __name__ == "__main__":
    main()
