"""`nba report`: rates, intervals, uplift and sample-ratio mismatch, over a real decision log
and store, and the HTML report in a real browser."""

from __future__ import annotations

import dataclasses
import json
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from nba.authoring.report import (
    Rate,
    Report,
    chi_square_survival,
    report,
    srm_p_value,
    uplift,
)
from nba.authoring.report_html import render
from nba.decisionlog import LogSettings, detect_backend, open_decision_log
from nba.decisionlog.writer import DecisionRecorder
from nba.errors import Location
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction
from nba.pipeline.validate import RequestValidator
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import Arm, Experiment, RuleSet
from nba.store import open_store, prepared
from tests.conftest import RULES, example

# --- the statistics ------------------------------------------------------------------------


def test_the_wilson_interval_and_the_delta_method_give_the_textbook_numbers() -> None:
    rate = Rate.of(10, 100)
    assert (rate.low, rate.high) == pytest.approx((0.0552, 0.1744), abs=1e-4)
    assert Rate.of(0, 50).low == pytest.approx(0.0, abs=1e-12) and Rate.of(
        0, 50
    ).high == pytest.approx(0.0713, abs=1e-4)
    lift = uplift(Rate.of(120, 1000), Rate.of(100, 1000))
    half = 1.959964 * (0.12 * 0.88 / 1000 + 0.1 * 0.9 / 1000) ** 0.5
    assert lift.difference == pytest.approx(0.02)
    assert (lift.difference_low, lift.difference_high) == pytest.approx((0.02 - half, 0.02 + half))
    assert lift.relative == pytest.approx(0.2)
    assert lift.relative_low is not None and lift.relative_low < 0 < 0.2 < lift.relative_high  # type: ignore[operator]


@pytest.mark.parametrize(("x", "df"), [(3.841459, 1), (5.991465, 2), (7.814728, 3), (11.0705, 5)])
def test_chi_square_tails_at_the_five_percent_critical_values(x: float, df: int) -> None:
    assert chi_square_survival(x, df) == pytest.approx(0.05, abs=1e-5)


def test_a_sample_ratio_mismatch_is_flagged_and_a_fair_split_is_not() -> None:
    assert srm_p_value([5030, 4970], [0.5, 0.5]) > 0.5
    assert srm_p_value([5300, 4700], [0.5, 0.5]) < 1e-8
    assert srm_p_value([9000, 1000], [0.9, 0.1]) == pytest.approx(1.0)


# --- a campaign through the real log and store ---------------------------------------------

TRUE_RATES = {"champion": 0.10, "challenger": 0.15}


@dataclasses.dataclass
class Campaign:
    log_dir: Path
    store_url: str
    ruleset: RuleSet
    found: Report


def with_experiment(ruleset: RuleSet, shares: tuple[float, float]) -> RuleSet:
    """The bundled rules with a declared 2-arm experiment (its assignment is done here)."""
    at = Location("rules/experiments.yaml", 1, 1)
    arms = tuple(Arm(a, s, at) for a, s in zip(TRUE_RATES, shares, strict=True))
    experiment = Experiment("hero_copy", "salt-1", "web", arms, "champion", at)
    return dataclasses.replace(ruleset, experiments=(experiment,))


def logged_report(log_dir: Path, store: Any, ruleset: RuleSet) -> Report:
    """nba report over the decision log in `log_dir`, as the command reads it."""
    reader = open_decision_log(log_dir, detect_backend(log_dir))
    try:
        return report(reader.records(), store, ruleset)
    finally:
        reader.close()


def run_campaign(tmp_path: Path, customers: int, challenger_share: float) -> Campaign:
    """Decide for each customer, put them in an arm (as nba/experiments would), record an
    impression for the first recommendation and a click with the arm's true rate."""
    ruleset = with_experiment(load_ruleset(RULES), (0.5, 0.5))
    decider = Decider(ruleset, "reference")
    validator = RequestValidator(ruleset)
    store_url = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    store = open_store(store_url, retention_seconds=400 * 86400)
    recorder = DecisionRecorder(LogSettings(tmp_path / "log"))
    rng = random.Random(7)
    message = example("web_prospect_homepage.json")
    for n in range(customers):
        message.customer_id = f"c-{n:05d}"
        decision = decider.decide_request(validator.validate(message), f"d-{n:05d}")
        arm = "challenger" if rng.random() < challenger_share else "champion"
        decision.arms = {"hero_copy": arm}
        recorder.submit(decision)
        first = decision.picks[0]
        at = decision.request.as_of
        outcomes = [1, 2] if rng.random() < TRUE_RATES[arm] else [1]
        for i, outcome in enumerate(outcomes):
            item = Interaction(
                first.action.id, first.channel, outcome, at + i, "", decision.decision_id
            )
            store.record(message.customer_id, prepared(message.customer_id, item))
    recorder.close()
    found = logged_report(tmp_path / "log", store, ruleset)
    return Campaign(tmp_path / "log", store_url, ruleset, found)


@pytest.fixture(scope="module")
def campaign(tmp_path_factory: pytest.TempPathFactory) -> Campaign:
    return run_campaign(tmp_path_factory.mktemp("campaign"), 3000, 0.5)


def test_the_report_counts_what_was_recorded_per_action_channel_and_arm(campaign: Campaign) -> None:
    found = campaign.found
    assert found.decisions == 3000
    firsts = [r for r in found.rows if r.impressions]
    assert {r.arm for r in firsts} == {"hero_copy=champion", "hero_copy=challenger"}
    assert sum(r.impressions for r in firsts) == 3000  # one impression per decision
    for row in firsts:
        truth = TRUE_RATES[row.arm.split("=")[1]]
        assert row.rate.low < truth < row.rate.high  # seeded: holds for this run
        value = campaign.ruleset.actions[row.action_id].value
        assert row.value_per_impression == pytest.approx(row.positives * value / row.impressions)


def test_the_challengers_uplift_is_near_the_truth_and_its_interval_excludes_zero(
    campaign: Campaign,
) -> None:
    (experiment,) = campaign.found.experiments
    assert not experiment.srm
    challenger = next(a for a in experiment.arms if a.arm == "challenger")
    assert challenger.uplift is not None
    truth = TRUE_RATES["challenger"] - TRUE_RATES["champion"]
    lift = challenger.uplift
    standard_error = (lift.difference_high - lift.difference_low) / (2 * 1.959964)
    assert abs(lift.difference - truth) < 3 * standard_error  # 99.7% of runs
    assert lift.difference_low > 0  # 3,000 decisions tell 15% from 10%
    assert sum(a.customers for a in experiment.arms) == 3000


def test_arms_far_from_their_shares_are_flagged(tmp_path: Path) -> None:
    skewed = run_campaign(tmp_path, 600, 0.7)  # declared 50/50
    (experiment,) = skewed.found.experiments
    assert experiment.srm and experiment.srm_p < 1e-3


# --- the command and the page ----------------------------------------------------------------


def test_nba_report_prints_json_and_writes_the_html_page(
    campaign: Campaign, tmp_path: Path
) -> None:
    """The CLI reads the rules' experiments from files: with none declared, the arm rows
    still come from the log."""
    base = [sys.executable, "-m", "nba", "report", "--log", str(campaign.log_dir)]
    base += ["--store", campaign.store_url, "--rules", str(RULES)]
    shown = subprocess.run([*base, "--format", "json"], capture_output=True, text=True, timeout=120)
    assert shown.returncode == 0, shown.stderr
    body = json.loads(shown.stdout)
    assert body["decisions"] == 3000
    assert {r["arm"] for r in body["rows"]} >= {"hero_copy=champion", "hero_copy=challenger"}
    shown_first = [r for r in body["rows"] if r["impressions"]]
    assert all(r["rate"]["value"] == r["positives"] / r["impressions"] for r in shown_first)
    assert body["models"]  # the bundled rules learn: maturity per action
    page = tmp_path / "report.html"
    made = subprocess.run(
        [*base, "--format", "html", "--out", str(page)], capture_output=True, text=True, timeout=120
    )
    assert made.returncode == 0, made.stderr
    assert page.read_text().startswith("<!doctype html>")


@pytest.fixture
def opened(browser: Browser, campaign: Campaign, tmp_path: Path) -> Iterator[object]:
    page_file = tmp_path / "report.html"
    page_file.write_text(render(campaign.found, "campaign <hero> report"))
    context = browser.new_context(viewport={"width": 1100, "height": 900})
    page = context.new_page()
    page.goto(page_file.as_uri())
    yield page
    context.close()


def test_the_html_report_draws_each_arms_rate_with_its_interval(opened: object) -> None:
    page = opened
    assert page.title() == "campaign <hero> report"  # type: ignore[attr-defined]
    section = page.locator("section.experiment[data-experiment=hero_copy]")  # type: ignore[attr-defined]
    bars = section.locator("svg.chart rect.bar")
    assert bars.count() == 2
    widths = [float(bars.nth(i).bounding_box()["width"]) for i in range(2)]
    rates = [float(bars.nth(i).get_attribute("data-rate")) for i in range(2)]
    assert (widths[0] < widths[1]) == (rates[0] < rates[1])  # drawn to scale
    assert section.locator("svg.chart line.ci").count() == 2
    assert section.locator(".srm").count() == 0
    assert "control" in section.locator("table").inner_text()


def test_a_small_controls_relative_interval_stays_above_minus_100_percent() -> None:
    from nba.authoring.report import Rate, uplift

    lift = uplift(Rate.of(96, 1794), Rate.of(2, 206))  # a hold-out with 2 clicks
    assert lift.relative is not None and lift.relative_low is not None
    assert lift.relative_high is not None
    assert -1.0 < lift.relative_low < lift.relative < lift.relative_high
    none = uplift(Rate.of(0, 500), Rate.of(20, 500))
    assert none.relative == -1.0 and none.relative_low == -1.0


def test_budget_use_is_reported_from_the_store_and_drawn_over_its_window(
    browser: Browser, tmp_path: Path
) -> None:
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests", "examples"))
    (rules / "budgets.yaml").write_text(
        "budgets:\n  - {id: easy_access, limit: 10, per: day, actions: [sav_easy_access]}\n"
    )
    ruleset = load_ruleset(rules)
    store = open_store(f"sqlite:///{tmp_path / 'store.db'}", retention_seconds=86400)
    decider = Decider(ruleset, "reference", store=store)
    recorder = DecisionRecorder(LogSettings(tmp_path / "log"))
    message = example("web_prospect_homepage.json")
    for n in range(25):
        message.customer_id = f"b-{n}"
        recorder.submit(decider.decide_request(decider.validator.validate(message)))
    recorder.close()
    found = logged_report(tmp_path / "log", store, ruleset)
    (use,) = found.budgets
    assert (use.budget, use.used, use.limit, use.window) == ("easy_access", 10, 10, "today")
    assert use.spent[-1][1] == 10  # the log holds the 10 recommendations the budget allowed
    assert all(0 <= f <= 1 for f, _ in use.spent)
    page_file = tmp_path / "report.html"
    page_file.write_text(render(found))
    context = browser.new_context()
    page = context.new_page()
    page.goto(page_file.as_uri())
    chart = page.locator("svg.budget[data-budget=easy_access]")
    assert chart.locator("polyline.spent").count() == 1
    assert chart.locator("polyline.limit").count() == 1
    assert "easy_access" in page.locator("section.budgets table").inner_text()
    context.close()
    store.close()
