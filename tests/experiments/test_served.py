"""A served rule set with experiments: the arms reach the gRPC response, the decision log
and every decision metric."""

from __future__ import annotations

from pathlib import Path

import grpc

from nba.decisionlog import open_decision_log
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example
from tests.experiments.bank import HOSTILE, bank_with
from tests.experiments.test_decisions import customer_in
from tests.own_redis import free_port
from tests.server.nba_process import serving
from tests.server.test_metrics import scrape, total


def test_arms_reach_the_response_the_decision_log_and_the_metrics(tmp_path: Path) -> None:
    rules = bank_with(HOSTILE.format(treatment="none"), tmp_path)
    metrics_port = free_port()
    log = tmp_path / "log"
    args = ("--rules", str(tmp_path / "rules"), "--metrics-port", str(metrics_port))
    customers = {arm: customer_in(rules, "push", arm) for arm in ("champion", "levers")}
    customers["held out"] = customer_in(rules, "universal_control", "control")
    with serving(*args, "--decision-log", str(log)) as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            answers = {}
            for name, customer in customers.items():
                message = example("web_prospect_homepage.json")
                message.customer_id = customer
                answers[name] = stub.Decide(message, timeout=10)
        samples = scrape(metrics_port)
    assert dict(answers["levers"].arms) == {"universal_control": "treated", "push": "levers"}
    assert dict(answers["held out"].arms) == {"universal_control": "control"}
    decisions = samples["nba_decisions_total"]
    assert total(decisions, arms="push=levers,universal_control=treated") == 1
    assert total(decisions, arms="universal_control=control") == 1
    held_out = [labels for labels, value in samples["nba_exclusions_total"] if value]
    assert any(
        x["rule"] == "universal_control" and x["arms"] == "universal_control=control"
        for x in held_out
    )
    logged = {r.decision_id: r.arms for r in open_decision_log(log).records()}
    assert logged[answers["champion"].decision_id] == {
        "universal_control": "treated",
        "push": "champion",
    }
