"""`nba serve --decision-log` on a real server, and `nba replay` of what it logged (issue 14).

One server (SQLite store, a copy of the bundled rules, hashed customer ids) makes
decisions: plain ones, one whose history comes from the store (an ACCEPT recorded by
RecordOutcome, not sent with the request), and one after a rule edit and a reload.
Each replays identical on the archived rule set of its version; a tampered record
replays with exit 1 and says what differs.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import pytest
from typer.testing import CliRunner

from nba.cli import app
from nba.decisionlog import DecisionRecord, open_decision_log
from nba.decisionlog.jsonl import log_files
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import REPO, RULES, example
from tests.server.nba_process import serving

KEY = b"0123456789abcdef-decision-log-key"
PLAIN = (
    "call_center_at_risk.json",
    "mobile_app_dismissed_cashback.json",
    "branch_growing_family.json",
)
SWITCH = "acct_current_switch"  # a one-time offer: an ACCEPT in the store removes it


@dataclass
class Served:
    log: Path
    versions: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)  # decision ids
    before_accept: str = ""
    with_history: str = ""
    after_reload: str = ""


def replay(decision_id: str, log: Path, *more: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["replay", decision_id, "--log", str(log), *more])
    return result.exit_code, result.output


def logged(log: Path, decision_id: str) -> DecisionRecord:
    reader = open_decision_log(log)
    try:
        record = reader.find(decision_id)
    finally:
        reader.close()
    assert record is not None, decision_id
    return record


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    root = tmp_path_factory.mktemp("decision_log")
    rules = root / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests", "examples"))
    key_file = root / "key"
    key_file.write_bytes(KEY + b"\n")
    result = Served(root / "log")
    args = ("--rules", str(rules), "--store", f"sqlite:///{root / 'store.sqlite3'}")
    args += ("--decision-log", str(result.log), "--decision-log-hash-key-file", str(key_file))
    with serving(*args) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        result.plain = [stub.Decide(example(n), timeout=10).decision_id for n in PLAIN]
        result.with_history, result.before_accept = decide_after_an_accept(stub)
        accounts = rules / "actions" / "accounts.yaml"
        text = accounts.read_text()
        accounts.write_text(text.replace("    value: 200\n", "    value: 300\n", 1))
        server.process.send_signal(signal.SIGHUP)
        server.wait_for(" live (", timeout=30)
        again = example("web_prospect_homepage.json")
        again.customer_id = "p-after-reload"
        response = stub.Decide(again, timeout=10)
        result.after_reload = response.decision_id
        result.versions = [logged_version(server.stderr), response.ruleset_version]
    yield result


def decide_after_an_accept(stub: pb_grpc.DecisionServiceStub) -> tuple[str, str]:
    """(the decision made with the stored ACCEPT, the one before it)."""
    request = example("web_prospect_homepage.json")
    request.customer_id = "p-history"
    first = stub.Decide(request, timeout=10)
    assert first.recommendations[0].action_id == SWITCH
    outcome = pb.RecordOutcomeRequest(customer_id="p-history", decision_id=first.decision_id)
    outcome.interaction.action_id = SWITCH
    outcome.interaction.channel = "web"
    outcome.interaction.outcome = pb.ACCEPT
    assert stub.RecordOutcome(outcome, timeout=10).recorded
    second = stub.Decide(request, timeout=10)  # the request carries no interactions
    assert SWITCH not in [r.action_id for r in second.recommendations]
    return second.decision_id, first.decision_id


def logged_version(stderr: str) -> str:
    line = next(x for x in stderr.splitlines() if "nba ready on" in x)
    return line.split(" version ")[1].split()[0]


def test_every_decision_is_logged_with_the_customer_id_hashed(served: Served) -> None:
    record = logged(served.log, served.plain[0])
    customer = example(PLAIN[0]).customer_id
    digest = hmac.new(KEY, customer.encode(), hashlib.sha256).hexdigest()
    assert record.customer == f"hmac-sha256:{digest}"
    assert customer not in json.dumps(record.as_dict())
    assert record.ruleset_version == served.versions[0]


def test_served_decisions_replay_identical(served: Served) -> None:
    for decision_id in served.plain:
        code, output = replay(decision_id, served.log)
        assert code == 0, output
        assert output.rstrip().endswith(": identical")


def test_a_decision_on_stored_history_replays_identical_without_the_store(served: Served) -> None:
    record = logged(served.log, served.with_history)
    stored = [i for i in record.request["interactions"] if i[0] == SWITCH]
    assert stored and stored[0][5] == served.before_accept  # the merged ACCEPT, its decision
    assert SWITCH in [e["action"] for e in record.excluded]
    code, output = replay(served.with_history, served.log, "--format", "json")
    assert code == 0, output
    report = json.loads(output)
    assert report["identical"] and report["differences"] == []
    assert SWITCH in [e["action"] for e in report["replayed"]["excluded"]]


def test_after_a_rule_edit_and_reload_each_decision_replays_on_its_own_version(
    served: Served,
) -> None:
    old, new = served.versions
    assert old != new
    assert sorted(p.name for p in (served.log / "rulesets").iterdir()) == sorted([old, new])
    before = logged(served.log, served.before_accept)
    after = logged(served.log, served.after_reload)
    assert (before.ruleset_version, after.ruleset_version) == (old, new)
    assert [r["value"] for r in before.recommendations if r["action"] == SWITCH] == [200]
    assert [r["value"] for r in after.recommendations if r["action"] == SWITCH] == [300]
    for decision_id in (served.before_accept, served.after_reload):
        code, output = replay(decision_id, served.log)
        assert code == 0, output


def test_a_tampered_record_replays_with_exit_1_and_the_difference(
    served: Served, tmp_path: Path
) -> None:
    log = tmp_path / "log"
    shutil.copytree(served.log, log)
    target = served.plain[0]
    for log_file in log_files(log):
        lines = log_file.path.read_text().splitlines()
        for n, line in enumerate(lines):
            record = json.loads(line)
            if record["decision_id"] == target:
                record["recommendations"][0]["score"] *= 2
                record["excluded"] = record["excluded"][1:]
                lines[n] = json.dumps(record, separators=(",", ":"))
        log_file.path.write_text("\n".join(lines) + "\n")
    code, output = replay(target, log)
    assert code == 1, output
    assert "differs" in output
    assert "score of" in output and "excluded in the replay only" in output
    code, output = replay(target, log, "--format", "json")
    assert code == 1 and not json.loads(output)["identical"]


def test_an_unknown_decision_id_is_exit_2_naming_it(served: Served) -> None:
    code, output = replay("f" * 32, served.log)
    assert code == 2 and "f" * 32 in output and "not in the log" in output


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        (
            "--decision-log-drop",
            "profile.monthly_incme",
            "--decision-log-drop: 'profile.monthly_incme' is not a declared profile attribute"
            " (did you mean 'monthly_income'?)",
        ),
        ("--decision-log-mask", "customer_id", "--decision-log-mask: 'customer_id': expected"),
        ("--decision-log-sample", "0", "--decision-log-sample: got 0.0; expected more than 0"),
        ("--decision-log-max-age", "30", "--decision-log-max-age: got '30'; expected a duration"),
    ],
)
def test_serve_refuses_a_bad_decision_log_option_naming_it(
    tmp_path: Path, option: str, value: str, message: str
) -> None:
    command = [sys.executable, "-m", "nba", "serve", "--decision-log", str(tmp_path / "log")]
    result = subprocess.run(
        [*command, option, value, "--port", "0", "--http-port", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    assert message in result.stderr


@pytest.mark.parametrize("backend", ["jsonl", "sqlite"])
def test_two_workers_log_every_decision_and_archive_one_copy(tmp_path: Path, backend: str) -> None:
    log = tmp_path / "log"
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    args = ("--workers", "2", "--store", store, "--decision-log", str(log))
    ids: list[str] = []
    workers: set[str] = set()
    with serving(*args, "--decision-log-backend", backend) as server:
        options = [("grpc.use_local_subchannel_pool", 1)]  # a connection each: both workers
        channels = [
            grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options) for _ in range(6)
        ]
        try:
            for channel in channels:
                stub = pb_grpc.DecisionServiceStub(channel)
                ids += [stub.Decide(example(n), timeout=10).decision_id for n in PLAIN]
                workers.add(stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=10).worker)
        finally:
            for channel in channels:
                channel.close()
    reader = open_decision_log(log, backend)
    try:
        assert all(reader.find(i) is not None for i in ids)
    finally:
        reader.close()
    assert len(list((log / "rulesets").iterdir())) == 1
    if backend == "jsonl" and len(workers) == 2:  # the kernel chose both: a file each
        assert len({f.pid for f in log_files(log)}) == 2
    code, output = replay(ids[-1], log)
    assert code == 0, output


def test_decisions_of_a_learning_exploring_server_replay_identical(tmp_path: Path) -> None:
    """The log keeps the evidence scored with and the seed: Thompson draws replay exactly."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests", "examples"))
    header = rules / "ruleset.yaml"
    header.write_text(header.read_text().replace('exploration: "off"', "exploration: thompson"))
    log = tmp_path / "log"
    args = ("--rules", str(rules), "--store", f"sqlite:///{tmp_path / 'store.sqlite3'}")
    args += ("--decision-log", str(log), "--model-refresh", "0.2")
    with serving(*args) as server, grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        request = example("web_prospect_homepage.json")
        for i in range(30):
            outcome = pb.RecordOutcomeRequest(customer_id=f"c-{i}")
            outcome.interaction.action_id = SWITCH
            outcome.interaction.channel = "web"
            outcome.interaction.outcome = pb.CLICK
            stub.RecordOutcome(outcome, timeout=10)
        time.sleep(0.5)  # the worker re-reads the evidence
        ids = []
        for i in range(8):
            request.customer_id = f"visitor-{i}"
            ids.append(stub.Decide(request, timeout=10).decision_id)
        time.sleep(0.3)  # the log writer drains every 50 ms
    records = [logged(log, d) for d in ids]
    assert all(r.model and r.seed == r.decision_id for r in records)
    assert records[0].model[SWITCH][0] == pytest.approx(30, rel=1e-3)  # its positives
    assert any(rec.get("learned", {}).get("sampled") for r in records for rec in r.recommendations)
    for decision_id in ids:
        code, output = replay(decision_id, log)
        assert code == 0, output
        assert "identical" in output
