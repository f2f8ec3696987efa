"""`nba test`: the bundled scenarios pass, and a failing one explains itself."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from nba.authoring import scenarios as sc
from nba.pipeline.decider import Decider
from tests.conftest import REPO, RULES
from tests.helpers import BASE, action, write_rules


def nba_test(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "nba", "test", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_bundled_scenarios_pass(bank_decider: Decider) -> None:
    found, errors = sc.load_scenarios(RULES, Path("rules"))
    assert not errors
    assert len(found) >= 20
    outcomes = [sc.run_scenario(bank_decider, s) for s in found]
    failing = {o.scenario.name: o.failures or [o.error] for o in outcomes if o.status != "PASS"}
    assert failing == {}


def test_nba_test_cli_reports_a_summary() -> None:
    result = nba_test("rules", "--run", "retention")
    assert result.returncode == 0, result.stdout + result.stderr
    assert " passed, 0 failed (rules version " in result.stdout


def scenario_rules(tmp_path: Path, scenario: str) -> Path:
    return write_rules(
        tmp_path / "rules",
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n"
            + action("gold", value=100, extra="eligible: profile.age >= 18")
            + action("basic", group="basic", value=10),
            "tests/basics.yaml": scenario,
        },
    )


SCENARIOS = """
scenarios:
  - name: adults get gold
    request:
      customerId: c1
      lifecycleStage: active
      profile: {age: 30}
      touchpoint: {channel: web}
    expect: {top_action: gold, channel: web, count: 2, score_order: [gold, basic]}
  - name: wrong on purpose
    request:
      customerId: c1
      lifecycleStage: active
      profile: {age: 15}
      touchpoint: {channel: web}
    expect:
      top_action: gold
      excluded:
        - {action: gold, rule: gold.eligible.nope}
"""


def test_a_failure_shows_expectation_decision_and_rules(tmp_path: Path) -> None:
    rules = scenario_rules(tmp_path, SCENARIOS)
    result = nba_test(str(rules))
    assert result.returncode == 1
    out = result.stdout
    assert "FAIL " in out and "basics.yaml:9:5: wrong on purpose" in out
    assert "top_action: expected gold, got basic" in out
    expected = "excluded: expected gold excluded by gold.eligible.nope, but it was excluded by"
    assert f"{expected} gold.eligible\n" in out
    assert "1. basic on web" in out
    assert "gold: gold.eligible: Not eligible: requires that age is at least 18" in out
    assert "1 passed, 1 failed" in out
    report = json.loads(nba_test(str(rules), "--format", "json").stdout)
    assert [(r["name"], r["status"]) for r in report] == [
        ("adults get gold", "PASS"),
        ("wrong on purpose", "FAIL"),
    ]


def test_scenario_file_mistakes_are_located(tmp_path: Path) -> None:
    rules = scenario_rules(
        tmp_path,
        "scenarios:\n  - name: x\n    request: {customerId: c}\n    expect: {top_acton: gold}\n",
    )
    result = nba_test(str(rules))
    assert result.returncode == 2
    assert "basics.yaml:4:14: error[scenario]: unknown expectation 'top_acton'" in result.stderr
    assert "did you mean 'top_action'?" in result.stderr
