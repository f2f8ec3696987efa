"""Pipeline stage 5, policies: consent, contact policies and channel choice.

Consent is law and no rule, weight or lever can override it, which is why it is applied
here, in code, after the rules. The contact policies of the rule set come next:

- one-time offers stop after the customer accepted them;
- a complaint pauses marketing for a while;
- cooldowns: after N dismissals (or rejections) within a window, pause the action (or
  its group) for a period;
- quiet hours: no outbound contact on some channels at night, in the customer's time;
- frequency caps, counted over a window per customer, action or group: enforced in
  arbitration (see CapBudget), because the decision's own recommendations count too.

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

from nba.engagement import Candidate, Exclusion
from nba.request import OUTCOME_NAMES, DecisionRequest
from nba.ruleset.model import ChannelSpec, ConsentDefault, Direction, Purpose
from nba.ruleset.ruleset import Action, Cap, Cooldown, Policies, RuleSet

CONSENT_RULE = "consent"
_ACCEPT, _COMPLAINT = 3, 6


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


def window(seconds: int) -> str:
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


# ---------------------------------------------------------------------------- history


class PolicyHistory:
    """What the policies need from one request's history, computed in one pass each."""

    def __init__(self, ruleset: RuleSet, request: DecisionRequest) -> None:
        self.ruleset = ruleset
        self.as_of = request.as_of
        group_of = ruleset.action_group
        self.accepted: dict[str, float] = {}
        self.last_complaint: float | None = None
        times: dict[tuple[str, str], list[float]] = defaultdict(list)  # (cooldown, key) -> ats
        for item in request.interactions:
            if item.outcome == _ACCEPT:
                self.accepted[item.action_id] = max(item.at, self.accepted.get(item.action_id, 0))
            elif item.outcome == _COMPLAINT:
                self.last_complaint = max(item.at, self.last_complaint or item.at)
            for cooldown in ruleset.policies.cooldowns:
                if item.outcome == cooldown.outcome:
                    key = (
                        item.action_id
                        if cooldown.each == "action"
                        else group_of.get(item.action_id)
                    )
                    if key is not None:
                        times[(cooldown.id, key)].append(item.at)
        self.triggered = {k: _trigger(sorted(v), self._cooldown(k[0])) for k, v in times.items()}
        self.cap_counts = cap_counts(ruleset, request)

    def _cooldown(self, cooldown_id: str) -> Cooldown:
        return next(c for c in self.ruleset.policies.cooldowns if c.id == cooldown_id)


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


def cap_counts(ruleset: RuleSet, request: DecisionRequest) -> dict[tuple[str, str], int]:
    """(cap id, key) -> interactions the cap counts in its window."""
    counts: dict[tuple[str, str], int] = defaultdict(int)
    caps = ruleset.policies.caps
    if not caps:
        return counts
    actions, as_of = ruleset.actions, request.as_of
    for item in request.interactions:
        action = actions.get(item.action_id)
        group = action.group if action else None
        for cap in caps:
            if item.outcome not in cap.outcomes or item.at > as_of:
                continue
            if as_of - item.at > cap.within_seconds:
                continue
            if cap.channel is not None and item.channel != cap.channel:
                continue
            if cap.purpose is not None and (action is None or action.purpose != cap.purpose):
                continue
            if cap.groups and group not in cap.groups:
                continue
            key = cap_key(cap, item.action_id, group)
            if key is not None:
                counts[(cap.id, key)] += 1
    return counts


# ---------------------------------------------------------------------------- caps


class CapBudget:
    """What each frequency cap still allows in this decision; picks use it up."""

    def __init__(self, policies: Policies, counts: Mapping[tuple[str, str], int]) -> None:
        self.caps = policies.caps
        self.counts = counts
        self.used: dict[tuple[str, str], int] = defaultdict(int)

    def full(self, action: Action, channel: str) -> Cap | None:
        """The first cap that recommending `action` on `channel` would exceed."""
        for cap in self.caps:
            if not cap.applies(action, channel):
                continue
            key = (cap.id, cap_key(cap, action.id, action.group) or "")
            if self.counts.get(key, 0) + self.used[key] >= cap.max:
                return cap
        return None

    def take(self, action: Action, channel: str) -> None:
        for cap in self.caps:
            if cap.applies(action, channel):
                self.used[(cap.id, cap_key(cap, action.id, action.group) or "")] += 1

    def describe(self, cap: Cap, action: Action) -> str:
        key = (cap.id, cap_key(cap, action.id, action.group) or "")
        earlier, now = self.counts.get(key, 0), self.used[key]
        what = "/".join(OUTCOME_NAMES[o].lower() + "s" for o in sorted(cap.outcomes))
        scope = {"customer": "", "action": f" of {action.id}", "group": f" of {action.group}"}
        where = f" on {cap.channel}" if cap.channel else ""
        text = f"{earlier} {what}{scope[cap.each]}{where} in the last {window(cap.within_seconds)}"
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


class PolicyStage:
    """Consent, contact policies and channel choice for one rule set."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.policies = ruleset.policies
        self.channels = ruleset.channels
        self.outbound_channels = tuple(
            c.id for c in ruleset.channels.values() if c.direction != Direction.INBOUND
        )

    def apply(
        self,
        request: DecisionRequest,
        candidates: list[Candidate],
        explain: bool,
        history: PolicyHistory | None = None,
    ) -> tuple[list[Candidate], list[Exclusion], PolicyHistory]:
        """Candidates with their usable channels (in preference order), and exclusions."""
        history = history or PolicyHistory(self.ruleset, request)
        minute = self._local_minute(request)
        kept: list[Candidate] = []
        excluded: list[Exclusion] = []
        for candidate in candidates:
            action = candidate.action
            why = self._action_policy(action, history, request.degraded)
            if why is None:
                channels, blocks = self._channels(request, action, minute)
                if channels:
                    candidate.channels = channels
                    kept.append(candidate)
                    continue
                why = self._no_channel(action, request, blocks)
            if explain:
                excluded.append(why)
        return kept, excluded, history

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
        for cooldown in self.policies.cooldowns:
            if cooldown.purpose is not None and cooldown.purpose != action.purpose:
                continue
            key = action.id if cooldown.each == "action" else action.group
            trigger = history.triggered.get((cooldown.id, key))
            if trigger is not None and as_of - trigger < cooldown.pause_seconds:
                noun = OUTCOME_NAMES[cooldown.outcome].lower()
                text = (
                    f"Cooldown {cooldown.id}: {cooldown.count} {noun}(s) of"
                    f" {key} within {window(cooldown.within_seconds)}, last on {when(trigger)};"
                    f" paused until {when(trigger + cooldown.pause_seconds)}"
                )
                if cooldown.reason:
                    text += f". {cooldown.reason}"
                return Exclusion(
                    action.id, f"cooldowns.{cooldown.id}", text, "policy", cooldown.location
                )
        return None

    # -- channels
    def _channels(
        self, request: DecisionRequest, action: Action, minute: int | None
    ) -> tuple[list[str], list[ChannelBlock]]:
        order = [request.channel] if not request.outbound else self.preference(request)
        usable: list[str] = []
        blocks: list[ChannelBlock] = []
        for channel in order:
            if channel not in action.treatments:
                continue
            block = self._blocked(request, action, channel, minute)
            if block is None:
                usable.append(channel)
            else:
                blocks.append(block)
        return usable, blocks

    def _blocked(
        self, request: DecisionRequest, action: Action, channel: str, minute: int | None
    ) -> ChannelBlock | None:
        if not allowed(self.channels[channel], action.purpose, request.consent):
            return ChannelBlock(channel, CONSENT_RULE, self._consent_text(action, channel, request))
        if minute is not None and self._reaches_out(request, channel):
            for quiet in self.policies.quiet_hours:
                if channel in quiet.channels and quiet.covers(minute):
                    return ChannelBlock(
                        channel,
                        f"quiet_hours.{quiet.id}",
                        f"Quiet hours on {channel} ({_clock(quiet.start_minute)}-"
                        f"{_clock(quiet.end_minute)} {request.time_zone}); it is {_clock(minute)}",
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
            return Exclusion(action.id, block.rule, block.reason, "policy", None, block.channel)
        if blocks:
            reasons = "; ".join(f"{b.channel}: {b.reason}" for b in blocks)
            return Exclusion(action.id, blocks[0].rule, f"No usable channel. {reasons}", "policy")
        where = request.channel if not request.outbound else "an outbound channel"
        return Exclusion(
            action.id,
            "treatment",
            f"No message for {where}: the action has no treatment for it",
            "channel",
            action.location,
            "" if request.outbound else request.channel,
        )

    def _consent_text(self, action: Action, channel: str, request: DecisionRequest) -> str:
        if request.consent.get(channel) is False:
            return f"The customer opted out of {action.purpose} on {channel}"
        return f"{channel.capitalize()} {action.purpose} needs the customer's opt-in, not given"

    def preference(self, request: DecisionRequest) -> list[str]:
        """Outbound channels, the customer's stated preference first."""
        preferred = [c for c in request.preferred_channels if c in self.outbound_channels]
        return [*dict.fromkeys([*preferred, *self.outbound_channels])]

    def _local_minute(self, request: DecisionRequest) -> int | None:
        if not self.policies.quiet_hours:
            return None
        local = dt.datetime.fromtimestamp(request.as_of, ZoneInfo(request.time_zone))
        return local.hour * 60 + local.minute


def _clock(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"
