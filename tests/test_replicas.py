"""Several replicas share history through Redis: what one records, the other respects."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import grpc
import pytest

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import RULES, example
from tests.helpers import served


@pytest.fixture(params=["redis", "redis_cluster"])
def shared_store(request: pytest.FixtureRequest) -> str:
    """Redis, then a Redis Cluster: replicas share history through either."""
    name = "service_redis" if request.param == "redis" else "redis_cluster_url"
    url: str = request.getfixturevalue(name)
    return url


@contextmanager
def replica(store: str) -> Iterator[pb_grpc.DecisionServiceStub]:
    """`nba serve` in its own process, on a free port; yields a client stub."""
    args = ("--rules", str(RULES), "--port", "0", "--store", store, "--workers", "1")
    with served(*args) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        yield pb_grpc.DecisionServiceStub(channel)


@pytest.mark.slow
def test_an_accept_recorded_on_one_replica_is_respected_by_the_other(shared_store: str) -> None:
    decide = example("web_prospect_homepage.json")
    decide.customer_id = "c-replicas"
    decide.explain = True
    with replica(shared_store) as first, replica(shared_store) as second:
        top = second.Decide(decide, timeout=10).recommendations[0]
        assert top.action_id == "acct_current_switch"  # a one-time offer
        record = pb.RecordOutcomeRequest(customer_id="c-replicas", interaction_id="acc-1")
        record.interaction.action_id = top.action_id
        record.interaction.channel = top.channel
        record.interaction.outcome = pb.ACCEPT
        assert first.RecordOutcome(record, timeout=10).recorded
        assert not second.RecordOutcome(record, timeout=10).recorded  # the retry, elsewhere
        after = second.Decide(decide, timeout=10)
        assert top.action_id not in {r.action_id for r in after.recommendations}
        excluded = {e.action_id: e for e in after.excluded}
        assert excluded[top.action_id].rule == "one_time"


@pytest.mark.slow
def test_consent_stored_through_one_replica_applies_on_the_other(shared_store: str) -> None:
    decide = example("outbound_prospect_email.json")
    decide.customer_id = "c-consent"
    with replica(shared_store) as first, replica(shared_store) as second:
        before = second.Decide(decide, timeout=10)
        assert any(
            r.channel == "email" and r.purpose == "marketing" for r in before.recommendations
        )
        update = pb.UpdateConsentRequest(customer_id="c-consent", consent={"email": False})
        assert dict(first.UpdateConsent(update, timeout=10).consent) == {"email": False}
        after = second.Decide(decide, timeout=10)
        assert not any(
            r.channel == "email" and r.purpose == "marketing" for r in after.recommendations
        )
