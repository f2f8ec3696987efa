"""Learning served: two `nba serve` processes on one store learn the same model from outcomes
recorded on either, and the bundled rules adapt as outcomes arrive."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import pytest

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example
from tests.server.nba_process import serving

REFRESH = "0.2"


def learned(stub: pb_grpc.DecisionServiceStub, action_id: str) -> tuple[int, pb.ScoreComponents]:
    request = example("web_prospect_homepage.json")
    request.max_results = 10
    response = stub.Decide(request, timeout=10)
    found = next(r for r in response.recommendations if r.action_id == action_id)
    return found.rank, found.components


def wait_for_positives(stub: pb_grpc.DecisionServiceStub, action_id: str, at_least: float) -> None:
    deadline = time.monotonic() + 10
    while learned(stub, action_id)[1].learned.positives < at_least:
        assert time.monotonic() < deadline, "the worker never read the new evidence"
        time.sleep(0.1)


def test_two_servers_on_one_store_learn_the_same_model_and_the_bundled_rules_adapt(
    tmp_path: Path,
) -> None:
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    args = ("--store", store, "--model-refresh", REFRESH)
    with (
        serving(*args) as first,
        serving(*args) as second,
        grpc.insecure_channel(f"127.0.0.1:{first.port}") as a,
        grpc.insecure_channel(f"127.0.0.1:{second.port}") as b,
    ):
        one, two = pb_grpc.DecisionServiceStub(a), pb_grpc.DecisionServiceStub(b)
        request = example("web_prospect_homepage.json")
        request.max_results = 10
        ranked = [
            r for r in one.Decide(request, timeout=10).recommendations if r.purpose == "marketing"
        ]
        last = ranked[-1]
        rank_before, before = learned(one, last.action_id)
        assert before.learned.positives == 0
        assert before.propensity == before.learned.prior
        for i in range(40):  # customers clicking the lowest-ranked offer, recorded on one server
            one.RecordOutcome(
                pb.RecordOutcomeRequest(
                    customer_id=f"c-learn-{i}",
                    interaction=pb.Interaction(
                        action_id=last.action_id, channel="web", outcome=pb.CLICK
                    ),
                ),
                timeout=10,
            )
        wait_for_positives(two, last.action_id, 39.9)  # seen by the other process
        wait_for_positives(one, last.action_id, 39.9)
        rank_one, after_one = learned(one, last.action_id)
        rank_two, after_two = learned(two, last.action_id)
    # the same evidence, decayed to the moment each read it (microseconds apart)
    assert after_one.learned.posterior_mean == pytest.approx(
        after_two.learned.posterior_mean, rel=1e-6
    )
    assert after_one.learned.posterior_mean > before.learned.posterior_mean
    assert rank_one == rank_two < rank_before  # the bundled rules adapted
