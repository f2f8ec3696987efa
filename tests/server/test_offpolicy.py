"""`nba evaluate` on what a real server logged: the logging policy judged by its own log
earns exactly what it earned; a candidate that shows what the log never showed is flagged."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from nba.cli import app
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import RULES, example
from tests.server.nba_process import serving

pytestmark = pytest.mark.slow


def evaluate(log: Path, against: Path, store: str) -> dict[str, object]:
    args = ["evaluate", "--log", str(log), "--against", str(against), "--store", store]
    result = CliRunner().invoke(app, [*args, "--draws", "50", "--format", "json"])
    assert result.exit_code == 0, result.output
    found: dict[str, object] = json.loads(result.stdout)
    return found


def test_evaluate_reads_the_log_and_the_outcomes_of_a_real_server(tmp_path: Path) -> None:
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests", "examples"))
    header = rules / "ruleset.yaml"
    header.write_text(header.read_text().replace('exploration: "off"', "exploration: thompson"))
    store, log = f"sqlite:///{tmp_path / 'store.sqlite3'}", tmp_path / "log"
    args = ("--rules", str(rules), "--store", store, "--decision-log", str(log))
    with serving(*args) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        request = example("web_prospect_homepage.json")
        for i in range(40):
            request.customer_id = f"visitor-{i}"
            response = stub.Decide(request, timeout=10)
            if i % 3 == 0:  # a third of the visitors click what they were shown first
                outcome = pb.RecordOutcomeRequest(
                    customer_id=request.customer_id, decision_id=response.decision_id
                )
                outcome.interaction.action_id = response.recommendations[0].action_id
                outcome.interaction.channel = "web"
                outcome.interaction.outcome = pb.CLICK
                stub.RecordOutcome(outcome, timeout=10)
        time.sleep(0.3)  # the log writer drains every 50 ms
    itself = evaluate(log, rules, store)
    assert itself["decisions"] == 40
    assert itself["logged_accept_rate"] == pytest.approx(14 / 40)
    rates = itself["accept_rate"]
    assert isinstance(rates, dict)
    # judged on its own log, the logging policy's weights are all 1: IPS is what it earned
    assert rates["ips"]["estimate"] == pytest.approx(14 / 40)
    assert not itself["warning"]
    # a candidate that never shows what the log showed first: no support, said so
    shown = {"acct_current_switch", "card_cashback"}
    candidate = tmp_path / "candidate"
    shutil.copytree(rules, candidate)
    extra = candidate / "rules.yaml"
    targets = ", ".join(sorted(shown | {"sav_easy_access", "card_travel_rewards"}))
    extra.write_text(
        extra.read_text() + f"\n  - id: nothing_we_logged\n    when: profile.age >= 0\n"
        f"    suppress: {{actions: [{targets}]}}\n"
    )
    other = evaluate(log, candidate, store)
    assert isinstance(other["support"], int)
    assert other["support"] < 30 and other["warning"]
