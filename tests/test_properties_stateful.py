"""Sequences of Decide and RecordOutcome against a store, on the bundled rule set.

The machine keeps its own list of what it recorded and checks every decision against
it with an independent count (not the engine's): no frequency cap is ever exceeded by
what Decide recommends, counting the decision's own recommendations as delivered.
"""

from __future__ import annotations

from collections import Counter

from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from nba.authoring.strategies import AS_OF_SECONDS, profiles, struct_of
from nba.pipeline.decider import Decider, history_horizon
from nba.pipeline.types import Interaction
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import Cap
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES

BANK = load_ruleset(RULES)
ENGINE = Decider(BANK).engine  # compiled once, shared by every machine run
CHANNELS = list(BANK.channels)
OUTCOMES = [pb.IMPRESSION, pb.CLICK, pb.ACCEPT, pb.DISMISS, pb.REJECT, pb.COMPLAINT]
# Impressions are what caps count: make them common, so caps actually fill up.
LIKELY_OUTCOMES = st.sampled_from([pb.IMPRESSION] * 6 + OUTCOMES)


def cap_key(cap: Cap, action_id: str) -> str | None:
    action = BANK.actions.get(action_id)
    if cap.each == "action":
        return action_id
    if cap.each == "group":
        return action.group if action else None
    return ""


def counted(cap: Cap, item: Interaction, as_of: float) -> bool:
    action = BANK.actions.get(item.action_id)
    return (
        item.outcome in cap.outcomes
        and as_of - cap.within_seconds <= item.at <= as_of
        and (cap.channel is None or item.channel == cap.channel)
        and (cap.purpose is None or (action is not None and action.purpose == cap.purpose))
        and (not cap.groups or (action is not None and action.group in cap.groups))
    )


class DecideAndRecord(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = float(AS_OF_SECONDS)
        self.store = open_store(
            "memory://", retention_seconds=history_horizon(BANK), clock=lambda: self.now
        )
        self.decider = Decider(BANK, ENGINE, self.store)
        self.recorded: list[Interaction] = []
        self.last: pb.DecideResponse | None = None
        self.message = pb.DecideRequest(customer_id="c-machine", explain=True)

    @initialize(profile=profiles(BANK), stage=st.sampled_from(BANK.stages))
    def customer(self, profile: dict[str, object], stage: str) -> None:
        self.message.profile.CopyFrom(struct_of(profile))
        self.message.lifecycle_stage = stage

    def decide(self, channel: str, consent: dict[str, bool]) -> pb.DecideResponse:
        self.message.touchpoint.channel = channel
        self.message.consent.clear()
        self.message.consent.update(consent)
        self.message.as_of.FromNanoseconds(int(self.now * 1e9))
        response = self.decider.decide(self.message)
        self.check_caps(response)
        event(f"decision with {min(len(response.recommendations), 1)}+ recommendations")
        if any(e.rule.startswith("caps.") for e in response.excluded):
            event("a cap excluded an action")
        if any(e.rule.startswith("cooldowns.") for e in response.excluded):
            event("a cooldown excluded an action")
        return response

    def check_caps(self, response: pb.DecideResponse) -> None:
        """Recorded history + this decision's recommendations never exceed a cap."""
        for cap in BANK.policies.caps:
            load: Counter[str] = Counter()
            for item in self.recorded:
                if (
                    counted(cap, item, self.now)
                    and (key := cap_key(cap, item.action_id)) is not None
                ):
                    load[key] += 1
            for rec in response.recommendations:
                action = BANK.actions[rec.action_id]
                if cap.applies(action, rec.channel) and 1 in cap.outcomes:
                    key = cap_key(cap, rec.action_id)
                    assert key is not None
                    load[key] += 1
                    assert load[key] <= cap.max, (cap.id, key, load[key], cap.max)

    @rule(
        channel=st.sampled_from([*CHANNELS, "outbound"]),
        consent=st.dictionaries(st.sampled_from(CHANNELS), st.booleans()),
    )
    def decide_now(self, channel: str, consent: dict[str, bool]) -> None:
        self.last = self.decide(channel, consent)

    @precondition(lambda self: self.last is not None and len(self.last.recommendations) > 0)
    @rule(pick=st.integers(0, 5), outcome=LIKELY_OUTCOMES, key=st.sampled_from(["", "k1", "k2"]))
    def record_outcome(self, pick: int, outcome: int, key: str) -> None:
        assert self.last is not None
        rec = self.last.recommendations[pick % len(self.last.recommendations)]
        item = Interaction(
            rec.action_id, rec.channel, outcome, self.now, key and f"{key}-{self.now}"
        )
        if self.store.record("c-machine", item):
            self.recorded.append(item)

    @precondition(lambda self: self.last is not None and len(self.last.recommendations) > 0)
    @rule()
    def everything_recommended_is_delivered(self) -> None:
        """The client shows every recommendation: one impression each, a minute apart."""
        assert self.last is not None
        for rec in self.last.recommendations:
            self.now += 60
            item = Interaction(rec.action_id, rec.channel, pb.IMPRESSION, self.now)
            if self.store.record("c-machine", item):
                self.recorded.append(item)

    @rule(
        channel=st.sampled_from([*CHANNELS, "outbound"]),
        consent=st.dictionaries(st.sampled_from(CHANNELS), st.booleans()),
        visits=st.integers(2, 6),
    )
    def busy_day(self, channel: str, consent: dict[str, bool], visits: int) -> None:
        """Several decisions within the hour, each fully delivered: caps must hold."""
        for _ in range(visits):
            self.last = self.decide(channel, consent)
            self.everything_recommended_is_delivered()

    @rule(minutes=st.one_of(st.integers(1, 120), st.integers(1, 60 * 24 * 10)))
    def time_passes(self, minutes: int) -> None:
        self.now += minutes * 60

    @precondition(lambda self: self.last is not None and len(self.last.recommendations) > 0)
    @rule(pick=st.integers(0, 5))
    def dismissal_never_raises_rank(self, pick: int) -> None:
        before = self.decide(self.message.touchpoint.channel, dict(self.message.consent))
        if not before.recommendations:
            return
        target = before.recommendations[pick % len(before.recommendations)]
        item = Interaction(target.action_id, target.channel, pb.DISMISS, self.now)
        if self.store.record("c-machine", item):
            self.recorded.append(item)
        after = self.decide(self.message.touchpoint.channel, dict(self.message.consent))
        ranks_before = {r.action_id: r.rank for r in before.recommendations}
        ranks_after = {r.action_id: r.rank for r in after.recommendations}
        scores_after = {r.action_id: r.score for r in after.recommendations}
        event("dismissal checked")
        if target.action_id in scores_after:
            assert scores_after[target.action_id] <= target.score
            for other, rank in ranks_before.items():
                if rank < target.rank and other in ranks_after:
                    assert ranks_after[other] < ranks_after[target.action_id]
        self.last = after

    @rule(channel=st.sampled_from(CHANNELS))
    def opt_out_never_adds_a_marketing_action(self, channel: str) -> None:
        consent = dict(self.message.consent)
        before = self.decide(self.message.touchpoint.channel, consent)
        after = self.decide(self.message.touchpoint.channel, {**consent, channel: False})
        could = {r.action_id for r in before.recommendations}
        could |= {
            e.action_id
            for e in before.excluded
            if e.stage == "arbitration" or e.rule.startswith("caps.")
        }  # ranked out or capped: an opt-out may free their place, never make them qualify
        event("opt-out checked")
        added = {r.action_id for r in after.recommendations if r.purpose == "marketing"} - could
        assert not added, added
        assert all(
            not (r.channel == channel and r.purpose == "marketing") for r in after.recommendations
        )

    @precondition(lambda self: self.last is not None and len(self.last.recommendations) > 0)
    @rule(outcome=st.sampled_from(OUTCOMES))
    def recording_twice_equals_once(self, outcome: int) -> None:
        assert self.last is not None
        rec = self.last.recommendations[0]
        item = Interaction(rec.action_id, rec.channel, outcome, self.now, f"twice-{self.now}")
        first = self.store.record("c-machine", item)
        if first:
            self.recorded.append(item)
        once = self.decide(self.message.touchpoint.channel, dict(self.message.consent))
        assert self.store.record("c-machine", item) is False
        twice = self.decide(self.message.touchpoint.channel, dict(self.message.consent))
        assert [(r.action_id, r.channel, r.score) for r in once.recommendations] == [
            (r.action_id, r.channel, r.score) for r in twice.recommendations
        ]

    @invariant()
    def store_matches_what_was_recorded(self) -> None:
        since = self.now - history_horizon(BANK)
        stored = self.store.history("c-machine", since)
        assert len(stored) == len([i for i in self.recorded if i.at >= since])

    def teardown(self) -> None:
        self.store.close()


DecideAndRecord.TestCase.settings = settings(
    max_examples=80,
    stateful_step_count=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestDecideAndRecord = DecideAndRecord.TestCase
