"""Contact-policy and explanation defects, each pinned through the real pipeline.

Channel-limited cooldowns, caps on non-impression outcomes, the file:line of every
exclusion, outcomes stamped slightly ahead of the server clock, and a reason for every
recommendation. Rule sets are written inline; decisions go through `Decider.decide`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from google.protobuf import json_format

from nba.authoring.strategies import struct_of
from nba.errors import RuleSetError
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction, Outcome
from nba.ruleset.loader import load_ruleset
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from tests.helpers import BASE, action, write_rules

REPO = Path(__file__).resolve().parents[2]
AS_OF = 1_800_000_000  # 2027-01-15T08:00:00Z
HOUR, DAY = 3600, 86400
BASE_WITH_SMS = BASE + "  - id: sms\n    direction: outbound\n"
ALL_CHANNELS = ("web", "email", "call_center", "postal_mail", "sms")
ACTIONS = (
    "actions:\n"
    + action("gold", value=100, channels=ALL_CHANNELS)
    + action("basic", value=50, channels=ALL_CHANNELS)
    + action("loan", group="loans", value=40, channels=ALL_CHANNELS)
    + action("once", group="once", value=30, extra="one_time: true")
)


def decider_for(tmp_path: Path, policies: str, actions: str = ACTIONS, **kw: object) -> Decider:
    directory = write_rules(
        tmp_path, {"base.yaml": BASE_WITH_SMS, "actions.yaml": actions, "policies.yaml": policies}
    )
    return Decider(load_ruleset(directory, display_root="rules"), **kw)  # type: ignore[arg-type]


def request(channel: str = "web", as_of: int | None = AS_OF, **fields: object) -> pb.DecideRequest:
    msg = pb.DecideRequest(customer_id="c1", lifecycle_stage="active", explain=True, **fields)  # type: ignore[arg-type]
    msg.profile.CopyFrom(struct_of({"age": 30}))
    msg.touchpoint.channel = channel
    if as_of is not None:
        msg.as_of.FromSeconds(as_of)
    return msg


def happened(
    msg: pb.DecideRequest, action_id: str, outcome: int, ago: float, channel: str = "web"
) -> None:
    """An interaction `ago` seconds before AS_OF (negative: after it)."""
    item = msg.interactions.add(action_id=action_id, channel=channel, outcome=outcome)
    item.at.FromNanoseconds(int((AS_OF - ago) * 1e9))


def decide(
    decider: Decider, msg: pb.DecideRequest
) -> tuple[dict[str, str], dict[str, pb.Exclusion]]:
    response = decider.decide(msg)
    return (
        {r.action_id: r.channel for r in response.recommendations},
        {e.action_id: e for e in response.excluded},
    )


# ------------------------------------------------------------- 1. channel cooldowns

WEB_REST = """
arbitration:
  max_results: 5
policies:
  cooldowns:
    - id: web_rest
      outcome: impression
      count: 3
      within: 7d
      pause: 7d
      channel: web
      reason: Three views on the web in a week; rest it there.
"""


@pytest.fixture(scope="module")
def web_rest(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    return decider_for(tmp_path_factory.mktemp("web_rest"), WEB_REST)


def test_a_channel_cooldown_rests_the_action_on_that_channel_only(web_rest: Decider) -> None:
    msg = request("web")
    for days in (1, 2, 3):
        happened(msg, "gold", pb.IMPRESSION, days * DAY, channel="web")
    offered, excluded = decide(web_rest, msg)
    assert "gold" not in offered and "basic" in offered
    assert excluded["gold"].rule == "cooldowns.web_rest"
    assert excluded["gold"].channel == "web"
    assert "on web" in excluded["gold"].reason
    assert "resting on web until 2027-01-21" in excluded["gold"].reason
    assert (excluded["gold"].file, excluded["gold"].line) == ("rules/policies.yaml", 5)
    msg.touchpoint.channel = "call_center"  # the same history: free on another channel
    assert "gold" in decide(web_rest, msg)[0]


def test_a_channel_cooldown_counts_only_that_channel(web_rest: Decider) -> None:
    msg = request("web")
    for days, channel in ((1, "email"), (2, "web"), (3, "email")):
        happened(msg, "gold", pb.IMPRESSION, days * DAY, channel=channel)
    assert "gold" in decide(web_rest, msg)[0]  # one web impression, not three


REST_BY_MAIL = """
policies:
  cooldowns:
    - id: mail_rest
      outcome: dismiss
      within: 30d
      pause: 30d
      channels: [email, postal_mail]
"""


def test_an_outbound_decision_moves_past_the_resting_channels(tmp_path: Path) -> None:
    decider = decider_for(tmp_path, REST_BY_MAIL)
    msg = request("outbound")
    msg.consent["email"] = True
    msg.preferred_channels.extend(["email", "postal_mail", "call_center"])
    assert decide(decider, msg)[0]["gold"] == "email"
    happened(msg, "gold", pb.DISMISS, 2 * DAY, channel="postal_mail")
    offered, _ = decide(decider, msg)
    assert offered["gold"] == "call_center"  # email and postal mail both rest
    assert offered["basic"] == "email"  # another action: not resting anywhere
    inbound = request("call_center")
    happened(inbound, "gold", pb.DISMISS, 2 * DAY, channel="postal_mail")
    assert "gold" in decide(decider, inbound)[0]


def test_a_cooldown_names_channel_or_channels_not_both(tmp_path: Path) -> None:
    both = REST_BY_MAIL.replace(
        "channels: [email, postal_mail]", "channel: web\n      channels: [emial]"
    )
    with pytest.raises(RuleSetError) as caught:
        decider_for(tmp_path, both)
    found = [str(e) for e in caught.value.errors]
    assert any("`channel` or `channels`" in e for e in found), found
    typo = REST_BY_MAIL.replace("postal_mail]", "postal_mial]")
    with pytest.raises(RuleSetError) as caught:
        decider_for(tmp_path, typo)
    assert "did you mean 'postal_mail'?" in str(caught.value.errors[0])


# ------------------------------------------------------------- 2. caps on other outcomes

REJECT_CAP = """
arbitration:
  max_results: 5
policies:
  caps:
    - id: rejections_monthly
      max: 2
      within: 30d
      outcomes: [reject]
"""


def test_a_cap_on_rejections_does_not_count_this_decisions_picks(tmp_path: Path) -> None:
    decider = decider_for(tmp_path, REJECT_CAP)
    offered, excluded = decide(decider, request("web"))
    assert {"gold", "basic", "loan", "once"} <= set(offered)
    msg = request("web")
    happened(msg, "loan", pb.REJECT, DAY)
    happened(msg, "basic", pb.REJECT, 2 * DAY)
    offered, excluded = decide(decider, msg)
    assert not offered
    assert excluded["gold"].reason == (
        "Contact cap rejections_monthly: 2 rejects in the last 30d, cap 2"
    )


# ------------------------------------------------------------- 3. every exclusion located

EVERY_POLICY = """
arbitration:
  max_results: 2
  max_per_group: 1
policies:
  consent:
    stored: true
  caps:
    - id: sms_weekly
      max: 1
      within: 7d
      channel: sms
    - id: mail_weekly
      max: 1
      within: 7d
      channel: postal_mail
    - id: offer_daily
      max: 2
      within: 1d
      each: action
  cooldowns:
    - id: dismissed
      outcome: dismiss
      within: 30d
      pause: 30d
    - id: web_rest
      outcome: impression
      count: 2
      within: 7d
      pause: 7d
      channel: web
  complaint_pause:
    pause: 30d
  quiet_hours:
    - id: night
      channels: [sms, call_center]
      start: "21:00"
      end: "08:00"
"""


def every_policy_requests() -> Iterator[pb.DecideRequest]:
    """Requests that trip each policy, one way and several channels at once."""
    yield request("email")  # consent: email needs an opt-in
    yield request("sms", time_zone="America/New_York")  # quiet hours (03:00)
    outbound = request("outbound", time_zone="America/New_York")  # every channel blocked
    outbound.consent["postal_mail"] = False
    yield outbound
    capped = request("outbound", time_zone="Europe/London")  # 08:00: caps on two channels
    capped.preferred_channels.extend(["sms", "postal_mail"])
    happened(capped, "loan", pb.IMPRESSION, HOUR, channel="sms")
    happened(capped, "loan", pb.IMPRESSION, 2 * HOUR, channel="postal_mail")
    yield capped
    history = request("web")
    for what, ago in ((pb.DISMISS, DAY), (pb.ACCEPT, DAY), (pb.IMPRESSION, HOUR)):
        happened(history, "gold", what, ago)
        happened(history, "once", what, ago)
    happened(history, "basic", pb.IMPRESSION, 2 * HOUR)
    happened(history, "basic", pb.IMPRESSION, 3 * HOUR)
    yield history
    complained = request("web")
    happened(complained, "loan", pb.COMPLAINT, DAY)
    yield complained


def unlocated(response: pb.DecideResponse) -> list[str]:
    return [f"{e.action_id}: {e.rule}" for e in response.excluded if not e.file or e.line <= 0]


def test_every_policy_exclusion_names_its_file_and_line(tmp_path: Path) -> None:
    decider = decider_for(tmp_path, EVERY_POLICY)
    rules_seen: set[str] = set()
    reasons = ""
    for msg in every_policy_requests():
        response = decider.decide(msg)
        rules_seen |= {e.rule.split(".")[0] for e in response.excluded}
        reasons += "\n".join(e.reason for e in response.excluded)
        assert unlocated(response) == [], msg
    assert {"consent", "quiet_hours", "caps", "cooldowns", "one_time"} <= rules_seen
    assert {"complaint_pause", "arbitration"} <= rules_seen
    assert "No usable channel." in reasons and "No channel under its caps." in reasons


def test_consent_and_quiet_hours_point_at_their_declarations(tmp_path: Path) -> None:
    decider = decider_for(tmp_path, EVERY_POLICY)
    consent = {e.action_id: e for e in decider.decide(request("email")).excluded}["gold"]
    assert (consent.rule, consent.file, consent.line) == ("consent", "rules/base.yaml", 14)
    quiet = decider.decide(request("sms", time_zone="America/New_York"))
    night = {e.action_id: e for e in quiet.excluded}["gold"]
    assert (night.rule, night.file, night.line) == ("quiet_hours.night", "rules/policies.yaml", 34)


def test_every_exclusion_over_the_bundled_rules_is_located() -> None:
    decider = Decider(load_ruleset(REPO / "rules", display_root="rules"))
    examples = sorted((REPO / "rules" / "examples").glob("*.json"))
    assert examples
    for path in examples:
        msg = json_format.Parse(path.read_text(encoding="utf-8"), pb.DecideRequest())
        msg.explain = True
        assert unlocated(decider.decide(msg)) == [], path.name


# ------------------------------------------------------------- 4. clock skew

ONE_TIME_AND_CAP = """
arbitration:
  max_results: 5
policies:
  caps:
    - id: once_a_day
      max: 1
      within: 1d
      each: action
"""


@pytest.fixture(params=["durable", "reference"])
def engine(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def test_an_accept_stamped_seconds_ahead_ends_a_one_time_offer(tmp_path: Path, engine: str) -> None:
    store = open_store("memory://", retention_seconds=400 * DAY, clock=lambda: AS_OF)
    decider = decider_for(
        tmp_path, ONE_TIME_AND_CAP, engine=engine, store=store, clock=lambda: AS_OF
    )
    assert "once" in decide(decider, request("web", as_of=None))[0]
    store.record("c1", Interaction("once", "web", Outcome.ACCEPT, AS_OF + 5))
    offered, excluded = decide(decider, request("web", as_of=None))
    assert "once" not in offered
    assert excluded["once"].rule == "one_time"


def test_an_impression_seconds_ahead_counts_now_without_a_store(
    tmp_path: Path, engine: str
) -> None:
    decider = decider_for(tmp_path, ONE_TIME_AND_CAP, engine=engine)
    msg = request("web")
    happened(msg, "gold", pb.IMPRESSION, -5)
    offered, excluded = decide(decider, msg)
    assert "gold" not in offered
    assert excluded["gold"].reason.startswith("Contact cap once_a_day: 1 impressions of gold")


def test_history_counts_in_rules_see_an_outcome_seconds_ahead(tmp_path: Path, engine: str) -> None:
    actions = "actions:\n" + action("gold", extra="eligible: impressions(1d, action=this) == 0")
    decider = decider_for(tmp_path, "policies: {}\n", actions, engine=engine)
    msg = request("web")
    happened(msg, "gold", pb.IMPRESSION, -30)
    assert "gold" not in decide(decider, msg)[0]
    msg.ClearField("interactions")
    happened(msg, "gold", pb.IMPRESSION, -2 * HOUR)  # beyond the skew: still the future
    assert "gold" in decide(decider, msg)[0]


def test_beyond_the_clock_skew_an_outcome_is_still_the_future(tmp_path: Path) -> None:
    store = open_store("memory://", retention_seconds=400 * DAY, clock=lambda: AS_OF)
    decider = decider_for(tmp_path, ONE_TIME_AND_CAP, store=store, clock=lambda: AS_OF)
    store.record("c1", Interaction("once", "web", Outcome.ACCEPT, AS_OF + HOUR))
    assert "once" in decide(decider, request("web", as_of=None))[0]
    msg = request("web")
    happened(msg, "once", pb.ACCEPT, -HOUR)  # the same through the request, store-less
    assert "once" in decide(decider_for(tmp_path, ONE_TIME_AND_CAP), msg)[0]


def test_the_clock_skew_is_configurable(tmp_path: Path) -> None:
    strict = ONE_TIME_AND_CAP + "  clock_skew: 0m\n"
    msg = request("web")
    happened(msg, "gold", pb.IMPRESSION, -5)
    happened(msg, "once", pb.ACCEPT, -5)
    offered = decide(decider_for(tmp_path, strict), msg)[0]
    assert {"gold", "once"} <= set(offered)
    wide = ONE_TIME_AND_CAP + "  clock_skew: 2h\n"
    msg.ClearField("interactions")
    happened(msg, "gold", pb.IMPRESSION, -HOUR)
    assert "gold" not in decide(decider_for(tmp_path, wide), msg)[0]
    with pytest.raises(RuleSetError) as caught:
        decider_for(tmp_path, ONE_TIME_AND_CAP + "  clock_skew: 30s\n")
    assert str(caught.value.errors[0]).startswith(
        "rules/policies.yaml:9:15: error[schema]: policies.clock_skew: '30s' is not a duration"
    )


# ------------------------------------------------------------- 5. a reason for everything


def test_an_unconditional_action_is_recommended_with_a_reason(tmp_path: Path) -> None:
    decider = decider_for(tmp_path, "policies: {}\n")
    response = decider.decide(request("web"))
    gold = {r.action_id: r for r in response.recommendations}["gold"]
    assert len(gold.reasons) == 1
    reason = gold.reasons[0]
    assert (reason.rule_id, reason.kind) == ("gold", "unconditional")
    assert (reason.file, reason.line) == ("rules/actions.yaml", 2)
    assert "everyone" in reason.description


def test_every_recommendation_over_the_bundled_rules_has_a_reason() -> None:
    decider = Decider(load_ruleset(REPO / "rules", display_root="rules"))
    for path in sorted((REPO / "rules" / "examples").glob("*.json")):
        msg = json_format.Parse(path.read_text(encoding="utf-8"), pb.DecideRequest())
        response = decider.decide(msg)
        assert all(r.reasons for r in response.recommendations), path.name
