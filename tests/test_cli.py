"""The nba command line, run as a user runs it."""

from __future__ import annotations

import json
import os
import pty
import re
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
import pytest

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import EXAMPLES, REPO, RULES, example
from tests.helpers import BASE, action, served, write_rules

NBA = [sys.executable, "-m", "nba"]


def run(
    *args: str, cwd: Path = REPO, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*NBA, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **(env or {})},
    )


def broken_rules(tmp_path: Path) -> Path:
    return write_rules(
        tmp_path / "broken",
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n"
            + action("a1", extra="eligible: profile.incom > 5 and lifecycle == 'actve'"),
        },
    )


def test_validate_ok_on_the_bundled_rules() -> None:
    result = run("validate", "rules")
    assert result.returncode == 0, result.stderr
    assert re.match(r"rules: ok, version [0-9a-f]{12} \(\d+ actions, \d+ rules", result.stdout)


def test_validate_reports_every_error_and_exits_1(tmp_path: Path) -> None:
    result = run("validate", str(broken_rules(tmp_path)))
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert lines[0] == "2 errors occurred:"
    assert re.match(
        r".*broken/actions\.yaml:12:15: error\[type\]: unknown profile attribute 'incom'", lines[1]
    )
    assert "did you mean 'income'?" in lines[1]
    assert "did you mean 'active'?" in lines[2]


def test_validate_json_for_editors(tmp_path: Path) -> None:
    result = run("validate", str(broken_rules(tmp_path)), "--format", "json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["valid"] is False
    first = report["errors"][0]
    assert (first["line"], first["column"], first["code"]) == (12, 15, "type")
    assert first["hint"] == "did you mean 'income'?"


def test_decide_prints_a_table_and_json() -> None:
    path = EXAMPLES / "call_center_at_risk.json"
    table = run("decide", str(path))
    assert table.returncode == 0, table.stderr
    expected = list(
        __import__("nba.pipeline.decider", fromlist=["Decider"])
        .Decider(__import__("nba.ruleset.loader", fromlist=["x"]).load_ruleset(RULES))
        .decide(example("call_center_at_risk.json"))
        .recommendations
    )
    assert expected[0].action_id in table.stdout
    assert "call_center" in table.stdout
    as_json = run("decide", str(path), "--json")
    response = json.loads(as_json.stdout)
    assert [r["actionId"] for r in response["recommendations"]] == [r.action_id for r in expected]


def test_decide_rejects_a_malformed_request_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"customerId": "c", "lifecycleStage": "active", "profile": {"age": "x"}}')
    result = run("decide", str(bad))
    assert result.returncode == 2
    assert "profile.age" in result.stderr
    bad.write_text("{not json")
    assert run("decide", str(bad)).returncode == 2


@pytest.mark.slow
def test_serve_logs_one_ready_line_and_answers(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    with served("--rules", str(RULES), "--port", "0", "--store", store, "--workers", "1") as server:
        match = re.search(
            r"ready on 127\.0\.0\.1:\d+ \| rules .* version ([0-9a-f]{12}) \((\d+) actions",
            server.ready,
        )
        assert match, server.ready
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            response = pb_grpc.DecisionServiceStub(channel).Decide(
                example("web_prospect_homepage.json"), timeout=10
            )
        assert response.ruleset_version == match.group(1)
        assert response.recommendations


def test_serve_refuses_broken_rules(tmp_path: Path) -> None:
    result = run(
        "serve", "--rules", str(broken_rules(tmp_path)), "--port", "0", "--store", "memory://"
    )
    assert result.returncode == 1
    assert "unknown profile attribute 'incom'" in result.stderr


@pytest.mark.slow
def test_workers_share_one_port_and_all_answer(tmp_path: Path) -> None:
    """--workers 2: two processes on one port; several channels reach both."""
    store = f"sqlite:///{tmp_path}/s.db"
    args = ("--rules", str(RULES), "--port", "0", "--workers", "2", "--store", store, "--no-watch")
    with served(*args) as server:
        assert re.search(r"\| workers 2$", server.ready.strip()), server.ready
        seen_pids: set[str] = set()
        for _ in range(20):  # balancing is per connection: a new channel each time
            with grpc.insecure_channel(
                f"127.0.0.1:{server.port}", options=[("grpc.use_local_subchannel_pool", 1)]
            ) as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                response = stub.Decide(example("web_prospect_homepage.json"), timeout=10)
                assert response.recommendations
                status = stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=10)
                seen_pids.add(status.worker)
        assert len(seen_pids) == 2


def test_memory_store_refuses_several_workers(tmp_path: Path) -> None:
    result = run("serve", "--port", "0", "--workers", "2", "--store", "memory://")
    assert result.returncode == 2
    assert "keeps history inside one process" in result.stderr


@pytest.mark.slow
def test_a_worker_that_dies_is_replaced(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/s.db"
    args = ("--rules", str(RULES), "--port", "0", "--workers", "2", "--store", store, "--no-watch")
    with served(*args) as server:

        def worker_pid() -> int:
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                status = stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=10)
                return int(status.worker.rsplit(":", 1)[1])

        victim = worker_pid()
        os.kill(victim, signal.SIGKILL)
        restarted = next(line for line in server.lines if "starting another" in line)
        assert str(victim) in restarted
        deadline = time.monotonic() + 30
        answered = False
        while time.monotonic() < deadline and not answered:
            try:
                answered = worker_pid() != victim
            except grpc.RpcError:
                time.sleep(0.2)
        assert answered


def test_gen_customers_then_simulate(tmp_path: Path) -> None:
    base = tmp_path / "base.jsonl"
    made = run("gen-customers", "-n", "150", "--seed", "4", "-o", str(base))
    assert made.returncode == 0, made.stderr
    assert made.stderr.strip() == f"wrote 150 customers to {base}"
    assert len(base.read_text().splitlines()) == 150
    result = run("simulate", str(base), "--workers", "1", "--format", "json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["customers"] == report["decisions"] == 150
    base_counts = report["base"]
    decided = sum(base_counts["top_actions"].values()) + base_counts["no_recommendation"]
    assert decided == 150 - base_counts["invalid"]
    again = run("simulate", str(base), "--workers", "1", "--against", "rules", "--format", "json")
    assert json.loads(again.stdout)["changes"]["changed"] == 0


def test_simulate_names_the_bad_line(tmp_path: Path) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"customerId": "c1", "lifecycleStage": "active"}\n{not json\n')
    result = run("simulate", str(bad), "--workers", "1")
    assert result.returncode == 2
    assert f"{bad}:2:" in result.stderr


@pytest.mark.slow
def test_stateless_serving_decides_but_records_nothing() -> None:
    """--store none: requests carry their history; RecordOutcome says there is no store."""
    args = ("--rules", str(RULES), "--port", "0", "--store", "none", "--workers", "2")
    with served(*args, "--no-watch") as server:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            stub = pb_grpc.DecisionServiceStub(channel)
            assert stub.Decide(example("web_prospect_homepage.json"), timeout=10).recommendations
            record = pb.RecordOutcomeRequest(customer_id="c1")
            record.interaction.action_id = "card_cashback"
            record.interaction.channel = "web"
            record.interaction.outcome = pb.CLICK
            with pytest.raises(grpc.RpcError) as caught:
                stub.RecordOutcome(record, timeout=10)
        assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
        assert "--store none" in caught.value.details()


# ---------------------------------------------------------------------------- consistency
# Issue 11 item 12: every command speaks JSON when asked, errors included; the help has no
# stray `<bool>`; the mistakes a new author makes get a message that says what to do.

REQUEST = str(EXAMPLES / "call_center_at_risk.json")
RESULTS_AS_JSON = {
    "validate": ("validate", "rules"),
    "check": ("check", "rules", "--examples", "2", "--seed", "1"),
    "test": ("test", "rules", "--run", "opted out"),
    "explain": ("explain", REQUEST, "--action", "ret_fee_waiver"),
    "decide": ("decide", REQUEST),
}


@pytest.mark.parametrize("command", RESULTS_AS_JSON)
def test_every_command_that_prints_results_prints_json(command: str) -> None:
    result = run(*RESULTS_AS_JSON[command], "--format", "json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    if command == "check":
        assert report["failed"] == 0 and len(report["properties"]) == report["passed"] == 8
    elif command == "explain":
        assert [a["action"] for a in report["actions"]] == ["ret_fee_waiver"]
        assert report["actions"][0]["checks"][0]["where"].startswith("rules/actions/")
    elif command == "decide":  # --json stays, as an alias
        alias = json.loads(run(*RESULTS_AS_JSON[command], "--json").stdout)
        assert alias["recommendations"] == report["recommendations"]
    elif command == "test":
        assert report and all(s["status"] == "PASS" for s in report)


ERRORS_AS_JSON = {
    "validate": ("validate", "nosuchdir"),
    "check": ("check", "nosuchdir"),
    "test": ("test", "nosuchdir"),
    "explain": ("explain", REQUEST, "--rules", "nosuchdir"),
    "simulate": ("simulate", REQUEST, "--rules", "nosuchdir"),
    "decide": ("decide", REQUEST, "--rules", "nosuchdir"),
    "decide --json": ("decide", REQUEST, "--rules", "nosuchdir", "--json"),
    "a usage error": ("simulate", REQUEST, "--workers", "0"),
}


@pytest.mark.parametrize("command", ERRORS_AS_JSON)
def test_errors_are_json_on_stdout_under_format_json(command: str) -> None:
    args = ERRORS_AS_JSON[command]
    result = run(*args) if "--json" in args else run(*args, "--format", "json")
    assert result.returncode in (1, 2)
    assert result.stderr == ""
    report = json.loads(result.stdout)
    if command == "validate":  # validate's own report, as before
        assert report["valid"] is False
        assert "'nosuchdir' does not exist" in report["errors"][0]["message"]
    elif command == "a usage error":
        assert report["exit_code"] == result.returncode == 2
        assert "--workers" in report["error"]
    else:
        assert report["exit_code"] == result.returncode == 1
        assert "rules directory 'nosuchdir' does not exist" in report["error"]
        assert report["errors"][0]["code"] == "io"


def test_check_shows_progress_on_a_terminal_only(tmp_path: Path) -> None:
    """Progress goes to stderr when it is a terminal, and never into a pipe or a log,
    even with FORCE_COLOR (set by many CI systems, it makes rich treat a pipe as a TTY)."""
    args = ("check", "rules", "--examples", "3", "--seed", "1")
    piped = run(*args, env={"FORCE_COLOR": "1"})
    assert piped.returncode == 0, piped.stdout
    assert piped.stderr == ""
    written, stdout = run_with_stderr_on_a_terminal(*args)
    on_a_terminal = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", written)  # colours, cursor moves
    assert "8 passed, 0 failed" in stdout
    assert "checking consent" in on_a_terminal
    assert "24/24 customers" in on_a_terminal  # 8 properties x 3 customers


def run_with_stderr_on_a_terminal(*args: str, timeout: float = 60) -> tuple[str, str]:
    """(what the command wrote to its terminal stderr, its stdout)."""
    terminal, child_end = pty.openpty()
    process = subprocess.Popen(
        [*NBA, *args],
        cwd=REPO,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=child_end,
        env={**os.environ, "COLUMNS": "120"},
    )
    os.close(child_end)
    written = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([terminal], [], [], 0.2)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(terminal, 65536)
            except OSError:  # EIO: the child closed its end
                break
            if not chunk:
                break
            written += chunk
        stdout, _ = process.communicate(timeout=30)
    finally:
        os.close(terminal)
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
    assert process.returncode == 0
    return written.decode("utf-8", "replace"), stdout.decode()


def test_gen_customers_refuses_a_negative_count() -> None:
    result = run("gen-customers", "-n", "-5")
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Invalid value for '-n'" in result.stderr
    assert "greater than or equal to 0" in result.stderr


def test_simulate_on_a_pretty_printed_file_asks_for_one_request_per_line() -> None:
    result = run("simulate", REQUEST, "--workers", "1")
    assert result.returncode == 2
    assert result.stderr.startswith(f"{REQUEST}:1: not JSON")
    assert "expected one DecideRequest per line (JSON Lines)" in result.stderr
    assert "pretty-printed" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ("validate", "rules/ruleset.yaml"),
        ("decide", REQUEST, "--rules", "rules/ruleset.yaml"),
        ("simulate", REQUEST, "--against", "rules/ruleset.yaml"),
        ("serve", "--rules", "rules/ruleset.yaml", "--port", "0", "--store", "memory://"),
    ],
)
def test_a_rule_file_given_for_the_rules_directory_is_named_as_such(args: tuple[str, ...]) -> None:
    result = run(*args, env={"COLUMNS": "300"})
    assert result.returncode == 2
    assert (
        "'rules/ruleset.yaml' is a file, not a rules directory; give the directory that holds"
        " it (rules)"
    ) in result.stderr


@pytest.mark.parametrize("command", [(), ("validate",), ("decide",), ("serve",), ("simulate",)])
def test_the_help_shows_flags_without_a_value_type(command: tuple[str, ...]) -> None:
    result = run(*command, "--help", env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    assert "--help" in result.stdout
    assert "<bool>" not in result.stdout
    assert "<path>" in result.stdout or not command  # other types are still shown


def test_decide_names_the_customers_experiment_arms(tmp_path: Path) -> None:
    from tests.experiments.bank import HOSTILE, bank_with

    bank_with(HOSTILE.format(treatment="none"), tmp_path)
    shown = run(
        "decide", str(EXAMPLES / "web_prospect_homepage.json"), "--rules", str(tmp_path / "rules")
    )
    assert shown.returncode == 0, shown.stderr
    arms = next(line for line in shown.stdout.splitlines() if line.startswith("arms: "))
    assert "universal_control=" in arms
    as_json = json.loads(
        run(
            "decide",
            str(EXAMPLES / "web_prospect_homepage.json"),
            "--rules",
            str(tmp_path / "rules"),
            "--json",
        ).stdout
    )
    assert "universal_control" in as_json["arms"]
