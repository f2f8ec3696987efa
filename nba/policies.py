"""Pipeline stage 5, policies: consent and channel selection.

Consent is law and no rule, weight or lever can override it, which is why it is applied
here, in code, after the rules: whatever the rule set says, a marketing action never
reaches a channel the customer opted out of.

- Inbound touchpoints (the customer is on web, in the app, on the phone): the action
  must have a treatment for that channel and be allowed on it.
- Outbound decisions: among the action's channels that can reach out, allowed ones,
  the customer's preferred order first, then the rule set's channel order.
"""

from __future__ import annotations

from collections.abc import Mapping

from nba.engagement import Candidate, Exclusion
from nba.request import DecisionRequest
from nba.ruleset.model import ChannelSpec, ConsentDefault, Direction, Purpose
from nba.ruleset.ruleset import Action, RuleSet

CONSENT_RULE = "consent"


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


class PolicyStage:
    """Consent and channel choice for one rule set."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.ruleset = ruleset
        self.channels = ruleset.channels
        self.outbound_channels = tuple(
            c.id for c in ruleset.channels.values() if c.direction != Direction.INBOUND
        )

    def apply(
        self, request: DecisionRequest, candidates: list[Candidate], explain: bool
    ) -> tuple[list[Candidate], list[Exclusion]]:
        kept: list[Candidate] = []
        excluded: list[Exclusion] = []
        for candidate in candidates:
            channel, why = self.channel_for(request, candidate.action)
            if channel:
                candidate.channel = channel
                kept.append(candidate)
            elif explain and why is not None:
                excluded.append(why)
        return kept, excluded

    def channel_for(self, request: DecisionRequest, action: Action) -> tuple[str, Exclusion | None]:
        """The channel to use, or "" and the exclusion saying why there is none."""
        if not request.outbound:
            return self._inbound(request, action)
        return self._outbound(request, action)

    def _inbound(self, request: DecisionRequest, action: Action) -> tuple[str, Exclusion | None]:
        channel = request.channel
        if channel not in action.treatments:
            return "", Exclusion(
                action.id,
                "treatment",
                f"No message for {channel}: the action has no {channel} treatment",
                "channel",
                action.location,
                channel,
            )
        if not allowed(self.channels[channel], action.purpose, request.consent):
            return "", self._consent_exclusion(action, channel, request.consent)
        return channel, None

    def _outbound(self, request: DecisionRequest, action: Action) -> tuple[str, Exclusion | None]:
        for channel in self.preference(request):
            if channel in action.treatments and allowed(
                self.channels[channel], action.purpose, request.consent
            ):
                return channel, None
        reachable = [c for c in action.channels if c in self.outbound_channels]
        if not reachable:
            return "", Exclusion(
                action.id,
                "treatment",
                "No outbound message: the action has no treatment for an outbound channel",
                "channel",
                action.location,
            )
        return "", Exclusion(
            action.id,
            CONSENT_RULE,
            f"No consented channel: the customer has not agreed to {action.purpose} on "
            + ", ".join(reachable),
            "policy",
        )

    def preference(self, request: DecisionRequest) -> list[str]:
        """Outbound channels, the customer's stated preference first."""
        preferred = [c for c in request.preferred_channels if c in self.outbound_channels]
        return [*dict.fromkeys([*preferred, *self.outbound_channels])]

    def _consent_exclusion(
        self, action: Action, channel: str, consent: Mapping[str, bool]
    ) -> Exclusion:
        if consent.get(channel) is False:
            why = f"The customer opted out of {action.purpose} on {channel}"
        else:
            why = f"{channel.capitalize()} {action.purpose} needs the customer's opt-in, not given"
        return Exclusion(action.id, CONSENT_RULE, why, "policy", None, channel)
