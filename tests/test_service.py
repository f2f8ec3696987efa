"""DecisionService over gRPC: a real server on an ephemeral port and a real client."""

from __future__ import annotations

from itertools import pairwise

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from nba.server.grpc_face import Running
from nba.server.reload import RuleSetHolder
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example


def test_decide_returns_ranked_treatments(stub: pb_grpc.DecisionServiceStub) -> None:
    response = stub.Decide(example("call_center_at_risk.json"), timeout=5)
    recs = response.recommendations
    assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
    assert recs and all(r.channel == "call_center" and r.treatment.script for r in recs)
    assert response.decision_id and response.ruleset_version
    assert all(r.reasons for r in recs if not r.fallback)
    assert all(a.score >= b.score for a, b in pairwise(recs))


def test_explain_fills_exclusions(stub: pb_grpc.DecisionServiceStub) -> None:
    request = example("call_center_at_risk.json")
    request.explain = True
    response = stub.Decide(request, timeout=5)
    assert response.excluded
    assert all(e.action_id and e.rule and e.reason for e in response.excluded)
    recommended = {r.action_id for r in response.recommendations}
    assert not recommended & {e.action_id for e in response.excluded}


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda m: m.profile.update({"age": "forty"}), "profile.age"),
        (lambda m: m.profile.update({"agee": 40}), "profile.agee"),
        (lambda m: setattr(m, "lifecycle_stage", "dormant"), "lifecycle_stage"),
        (lambda m: setattr(m.touchpoint, "channel", "fax"), "touchpoint.channel"),
    ],
)
def test_malformed_requests_get_invalid_argument_naming_the_field(
    stub: pb_grpc.DecisionServiceStub,
    mutate,
    field: str,  # type: ignore[no-untyped-def]
) -> None:
    request = example("web_prospect_homepage.json")
    mutate(request)
    with pytest.raises(grpc.RpcError) as caught:
        stub.Decide(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith(f"{field}: ")


def test_bad_input_changes_nothing(
    stub: pb_grpc.DecisionServiceStub, server: tuple[Running, RuleSetHolder]
) -> None:
    _, holder = server
    good = example("web_prospect_homepage.json")
    before = stub.Decide(good, timeout=5)
    bad = example("web_prospect_homepage.json")
    bad.profile.update({"age": True})
    for _ in range(3):
        with pytest.raises(grpc.RpcError):
            stub.Decide(bad, timeout=5)
    after = stub.Decide(good, timeout=5)
    assert [r.action_id for r in after.recommendations] == [
        r.action_id for r in before.recommendations
    ]
    assert after.ruleset_version == before.ruleset_version == holder.current.version


def test_health_is_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "nba.v1.DecisionService"):
        response = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert response.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_the_service(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    response = next(stub.ServerReflectionInfo(iter([request]), timeout=5))
    names = {s.name for s in response.list_services_response.service}
    assert {"nba.v1.DecisionService", "grpc.health.v1.Health"} <= names


def test_status_names_the_serving_version(
    stub: pb_grpc.DecisionServiceStub, server: tuple[Running, RuleSetHolder]
) -> None:
    _, holder = server
    status = stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=5)
    ruleset = holder.current.ruleset
    assert status.ruleset_version == ruleset.version
    assert (status.actions, status.rules, status.segments) == (
        len(ruleset.actions),
        len(ruleset.rules),
        len(ruleset.segments),
    )
    assert list(status.last_reload_errors) == []


def test_record_outcome_is_idempotent_and_seen_by_the_next_decide(
    stub: pb_grpc.DecisionServiceStub,
) -> None:
    """Two recorded dismissals exclude card_cashback (`dismissals(30d, action=this) < 2`)."""
    decide = example("mobile_app_dismissed_cashback.json")
    decide.customer_id = "c-record-1"
    decide.ClearField("interactions")
    decide.explain = True
    before = {e.action_id: e.rule for e in stub.Decide(decide, timeout=5).excluded}
    assert not before.get("card_cashback", "").endswith("dismissals")

    record = pb.RecordOutcomeRequest(customer_id="c-record-1", interaction_id="dismiss-1")
    record.interaction.action_id = "card_cashback"
    record.interaction.channel = "mobile_app"
    record.interaction.outcome = pb.DISMISS
    record.interaction.at.FromSeconds(decide.as_of.seconds - 86400)
    first = stub.RecordOutcome(record, timeout=5)
    again = stub.RecordOutcome(record, timeout=5)
    assert (first.recorded, again.recorded) == (True, False)
    assert first.interaction_id == again.interaction_id == "dismiss-1"

    record.interaction_id = ""  # no client id: the content decides what is a retry
    record.interaction.at.FromSeconds(decide.as_of.seconds - 2 * 86400)
    derived = stub.RecordOutcome(record, timeout=5)
    assert derived.recorded and len(derived.interaction_id) == 20
    assert stub.RecordOutcome(record, timeout=5).recorded is False

    after = {e.action_id: e for e in stub.Decide(decide, timeout=5).excluded}
    assert after["card_cashback"].stage == "applicable"
    assert "dismiss" in after["card_cashback"].rule + after["card_cashback"].reason.lower()


def test_record_outcome_rejects_missing_fields(stub: pb_grpc.DecisionServiceStub) -> None:
    record = pb.RecordOutcomeRequest(customer_id="c1")
    record.interaction.action_id = "card_cashback"
    record.interaction.channel = "web"
    with pytest.raises(grpc.RpcError) as caught:
        stub.RecordOutcome(record, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith("interaction.outcome: ")


def test_stored_opt_out_beats_the_requests_opt_in(stub: pb_grpc.DecisionServiceStub) -> None:
    decide = example("outbound_prospect_email.json")
    decide.customer_id = "c-consent-1"
    assert decide.consent["email"] is True
    marketing_email = [
        r
        for r in stub.Decide(decide, timeout=5).recommendations
        if r.channel == "email" and r.purpose == "marketing"
    ]
    assert marketing_email
    update = pb.UpdateConsentRequest(customer_id="c-consent-1", consent={"email": False})
    update.at.FromSeconds(1_000)
    assert dict(stub.UpdateConsent(update, timeout=5).consent) == {"email": False}
    older = pb.UpdateConsentRequest(customer_id="c-consent-1", consent={"email": True})
    older.at.FromSeconds(999)  # arrives late: the newer opt-out stays
    assert dict(stub.UpdateConsent(older, timeout=5).consent) == {"email": False}
    after = stub.Decide(decide, timeout=5).recommendations
    assert not [r for r in after if r.channel == "email" and r.purpose == "marketing"]


def test_update_consent_rejects_unknown_channels(stub: pb_grpc.DecisionServiceStub) -> None:
    update = pb.UpdateConsentRequest(customer_id="c1", consent={"emial": False})
    with pytest.raises(grpc.RpcError) as caught:
        stub.UpdateConsent(update, timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert caught.value.details().startswith('consent["emial"]: ')
    assert "did you mean 'email'?" in caught.value.details()
