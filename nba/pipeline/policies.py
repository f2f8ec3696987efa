"""Pipeline stage 5, policies: consent, contact policies and channel choice.

Consent is law and no rule, weight or lever can override it, which is why it is applied
here, in code, after the rules. The contact policies of the rule set come next:

- one-time offers stop after the customer accepted them;
- a complaint pauses marketing for a while;
- cooldowns: after N dismissals (or rejections) within a window, pause the action (or
  its group) for a period; a cooldown limited to channels counts and rests only there;
- quiet hours: no outbound contact on some channels at night, in the customer's time;
- frequency caps, counted over a window per customer, action or group: enforced in
  arbitration (see CapBudget), because the decision's own recommendations count too,
  as the impressions they will be (so not towards a cap on rejections, say).

Channel choice: an inbound touchpoint uses its own channel (the action needs a treatment
for it); an outbound decision tries the action's channels in the customer's preferred
order, then the rule set's, keeping those that consent and policies allow.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from nba.errors import Location
from nba.pipeline.types import (
    OUTCOME_NAMES,
    Candidate,
    DecisionRequest,
    Exclusion,
    Outcome,
    within_window,
)
from nba.ruleset.durations import format_duration
from nba.ruleset.model import ChannelSpec, ConsentDefault, Direction, Purpose
from nba.ruleset.ruleset import Action, Cap, Cooldown, Policies, RuleSet

CONSENT_RULE = "consent"
# Plain ints for the per-interaction loop: an enum member lookup there costs 10x a global.
_ACCEPT, _COMPLAINT = Outcome.ACCEPT.value, Outcome.COMPLAINT.value
_IMPRESSION = Outcome.IMPRESSION.value


def allowed(channel: ChannelSpec, purpose: Purpose, consent: Mapping[str, bool]) -> bool:
    """May an action of this purpose use this channel, given the customer's consent?"""
    given = consent.get(channel.id)
    if purpose == Purpose.MARKETING:
        default = channel.marketing_consent
    elif channel.service_consent is None:
        return True  # service messages are not marketing: opt-outs do not apply
    else:
        default = channel.service_consent
    if given is not None:
        return given
    return default == ConsentDefault.OPT_OUT


def when(seconds: float) -> str:
    return dt.datetime.fromtimestamp(seconds, dt.UTC).strftime("%Y-%m-%d")


# ---------------------------------------------------------------------------- history


# (cap id, key) counted, the cap's window, and the channel it is limited to (None: any).
_CapSlot = tuple[tuple[str, str], int, str | None]
# A cooldown, the action or group it counts for, and the channels it counts (None: any).
_CooldownSlot = tuple[Cooldown, str, frozenset[str] | None]


class HistoryIndex:
    """Which caps and cooldowns each (outcome, action) counts toward; built once per load.

    The filters that depend only on the action (purpose, groups, the cap's key) are
    applied here, so reading a request's history is one dictionary lookup per
    interaction plus a window and channel test per cap that counts it.
    """

    def __init__(self, ruleset: RuleSet) -> None:
        self.actions = ruleset.actions
        policies = ruleset.policies
        self.cooldown_outcomes = frozenset(c.outcome for c in policies.cooldowns)
        self.cooldown_by_id = {c.id: c for c in policies.cooldowns}
        self.caps: dict[tuple[int, str], tuple[_CapSlot, ...]] = {}
        self.cooldowns: dict[tuple[int, str], tuple[_CooldownSlot, ...]] = {}
        outcomes = {o for cap in policies.caps for o in cap.outcomes} | self.cooldown_outcomes
        for outcome in outcomes:
            for action in ruleset.actions.values():
                self._index(policies, outcome, action)
        # An interaction with an action the rule set does not know (retired, or another
        # system's) counts only toward customer-wide caps that filter on nothing else.
        self.unknown: dict[int, tuple[_CapSlot, ...]] = {
            outcome: tuple(
                ((cap.id, ""), cap.within_seconds, cap.channel)
                for cap in policies.caps
                if outcome in cap.outcomes
                and cap.each == "customer"
                and cap.purpose is None
                and not cap.groups
            )
            for outcome in outcomes
        }
        # What recommending an action on a channel adds to: (cap, its key) per pair.
        self.applicable: dict[tuple[str, str], tuple[tuple[Cap, tuple[str, str]], ...]] = {
            (action.id, channel): tuple(
                (cap, (cap.id, cap_key(cap, action.id, action.group) or ""))
                for cap in policies.caps
                if cap.applies(action, channel)
            )
            for action in ruleset.actions.values()
            for channel in ruleset.channels
        }
        # What a recommendation uses up: it is an impression-to-be, so only caps that
        # count impressions; a cap on rejections has seen none of this decision's picks.
        self.delivered: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
            pair: tuple(key for cap, key in caps if _IMPRESSION in cap.outcomes)
            for pair, caps in self.applicable.items()
        }

    def _index(self, policies: Policies, outcome: int, action: Action) -> None:
        caps = tuple(
            ((cap.id, key), cap.within_seconds, cap.channel)
            for cap in policies.caps
            if outcome in cap.outcomes
            and (cap.purpose is None or action.purpose == cap.purpose)
            and (not cap.groups or action.group in cap.groups)
            and (key := cap_key(cap, action.id, action.group)) is not None
        )
        cooldowns = tuple(
            (c, action.id if c.each == "action" else action.group, frozenset(c.channels) or None)
            for c in policies.cooldowns
            if c.outcome == outcome
        )
        if caps:
            self.caps[(outcome, action.id)] = caps
        if cooldowns:
            self.cooldowns[(outcome, action.id)] = cooldowns


class PolicyHistory:
    """What the policies need from one request's history, computed in one pass."""

    def __init__(self, index: HistoryIndex, request: DecisionRequest) -> None:
        self.as_of = as_of = request.as_of
        self.accepted: dict[str, float] = {}
        self.last_complaint: float | None = None
        self.cap_counts: dict[tuple[str, str], int] = {}
        counts = self.cap_counts
        cap_slots, unknown = index.caps, index.unknown
        cooldown_slots, cooldown_outcomes = index.cooldowns, index.cooldown_outcomes
        times: dict[tuple[str, str], list[float]] = defaultdict(list)  # (cooldown id, key)
        for item in request.interactions:
            outcome, action_id, at = item.outcome, item.action_id, item.at
            if outcome == _ACCEPT:
                self.accepted[action_id] = max(at, self.accepted.get(action_id, 0))
            elif outcome == _COMPLAINT:
                self.last_complaint = max(at, self.last_complaint or at)
            if outcome in cooldown_outcomes:
                for cooldown, scope, channels in cooldown_slots.get((outcome, action_id), ()):
                    if channels is None or item.channel in channels:
                        times[(cooldown.id, scope)].append(at)
            if at > as_of:
                continue  # neither a cap nor a cooldown counts what comes after the decision
            slots = cap_slots.get((outcome, action_id))
            if slots is None:
                slots = () if action_id in index.actions else unknown.get(outcome, ())
            for key, within, channel in slots:
                if within_window(at, as_of, within) and (
                    channel is None or channel == item.channel
                ):
                    counts[key] = counts.get(key, 0) + 1
        # (cooldown id, action or group) -> when it last triggered
        self.triggered = {
            slot: _trigger(sorted(ats), index.cooldown_by_id[slot[0]])
            for slot, ats in times.items()
        }


def _trigger(ats: list[float], cooldown: Cooldown) -> float | None:
    """When `count` events first fitted in the window, latest such moment, or None."""
    found = None
    n = cooldown.count
    for i in range(n - 1, len(ats)):
        if ats[i] - ats[i - n + 1] <= cooldown.within_seconds:
            found = ats[i]
    return found


def cap_key(cap: Cap, action_id: str, group: str | None) -> str | None:
    if cap.each == "action":
        return action_id
    if cap.each == "group":
        return group
    return ""


# ---------------------------------------------------------------------------- caps


class CapBudget:
    """What each frequency cap still allows in this decision; picks use it up."""

    def __init__(self, index: HistoryIndex, counts: Mapping[tuple[str, str], int]) -> None:
        self.applicable = index.applicable
        self.delivered = index.delivered
        self.counts = counts
        self.used: dict[tuple[str, str], int] = defaultdict(int)

    def full(self, action: Action, channel: str) -> Cap | None:
        """The first cap that recommending `action` on `channel` would exceed."""
        counts, used = self.counts, self.used
        for cap, key in self.applicable[(action.id, channel)]:
            if counts.get(key, 0) + used.get(key, 0) >= cap.max:
                return cap
        return None

    def take(self, action: Action, channel: str) -> None:
        """Recommending `action` on `channel`: one more impression for the caps counting them."""
        for key in self.delivered[(action.id, channel)]:
            self.used[key] += 1

    def describe(self, cap: Cap, action: Action) -> str:
        key = (cap.id, cap_key(cap, action.id, action.group) or "")
        earlier, now = self.counts.get(key, 0), self.used[key]
        what = "/".join(OUTCOME_NAMES[o].lower() + "s" for o in sorted(cap.outcomes))
        scope = {"customer": "", "action": f" of {action.id}", "group": f" of {action.group}"}
        where = f" on {cap.channel}" if cap.channel else ""
        window = format_duration(cap.within_seconds)
        text = f"{earlier} {what}{scope[cap.each]}{where} in the last {window}"
        if now:
            text += f" (+{now} in this decision)"
        return f"Contact cap {cap.id}: {text}, cap {cap.max}" + (
            f". {cap.reason}" if cap.reason else ""
        )


# ---------------------------------------------------------------------------- stage


@dataclass(slots=True)
class ChannelBlock:
    """Why one channel cannot carry an action (for the explanation when none can)."""

    channel: str
    rule: str
    reason: str
    location: Location | None = None


class PolicyStage:
    """Consent, contact policies and channel choice for one rule set."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.policies = ruleset.policies
        self.channels = ruleset.channels
        self.outbound_channels = tuple(
            c.id for c in ruleset.channels.values() if c.direction != Direction.INBOUND
        )
        self.history_index = HistoryIndex(ruleset)
        # A cooldown limited to channels rests the action there only: channel choice
        # applies it, not the action-level check.
        self.action_cooldowns = tuple(c for c in self.policies.cooldowns if not c.channels)
        self.channel_cooldowns = tuple(c for c in self.policies.cooldowns if c.channels)

    def prepare(
        self, request: DecisionRequest, history: PolicyHistory | None = None
    ) -> RequestPolicies:
        """The policies as they stand for one request (history aggregated once)."""
        return RequestPolicies(self, request, history)

    # -- action-level policies
    def _action_policy(
        self, action: Action, history: PolicyHistory, degraded: bool = False
    ) -> Exclusion | None:
        if degraded and action.purpose == Purpose.MARKETING:
            return Exclusion(
                action.id,
                "store_unavailable",
                "Marketing withheld: the interaction store is unavailable, so consent and"
                " contact history cannot be checked",
                "policy",
                action.location,
            )
        as_of = history.as_of
        if action.one_time and action.id in history.accepted:
            return Exclusion(
                action.id,
                "one_time",
                f"One-time offer already accepted on {when(history.accepted[action.id])}",
                "policy",
                action.location,
            )
        pause = self.policies.complaint_pause_seconds
        if (
            pause is not None
            and history.last_complaint is not None
            and action.purpose in self.policies.complaint_pause_purposes
            and as_of - history.last_complaint < pause
        ):
            until = history.last_complaint + pause
            return Exclusion(
                action.id,
                "complaint_pause",
                f"Complaint on {when(history.last_complaint)}: {action.purpose} paused until"
                f" {when(until)}",
                "policy",
                self.policies.complaint_pause_location,
            )
        for cooldown in self.action_cooldowns if history.triggered else ():
            trigger = _paused_since(cooldown, action, history)
            if trigger is not None:
                text = _cooldown_text(cooldown, action, trigger)
                return Exclusion(
                    action.id, f"cooldowns.{cooldown.id}", text, "policy", cooldown.location
                )
        return None

    def resting(self, action: Action, history: PolicyHistory) -> dict[str, ChannelBlock]:
        """The channels a channel-limited cooldown rests `action` on now, and why."""
        rest: dict[str, ChannelBlock] = {}
        for cooldown in self.channel_cooldowns:
            trigger = _paused_since(cooldown, action, history)
            if trigger is None:
                continue
            for channel in cooldown.channels:
                if channel not in rest:
                    text = _cooldown_text(cooldown, action, trigger, channel)
                    rule = f"cooldowns.{cooldown.id}"
                    rest[channel] = ChannelBlock(channel, rule, text, cooldown.location)
        return rest

    # -- channels
    def blocked(
        self, request: DecisionRequest, purpose: Purpose, channel: str, minute: int | None
    ) -> ChannelBlock | None:
        """Why consent or quiet hours keep `purpose` off `channel` now, or None."""
        if not allowed(self.channels[channel], purpose, request.consent):
            # Consent is the customer's; what it defaults to is the channel's declaration.
            return ChannelBlock(
                channel,
                CONSENT_RULE,
                _consent_text(purpose, channel, request),
                self.ruleset.channel_locations.get(channel),
            )
        if minute is not None and self._reaches_out(request, channel):
            for quiet in self.policies.quiet_hours:
                if channel in quiet.channels and quiet.covers(minute):
                    return ChannelBlock(
                        channel,
                        f"quiet_hours.{quiet.id}",
                        f"Quiet hours on {channel} ({_clock(quiet.start_minute)}-"
                        f"{_clock(quiet.end_minute)} {request.time_zone}); it is {_clock(minute)}",
                        quiet.location,
                    )
        return None

    def _reaches_out(self, request: DecisionRequest, channel: str) -> bool:
        """Quiet hours restrain us contacting the customer, not the customer contacting us."""
        return request.outbound or self.channels[channel].direction == Direction.OUTBOUND

    def _no_channel(
        self, action: Action, request: DecisionRequest, blocks: list[ChannelBlock]
    ) -> Exclusion:
        if len(blocks) == 1:
            block = blocks[0]
            return Exclusion(
                action.id, block.rule, block.reason, "policy", block.location, block.channel
            )
        if blocks:
            reasons = "; ".join(f"{b.channel}: {b.reason}" for b in blocks)
            return Exclusion(
                action.id,
                blocks[0].rule,
                f"No usable channel. {reasons}",
                "policy",
                blocks[0].location,  # the first channel's block: the one preferred most
            )
        where = request.channel if not request.outbound else "an outbound channel"
        return Exclusion(
            action.id,
            "treatment",
            f"No message for {where}: the action has no treatment for it",
            "channel",
            action.location,
            "" if request.outbound else request.channel,
        )

    def preference(self, request: DecisionRequest) -> list[str]:
        """Outbound channels, the customer's stated preference first."""
        preferred = [c for c in request.preferred_channels if c in self.outbound_channels]
        return [*dict.fromkeys([*preferred, *self.outbound_channels])]

    def _local_minute(self, request: DecisionRequest) -> int | None:
        if not self.policies.quiet_hours:
            return None
        local = dt.datetime.fromtimestamp(request.as_of, ZoneInfo(request.time_zone))
        return local.hour * 60 + local.minute


class RequestPolicies:
    """One request's view of the policies: checked lazily, candidate by candidate.

    Arbitration asks in rank order, so an action ranked below the final list is never
    checked at all unless the decision is being explained.
    """

    def __init__(
        self, stage: PolicyStage, request: DecisionRequest, history: PolicyHistory | None = None
    ) -> None:
        self.stage = stage
        self.request = request
        self.history = history or PolicyHistory(stage.history_index, request)
        self.view = _ChannelView(stage, request)
        self.budget = CapBudget(stage.history_index, self.history.cap_counts)

    def check(self, candidate: Candidate) -> Exclusion | None:
        """None when consent and policies allow the action on some channel (set on it)."""
        action = candidate.action
        why = self.stage._action_policy(action, self.history, self.request.degraded)
        if why is not None:
            return why
        channels, blocks = self.view.channels(action)
        if self.stage.channel_cooldowns and self.history.triggered:
            channels, blocks = self._off_resting(action, channels, blocks)
        if not channels:
            return self.stage._no_channel(action, self.request, blocks)
        candidate.channels = channels
        return None

    def _off_resting(
        self, action: Action, channels: list[str], blocks: list[ChannelBlock]
    ) -> tuple[list[str], list[ChannelBlock]]:
        """The usable channels minus those a cooldown rests the action on."""
        resting = self.stage.resting(action, self.history)
        if not resting:
            return channels, blocks
        usable = [c for c in channels if c not in resting]
        return usable, [*blocks, *(resting[c] for c in channels if c in resting)]

    def place(self, candidate: Candidate) -> Exclusion | None:
        """Put a checked candidate on its first channel with cap room, and use that room."""
        action, budget = candidate.action, self.budget
        for channel in candidate.channels:
            if budget.full(action, channel) is None:
                budget.take(action, channel)
                candidate.channel = channel
                return None
        return self._capped(candidate)

    def _capped(self, candidate: Candidate) -> Exclusion:
        action, budget = candidate.action, self.budget
        caps = [(c, budget.full(action, c)) for c in candidate.channels]
        first = caps[0][1]
        assert first is not None
        if len(caps) == 1:
            text = budget.describe(first, action)
            return Exclusion(
                action.id, f"caps.{first.id}", text, "policy", first.location, caps[0][0]
            )
        text = "; ".join(f"{c}: {budget.describe(cap, action)}" for c, cap in caps if cap)
        return Exclusion(
            action.id,
            f"caps.{first.id}",
            f"No channel under its caps. {text}",
            "policy",
            first.location,
        )


def _paused_since(cooldown: Cooldown, action: Action, history: PolicyHistory) -> float | None:
    """When `cooldown` last triggered for `action`, if it still pauses it now; else None."""
    if cooldown.purpose is not None and cooldown.purpose != action.purpose:
        return None
    key = action.id if cooldown.each == "action" else action.group
    trigger = history.triggered.get((cooldown.id, key))
    if trigger is None or history.as_of - trigger >= cooldown.pause_seconds:
        return None
    return trigger


def _cooldown_text(cooldown: Cooldown, action: Action, trigger: float, channel: str = "") -> str:
    noun = OUTCOME_NAMES[cooldown.outcome].lower()
    key = action.id if cooldown.each == "action" else action.group
    counted = f" on {'/'.join(cooldown.channels)}" if cooldown.channels else ""
    window = format_duration(cooldown.within_seconds)
    until = when(trigger + cooldown.pause_seconds)
    pause = f"resting on {channel} until {until}" if channel else f"paused until {until}"
    text = (
        f"Cooldown {cooldown.id}: {cooldown.count} {noun}(s) of {key}{counted} within"
        f" {window}, last on {when(trigger)}; {pause}"
    )
    return f"{text}. {cooldown.reason}" if cooldown.reason else text


def _consent_text(purpose: Purpose, channel: str, request: DecisionRequest) -> str:
    if request.consent.get(channel) is False:
        return f"The customer opted out of {purpose} on {channel}"
    return f"{channel.capitalize()} {purpose} needs the customer's opt-in, not given"


class _ChannelView:
    """One request's channel order and per-(channel, purpose) verdicts, computed once."""

    def __init__(self, stage: PolicyStage, request: DecisionRequest) -> None:
        self.stage = stage
        self.request = request
        self.order = stage.preference(request) if request.outbound else [request.channel]
        self.minute = stage._local_minute(request)
        self.verdicts: dict[tuple[str, Purpose], ChannelBlock | None] = {}

    def channels(self, action: Action) -> tuple[list[str], list[ChannelBlock]]:
        """The action's usable channels in preference order, and why the others are not."""
        usable: list[str] = []
        blocks: list[ChannelBlock] = []
        verdicts = self.verdicts
        for channel in self.order:
            if channel not in action.treatments:
                continue
            key = (channel, action.purpose)
            if key not in verdicts:
                verdicts[key] = self.stage.blocked(
                    self.request, action.purpose, channel, self.minute
                )
            block = verdicts[key]
            if block is None:
                usable.append(channel)
            else:
                blocks.append(block)
        return usable, blocks


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
