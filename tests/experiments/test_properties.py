"""Consent holds in every arm, however hostile; a universal-control customer under "none"
never gets marketing. Over customers generated from the rule set's own schema."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings

from nba.authoring.strategies import any_requests
from nba.experiments.assign import Assigner
from nba.pipeline.decider import Decider
from nba.ruleset.ruleset import UNIVERSAL_CONTROL
from nba.v1 import decisioning_pb2 as pb
from tests.consent import assert_consent_kept
from tests.experiments.bank import HOSTILE, bank_with

HOSTILE_BANK = bank_with(HOSTILE.format(treatment="none"))
DECIDER = Decider(HOSTILE_BANK, "durable")
ASSIGNER = Assigner(HOSTILE_BANK.experiments)
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(any_requests(HOSTILE_BANK))
def test_consent_is_never_violated_in_any_arm(message: pb.DecideRequest) -> None:
    response = DECIDER.decide(message)
    assert dict(response.arms) == {e: a.id for e, a in ASSIGNER.arms(message.customer_id).items()}
    assert_consent_kept(HOSTILE_BANK, message, response)
    for rec in response.recommendations:
        if response.arms[UNIVERSAL_CONTROL] == "control":
            assert rec.purpose != "marketing", "a held-out customer got marketing"
