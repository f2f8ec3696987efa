"""The first invariant, asserted the same way by every property test that decides."""

from __future__ import annotations

from nba.pipeline.policies import allowed
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb


def assert_consent_kept(
    ruleset: RuleSet, message: pb.DecideRequest, response: pb.DecideResponse
) -> None:
    """No marketing recommendation on a channel the customer opted out of, or never opted
    in to where the channel needs an opt-in."""
    for rec in response.recommendations:
        if rec.purpose == "marketing":
            channel = ruleset.channels[rec.channel]
            assert allowed(channel, ruleset.actions[rec.action_id].purpose, message.consent)
            assert message.consent.get(rec.channel) is not False
            if channel.marketing_consent == "opt_in":
                assert message.consent.get(rec.channel) is True
