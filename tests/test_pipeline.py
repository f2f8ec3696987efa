"""The decision pipeline on a small rule set whose every score is known."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.authoring.strategies import struct_of
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction
from nba.ruleset.loader import load_ruleset
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from tests.helpers import BASE, action, write_rules

ACTIONS = (
    "actions:\n"
    + action("card_gold", value=100, propensity=0.1, extra="eligible: profile.age >= 18")  # 10
    + action("card_basic", value=20, propensity=0.2)  # 4
    + action(
        "loan",
        group="loans",
        value=50,
        propensity=0.1,
        extra="""
        applicable:
          - id: not_dismissed
            when: dismissals(30d, action=this) < 2
            reason: Dismissed twice this month
        """,
    )  # 5
    + action(
        "tips",
        purpose="service",
        group="service",
        value=1,
        propensity=0.5,
        channels=("web", "call_center", "email"),
    )  # 0.5
    + action("brochure", group="mail", value=40, propensity=0.1, channels=("postal_mail",))  # 4
)
RULES = """
rules:
  - id: young_no_loans
    when: profile.age < 21
    suppress: {groups: [loans]}
    reason: No credit under 21
  - id: cancel_boost
    when: touchpoint.intent == "cancel"
    weight: {purposes: [service], factor: 100}
levers:
  - id: push_basic
    actions: [card_basic]
    factor: 1.5
arbitration:
  max_results: 3
  max_per_group: 1
fallbacks:
  - channel: web
    action: tips
  - action: brochure
"""


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    directory = write_rules(
        tmp_path_factory.mktemp("rules"),
        {"base.yaml": BASE, "actions.yaml": ACTIONS, "rules.yaml": RULES},
    )
    return Decider(load_ruleset(directory, display_root="rules"))


def request(channel: str = "web", age: int = 30, **fields: object) -> pb.DecideRequest:
    msg = pb.DecideRequest(customer_id="c1", lifecycle_stage="active", **fields)  # type: ignore[arg-type]
    msg.profile.CopyFrom(struct_of({"age": age}))
    msg.touchpoint.channel = channel
    msg.as_of.FromSeconds(1_800_000_000)
    return msg


def ranked(response: pb.DecideResponse) -> list[tuple[str, str, float]]:
    return [(r.action_id, r.channel, round(r.score, 6)) for r in response.recommendations]


def test_scores_rank_and_diversity(decider: Decider) -> None:
    response = decider.decide(request())
    # card_gold 10, card_basic 4*1.5=6 (same group: dropped), loan 5, tips 0.5
    assert ranked(response) == [
        ("card_gold", "web", 10.0),
        ("loan", "web", 5.0),
        ("tips", "web", 0.5),
    ]
    assert [r.rank for r in response.recommendations] == [1, 2, 3]
    first = response.recommendations[0]
    assert (first.components.propensity, first.components.value) == (0.1, 100.0)
    assert first.treatment.headline == "card_gold on web"
    assert [(x.rule_id, x.file, x.line) for x in first.reasons] == [
        ("card_gold.eligible", "rules/actions.yaml", 12)
    ]


def test_levers_and_weights_show_in_components_and_reasons(decider: Decider) -> None:
    response = decider.decide(request(age=10))
    by_id = {r.action_id: r for r in response.recommendations}
    assert "card_gold" not in by_id and "loan" not in by_id  # under 18 / suppressed under 21
    basic = by_id["card_basic"]
    assert basic.components.lever == 1.5 and basic.score == pytest.approx(6.0)
    assert [x.kind for x in basic.reasons] == ["unconditional", "lever"]  # no engagement rules
    msg = request()
    msg.touchpoint.intent = "cancel"
    top = decider.decide(msg).recommendations[0]
    assert top.action_id == "tips" and top.components.context_weight == 100
    assert any(x.rule_id == "cancel_boost" and x.kind == "weight" for x in top.reasons)


def test_max_results_is_honoured(decider: Decider) -> None:
    assert len(decider.decide(request(max_results=1)).recommendations) == 1
    assert len(decider.decide(request(max_results=2)).recommendations) == 2
    # 3 groups have an action on web (brochure is postal only): 10 asks for more than exist
    assert len(decider.decide(request(max_results=10)).recommendations) == 3


def test_explain_lists_every_exclusion_with_a_readable_reason(decider: Decider) -> None:
    msg = request(age=19, explain=True)
    for _ in range(2):
        item = msg.interactions.add(action_id="loan", channel="web", outcome=pb.DISMISS)
        item.at.FromSeconds(1_800_000_000 - 86400 * (1 + len(msg.interactions)))
    excluded = {e.action_id: e for e in decider.decide(msg).excluded}
    assert excluded["loan"].rule == "loan.applicable.not_dismissed"
    assert excluded["loan"].reason == "Not applicable now: Dismissed twice this month"
    assert (excluded["loan"].file, excluded["loan"].line) == ("rules/actions.yaml", 35)
    assert excluded["card_basic"].stage == "arbitration"
    assert "card_gold" in excluded["card_basic"].reason
    assert excluded["brochure"].stage == "channel"
    msg.ClearField("interactions")
    excluded = {e.action_id: e for e in decider.decide(msg).excluded}
    assert excluded["loan"].rule == "young_no_loans"
    assert excluded["loan"].reason == "Suppressed: No credit under 21"


def test_no_marketing_where_consent_is_false(decider: Decider) -> None:
    msg = request()
    msg.consent["web"] = False
    response = decider.decide(msg)
    assert [r.action_id for r in response.recommendations] == ["tips"]  # service only
    msg.explain = True
    reasons = {e.action_id: e.reason for e in decider.decide(msg).excluded}
    assert reasons["card_gold"] == "The customer opted out of marketing on web"


def test_outbound_picks_consented_channels_in_preference_order(decider: Decider) -> None:
    msg = request(channel="outbound", max_results=10)
    msg.ClearField("explain")

    def channels() -> dict[str, str]:
        return {r.action_id: r.channel for r in decider.decide(msg).recommendations}

    # no email opt-in: the first outbound channel in the rule set's order that allows it
    assert channels() == {
        "card_gold": "call_center",
        "loan": "call_center",
        "brochure": "postal_mail",
        "tips": "call_center",
    }
    msg.consent["email"] = True
    msg.preferred_channels.extend(["postal_mail", "email"])
    assert channels() == {
        "card_gold": "postal_mail",
        "loan": "postal_mail",
        "brochure": "postal_mail",
        "tips": "email",  # no postal treatment: the next preference
    }
    msg.consent.update({"email": False, "call_center": False, "postal_mail": False})
    assert channels() == {"tips": "email"}  # service messages ignore marketing opt-outs


def test_fallback_is_marked_and_respects_consent(tmp_path: Path) -> None:
    directory = write_rules(
        tmp_path,
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n"
            + action("promo", extra="eligible: profile.age > 200")
            + action("info", purpose="service", group="info", channels=("web",)),
            "fallbacks.yaml": "fallbacks:\n  - channel: web\n    action: info\n  - action: promo\n",
        },
    )
    decider = Decider(load_ruleset(directory))
    msg = request()
    msg.profile["age"] = 30
    decider_info_gone = decider.decide(msg)
    assert [(r.action_id, r.fallback) for r in decider_info_gone.recommendations] == [
        ("info", False)
    ]
    msg.touchpoint.channel = "call_center"
    response = decider.decide(msg)
    assert [(r.action_id, r.fallback, r.score) for r in response.recommendations] == [
        ("promo", True, 0.0)
    ]
    assert response.recommendations[0].reasons[0].kind == "fallback"
    msg.consent["call_center"] = False
    assert list(decider.decide(msg).recommendations) == []


def test_same_request_same_ranking_even_with_ties(tmp_path: Path) -> None:
    directory = write_rules(
        tmp_path,
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n"
            + "".join(action(f"a{i}", group=f"g{i}", value=10, propensity=0.1) for i in (3, 1, 2)),
        },
    )
    decider = Decider(load_ruleset(directory))
    orders = {
        tuple(r.action_id for r in decider.decide(request()).recommendations) for _ in range(5)
    }
    assert orders == {("a1", "a2", "a3")}


def test_stored_history_merges_without_double_counting(decider: Decider) -> None:
    store = open_store("memory://", retention_seconds=90 * 86400, clock=lambda: 1_800_000_000)
    with_store = Decider(decider.ruleset, decider.engine, store)
    at = 1_800_000_000 - 86400
    store.record("c1", Interaction("loan", "web", pb.DISMISS, at))
    msg = request(explain=True)
    item = msg.interactions.add(action_id="loan", channel="web", outcome=pb.DISMISS)
    item.at.FromSeconds(at)  # the same interaction, also sent by the client
    assert "loan" in [r.action_id for r in with_store.decide(msg).recommendations]
    store.record("c1", Interaction("loan", "email", pb.DISMISS, at - 60))
    excluded = {e.action_id: e.rule for e in with_store.decide(msg).excluded}
    assert excluded["loan"] == "loan.applicable.not_dismissed"
    store.close()


def test_a_suppressed_fallback_is_not_returned(tmp_path: Path) -> None:
    """A suppression always wins, even over the fallback."""
    directory = write_rules(
        tmp_path,
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n"
            + action("promo", extra="eligible: profile.age > 200")
            + action("info", purpose="service", group="info", extra="eligible: profile.age > 200"),
            "rules.yaml": "rules:\n  - id: quiet\n    when: profile.vip\n"
            "    suppress: {actions: [promo]}\n"
            "fallbacks:\n  - action: promo\n  - action: info\n",
        },
    )
    decider = Decider(load_ruleset(directory))
    msg = request(explain=True)
    assert [(r.action_id, r.fallback) for r in decider.decide(msg).recommendations] == [
        ("promo", True)
    ]
    msg.profile["vip"] = True
    response = decider.decide(msg)
    assert [(r.action_id, r.fallback) for r in response.recommendations] == [("info", True)]
    assert {e.action_id for e in response.excluded} == {"promo"}


def test_an_unreachable_store_withholds_marketing_but_still_answers(decider: Decider) -> None:
    """Fail closed: without stored opt-outs and history, consent and caps are unknown."""
    dead = open_store("redis://127.0.0.1:1/0", retention_seconds=86400)  # nothing listens
    try:
        degraded = Decider(decider.ruleset, decider.engine, dead)
        response = degraded.decide(request(explain=True))
    finally:
        dead.close()
    assert response.degraded
    assert [r.action_id for r in response.recommendations] == ["tips"]  # service only
    excluded = {e.action_id: e.rule for e in response.excluded}
    assert excluded["card_gold"] == "store_unavailable"
    assert not decider.decide(request()).degraded
