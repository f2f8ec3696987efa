"""DecisionService without any transport: proto messages in and out, nba errors raised.

What the HTTP face will rely on: the service never speaks gRPC (no abort, no status), so
any transport can parse its wire format into the same messages and map the same errors.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from nba.errors import DeadlineExceededError, NotConfiguredError, RequestError
from nba.server.reload import RuleSetHolder
from nba.server.service import CallContext, DecisionService
from nba.store import InteractionStore, open_store
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES, example

NOW = 1_800_000_000.0  # the one clock of these tests, for the service and the store


@pytest.fixture
def store() -> Iterator[InteractionStore]:
    store = open_store("memory://", retention_seconds=86400, clock=lambda: NOW)
    yield store
    store.close()


def service_on(store: InteractionStore | None) -> DecisionService:
    holder = RuleSetHolder(RULES, "reference", store)
    holder.load()
    return DecisionService(holder, clock=lambda: NOW)


def test_each_call_takes_and_returns_the_proto_messages(store: InteractionStore) -> None:
    service = service_on(store)
    decision = service.decide(example("web_prospect_homepage.json"))
    assert isinstance(decision, pb.DecideResponse) and decision.recommendations
    status = service.status(pb.GetRuleSetStatusRequest())
    assert status.ruleset_version == decision.ruleset_version
    update = pb.UpdateConsentRequest(customer_id="c-svc", consent={"email": False})
    assert dict(service.update_consent(update).consent) == {"email": False}


def test_a_malformed_request_raises_request_error_naming_the_field(
    store: InteractionStore,
) -> None:
    service = service_on(store)
    request = example("web_prospect_homepage.json")
    request.profile.update({"age": "forty"})
    with pytest.raises(RequestError) as caught:
        service.decide(request)
    assert caught.value.field == "profile.age"
    with pytest.raises(RequestError) as caught:
        service.update_consent(pb.UpdateConsentRequest(customer_id="c1", consent={"fax": True}))
    assert caught.value.field == 'consent["fax"]'


def test_without_a_store_the_store_calls_raise_not_configured() -> None:
    service = service_on(None)
    record = pb.RecordOutcomeRequest(customer_id="c1")
    with pytest.raises(NotConfiguredError, match=r"--store none"):
        service.record_outcome(record)
    with pytest.raises(NotConfiguredError, match=r"--store none"):
        service.update_consent(pb.UpdateConsentRequest(customer_id="c1", consent={"web": True}))
    assert service.decide(example("web_prospect_homepage.json")).recommendations  # stateless


def test_an_outcome_sent_without_a_time_happened_now_by_the_services_clock(
    store: InteractionStore,
) -> None:
    service = service_on(store)
    record = pb.RecordOutcomeRequest(customer_id="c-svc", interaction_id="click-1")
    record.interaction.action_id = "card_cashback"
    record.interaction.channel = "web"
    record.interaction.outcome = pb.CLICK
    assert service.record_outcome(record).recorded
    [stored] = store.history("c-svc", since=0)
    assert (stored.interaction_id, stored.at) == ("click-1", NOW)


def test_a_call_past_its_deadline_is_not_worked_on(store: InteractionStore) -> None:
    service = service_on(store)
    late = CallContext(deadline=time.monotonic() - 0.001)
    with pytest.raises(DeadlineExceededError):
        service.decide(example("web_prospect_homepage.json"), late)
    record = pb.RecordOutcomeRequest(
        customer_id="c-late",
        interaction=pb.Interaction(action_id="card_cashback", channel="web", outcome=pb.CLICK),
    )
    with pytest.raises(DeadlineExceededError):
        service.record_outcome(record, late)
    assert store.history("c-late", 0) == []  # nothing was recorded


def test_a_decision_with_no_time_left_answers_the_fallback_marked_degraded(
    store: InteractionStore,
) -> None:
    service = service_on(store)
    request = example("web_prospect_homepage.json")
    assert not service.decide(request).recommendations[0].fallback
    hurried = service.decide(request, CallContext(deadline=time.monotonic() + 0.001))
    assert hurried.degraded
    assert [r.fallback for r in hurried.recommendations] == [True]
    assert all(r.purpose == "service" for r in hurried.recommendations)  # consent unknown
    relaxed = service.decide(request, CallContext(deadline=time.monotonic() + 5))
    assert not relaxed.degraded and not relaxed.recommendations[0].fallback
