"""What a record holds: the request as decided, masked and hashed as configured; sampling."""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from pathlib import Path

import pytest

from nba.decisionlog.archive import RuleSetArchive
from nba.decisionlog.record import MASK, RecordBuilder
from nba.decisionlog.replay import ReplayError, replay
from nba.decisionlog.writer import sampled
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from tests.conftest import RULES
from tests.decisionlog.helpers import decided

KEY = b"a key of at least sixteen bytes"


def test_a_record_carries_the_request_as_decided_and_the_scored_ranking(
    bank_decider: Decider,
) -> None:
    decision = decided(bank_decider)
    record = RecordBuilder().record(decision, 1.0)
    request = decision.request
    assert record.customer == request.customer_id
    assert record.request["profile"]["age"] == request.profile["age"]
    assert record.request["as_of"] == request.as_of
    assert record.request["consent"] == dict(request.consent)
    assert len(record.request["interactions"]) == len(request.interactions) > 0
    top = decision.picks[0]
    assert record.recommendations[0] == {
        "rank": 1,
        "action": top.action.id,
        "channel": top.channel,
        "fallback": False,
        "score": top.scored.score if top.scored else None,
        "propensity": top.scored.propensity if top.scored else None,
        "weight": top.scored.context_weight if top.scored else None,
        "value": top.scored.value if top.scored else None,
        "lever": top.scored.lever if top.scored else None,
    }
    assert record.model == {} and record.seed == ""  # a static scorer learns nothing


def test_dropped_fields_are_absent_and_masked_ones_hidden_and_both_listed(
    bank_decider: Decider,
) -> None:
    decision = decided(bank_decider)
    assert {"age", "monthly_income"} <= set(decision.request.profile)
    builder = RecordBuilder(drop=["profile.monthly_income"], mask=["profile.age"])
    record = builder.record(decision, 1.0)
    assert "monthly_income" not in record.request["profile"]
    assert record.request["profile"]["age"] == MASK
    assert record.masked == {"profile.monthly_income": "dropped", "profile.age": "masked"}
    assert str(decision.request.profile["monthly_income"]) not in str(record.as_dict()["request"])


def test_a_masked_record_is_refused_by_replay_naming_the_fields(
    bank_decider: Decider, tmp_path: Path
) -> None:
    record = RecordBuilder(drop=["profile.monthly_income"]).record(decided(bank_decider), 1.0)
    RuleSetArchive(tmp_path).archive(load_ruleset(RULES, display_root=""), RULES)
    with pytest.raises(ReplayError, match=r"profile\.monthly_income \(dropped\)"):
        replay(record, tmp_path)


def test_only_profile_attribute_paths_can_be_masked() -> None:
    with pytest.raises(ValueError, match=r"expected profile\.<attribute>"):
        RecordBuilder(drop=["customer_id"])


def test_with_a_key_the_customer_id_is_its_hmac_sha256(bank_decider: Decider) -> None:
    decision = decided(bank_decider)
    customer = decision.request.customer_id
    record = RecordBuilder(hash_key=KEY).record(decision, 1.0)
    expected = hmac.new(KEY, customer.encode(), hashlib.sha256).hexdigest()
    assert record.customer == f"hmac-sha256:{expected}"
    assert customer not in str(record.as_dict())
    again = RecordBuilder(hash_key=KEY).record(decided(bank_decider), 2.0)
    assert again.customer == record.customer  # one customer's decisions can still be grouped
    other_key = RecordBuilder(hash_key=KEY + b"!").record(decision, 1.0)
    assert other_key.customer != record.customer


def test_sampling_is_decided_by_the_decision_id_and_keeps_about_the_rate() -> None:
    ids = [os.urandom(16).hex() for _ in range(4000)]
    kept = [i for i in ids if sampled(i, 0.1)]
    assert 0.08 * len(ids) <= len(kept) <= 0.12 * len(ids)
    assert [i for i in ids if sampled(i, 0.1)] == kept  # the same id, the same answer
    assert all(sampled(i, 1.0) for i in ids[:100])
    assert set(i for i in ids if sampled(i, 0.05)) <= set(kept)  # a lower rate keeps a subset


def test_a_record_round_trips_through_json_with_exact_floats(bank_decider: Decider) -> None:
    import json

    from nba.decisionlog import DecisionRecord

    record = RecordBuilder().record(decided(bank_decider), time.time())
    again = DecisionRecord.from_dict(json.loads(json.dumps(record.as_dict())))
    assert again == record
