"""Contact policies: caps, cooldowns, complaint pause, one-time offers, quiet hours."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.authoring.strategies import struct_of
from nba.errors import RuleSetError
from nba.pipeline.decider import Decider, history_horizon
from nba.ruleset.loader import load_ruleset
from nba.v1 import decisioning_pb2 as pb
from tests.helpers import BASE, action, write_rules

AS_OF = 1_800_000_000  # 2027-01-15T08:00:00Z, a Friday
DAY = 86400
BASE_WITH_SMS = BASE + "  - id: sms\n    direction: outbound\n"
ACTIONS = (
    "actions:\n"
    + action("gold", value=100, propensity=0.1, channels=("web", "email", "sms", "postal_mail"))
    + action("basic", value=50, propensity=0.1, channels=("web", "email", "sms", "postal_mail"))
    + action("loan", group="loans", value=40, propensity=0.1, channels=("web", "email", "sms"))
    + action("once", group="once", value=30, propensity=0.1, extra="one_time: true")
    + action("tips", purpose="service", group="service", value=1, propensity=0.1)
)
POLICIES = """
arbitration:
  max_results: 5
policies:
  caps:
    - id: email_weekly
      max: 2
      within: 7d
      channel: email
      purpose: marketing
    - id: offer_daily
      max: 3
      within: 1d
      each: action
      reason: The same offer at most three times a day.
    - id: cards_weekly
      max: 4
      within: 7d
      each: group
      groups: [cards]
  cooldowns:
    - id: dismissed_twice
      outcome: dismiss
      count: 2
      within: 30d
      pause: 60d
  complaint_pause:
    pause: 30d
  quiet_hours:
    - id: night
      channels: [sms]
      start: "21:00"
      end: "08:00"
"""


@pytest.fixture(scope="module")
def decider(tmp_path_factory: pytest.TempPathFactory) -> Decider:
    directory = write_rules(
        tmp_path_factory.mktemp("rules"),
        {"base.yaml": BASE_WITH_SMS, "actions.yaml": ACTIONS, "policies.yaml": POLICIES},
    )
    return Decider(load_ruleset(directory, display_root="rules"))


def request(channel: str = "web", **fields: object) -> pb.DecideRequest:
    msg = pb.DecideRequest(customer_id="c1", lifecycle_stage="active", explain=True, **fields)  # type: ignore[arg-type]
    msg.profile.CopyFrom(struct_of({"age": 30}))
    msg.touchpoint.channel = channel
    msg.as_of.FromSeconds(AS_OF)
    return msg


def happened(
    msg: pb.DecideRequest, action_id: str, outcome: int, days_ago: float, channel: str = "web"
) -> None:
    item = msg.interactions.add(action_id=action_id, channel=channel, outcome=outcome)
    item.at.FromSeconds(int(AS_OF - days_ago * DAY))


def decide(
    decider: Decider, msg: pb.DecideRequest
) -> tuple[dict[str, str], dict[str, pb.Exclusion]]:
    response = decider.decide(msg)
    return (
        {r.action_id: r.channel for r in response.recommendations},
        {e.action_id: e for e in response.excluded},
    )


def test_per_action_cap_with_counts_in_the_reason(decider: Decider) -> None:
    msg = request()
    for hours in (1, 2, 3):
        happened(msg, "gold", pb.IMPRESSION, hours / 24)
    offered, excluded = decide(decider, msg)
    assert "gold" not in offered and "basic" in offered
    assert excluded["gold"].rule == "caps.offer_daily"
    assert excluded["gold"].reason == (
        "Contact cap offer_daily: 3 impressions of gold in the last 1d, cap 3."
        " The same offer at most three times a day."
    )
    assert (excluded["gold"].file, excluded["gold"].line) == ("rules/policies.yaml", 10)


def test_old_interactions_fall_out_of_the_window(decider: Decider) -> None:
    msg = request()
    for days in (1.5, 2, 3):
        happened(msg, "gold", pb.IMPRESSION, days)
    assert "gold" in decide(decider, msg)[0]


def test_a_decisions_own_picks_count_against_caps(decider: Decider) -> None:
    """cards_weekly allows 4; 3 already seen: only one card action may be recommended now."""
    msg = request()
    for days in (1, 2, 3):
        happened(msg, "loan", pb.IMPRESSION, days)  # another group: does not count
        happened(msg, "basic", pb.IMPRESSION, days + 0.5)
    offered, excluded = decide(decider, msg)
    assert "gold" in offered and "basic" not in offered
    assert excluded["basic"].rule == "caps.cards_weekly"
    assert "3 impressions of cards in the last 7d" in excluded["basic"].reason
    assert "(+1 in this decision)" in excluded["basic"].reason


def test_outbound_moves_to_the_next_channel_when_one_is_capped(decider: Decider) -> None:
    msg = request(channel="outbound")
    msg.consent["email"] = True
    msg.preferred_channels.append("email")
    assert decide(decider, msg)[0]["gold"] == "email"
    happened(msg, "loan", pb.IMPRESSION, 1, channel="email")
    happened(msg, "tips", pb.IMPRESSION, 2, channel="email")  # service: the cap ignores it
    offered = decide(decider, msg)[0]
    assert offered["gold"] == "email"  # 1 marketing email this week, cap 2: one more fits
    assert offered["basic"] != "email"  # ...and gold took it
    happened(msg, "loan", pb.IMPRESSION, 3, channel="email")
    offered = decide(decider, msg)[0]
    assert "email" not in {offered["gold"], offered["basic"], offered["loan"]}
    assert offered["tips"] == "email"  # service is not capped


def test_cooldown_after_two_dismissals(decider: Decider) -> None:
    msg = request()
    happened(msg, "gold", pb.DISMISS, 20)
    assert "gold" in decide(decider, msg)[0]
    happened(msg, "gold", pb.DISMISS, 10)
    offered, excluded = decide(decider, msg)
    assert "gold" not in offered
    assert excluded["gold"].rule == "cooldowns.dismissed_twice"
    assert "2 dismiss(s) of gold within 30d" in excluded["gold"].reason
    assert "paused until 2027-03-06" in excluded["gold"].reason


def test_cooldown_ends_and_needs_the_dismissals_close_together(decider: Decider) -> None:
    msg = request()
    happened(msg, "gold", pb.DISMISS, 75)
    happened(msg, "gold", pb.DISMISS, 65)  # paused for 60 days from 65 days ago: over
    assert "gold" in decide(decider, msg)[0]
    msg.ClearField("interactions")
    happened(msg, "gold", pb.DISMISS, 50)
    happened(msg, "gold", pb.DISMISS, 10)  # 40 days apart: never 2 within 30 days
    assert "gold" in decide(decider, msg)[0]


def test_complaint_pauses_marketing_not_service(decider: Decider) -> None:
    msg = request()
    happened(msg, "tips", pb.COMPLAINT, 5)
    offered, excluded = decide(decider, msg)
    assert set(offered) == {"tips"}
    assert excluded["gold"].rule == "complaint_pause"
    assert excluded["gold"].reason == "Complaint on 2027-01-10: marketing paused until 2027-02-09"
    msg.ClearField("interactions")
    happened(msg, "tips", pb.COMPLAINT, 31)
    assert "gold" in decide(decider, msg)[0]


def test_one_time_offer_stops_after_accept(decider: Decider) -> None:
    msg = request()
    happened(msg, "once", pb.ACCEPT, 200)
    offered, excluded = decide(decider, msg)
    assert "once" not in offered
    assert excluded["once"].rule == "one_time"
    happened(msg, "gold", pb.ACCEPT, 1)  # not one-time: may be offered again
    assert "gold" in decide(decider, msg)[0]


def test_quiet_hours_in_the_customers_time_zone(decider: Decider) -> None:
    msg = request(channel="outbound", time_zone="Europe/London")  # 08:00 in London
    msg.preferred_channels.append("sms")
    assert decide(decider, msg)[0]["gold"] == "sms"
    msg.time_zone = "America/New_York"  # 03:00 in New York
    offered, excluded = decide(decider, msg)
    assert offered["gold"] != "sms"
    inbound_sms = request(channel="sms", time_zone="America/New_York")
    offered, excluded = decide(decider, inbound_sms)
    assert not offered.get("gold")
    assert excluded["gold"].rule == "quiet_hours.night"
    assert "it is 03:00" in excluded["gold"].reason


def test_horizon_covers_the_longest_policy(decider: Decider) -> None:
    # one-time offers are remembered for the unbounded horizon (400 days)
    assert history_horizon(decider.ruleset) == 400 * DAY


def test_policy_references_are_checked(tmp_path: Path) -> None:
    bad = POLICIES.replace("channel: email", "channel: emial").replace("[cards]", "[crads]")
    directory = write_rules(
        tmp_path, {"base.yaml": BASE_WITH_SMS, "actions.yaml": ACTIONS, "policies.yaml": bad}
    )
    with pytest.raises(RuleSetError) as caught:
        load_ruleset(directory, display_root="rules")
    found = [str(e) for e in caught.value.errors]
    assert found[0].startswith("rules/policies.yaml:8:16: error[unknown-channel]")
    assert "did you mean 'email'?" in found[0]
    assert "did you mean 'cards'?" in found[1]
