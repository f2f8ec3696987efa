"""Budgets in decisions: a budget of N is never exceeded, the next best action takes a spent
one's place, pacing holds back early in the window, and nothing a budget does adds a pick."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections import Counter
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from nba.authoring.explain import explain
from nba.authoring.strategies import struct_of
from nba.errors import StoreError
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from nba.store import InteractionStore
from nba.store.memory import MemoryStore
from nba.v1 import decisioning_pb2 as pb
from tests.helpers import BASE, action, write_rules

LONDON = ZoneInfo("Europe/London")
WORKER = Path(__file__).with_name("budget_decider_worker.py")
REPO_ROOT = Path(__file__).resolve().parents[2]
ACTIONS = (
    "actions:\n"
    + action("gold", value=100)
    + action("basic", value=50)
    + action("loan", group="loans", value=40)
    + action("tips", purpose="service", group="service", value=1)
)
SETTINGS = """
ruleset: {name: budgets, time_zone: Europe/London}
arbitration: {max_results: 2}
fallbacks:
  - action: tips
"""
BUDGETS = """
budgets:
  - id: gold_daily
    limit: 5
    per: day
    actions: [gold]
  - id: loans_paced
    limit: 48
    per: day
    groups: [loans]
    channel: web
    paced: true
"""


class FakeClock:
    def __init__(self, *local: int) -> None:
        self.now = datetime(*local, tzinfo=LONDON).timestamp()  # type: ignore[misc]

    def __call__(self) -> float:
        return self.now


def rules(tmp_path: Path, budgets: str = BUDGETS) -> Path:
    files = {"base.yaml": BASE, "actions.yaml": ACTIONS, "settings.yaml": SETTINGS}
    if budgets:
        files["budgets.yaml"] = budgets
    return write_rules(tmp_path / "rules", files)


def make_decider(
    tmp_path: Path,
    budgets: str = BUDGETS,
    store: InteractionStore | None = None,
    clock: FakeClock | None = None,
) -> Decider:
    ruleset = load_ruleset(rules(tmp_path, budgets), display_root="rules")
    return Decider(ruleset, "reference", store, clock=clock or FakeClock(2026, 12, 4, 12))


def request(customer: str, channel: str = "web", **fields: object) -> pb.DecideRequest:
    msg = pb.DecideRequest(customer_id=customer, lifecycle_stage="active", explain=True, **fields)  # type: ignore[arg-type]
    msg.profile.CopyFrom(struct_of({"age": 30}))
    if channel:
        msg.touchpoint.channel = channel
    return msg


def picks(response: pb.DecideResponse) -> list[str]:
    return [r.action_id for r in response.recommendations]


def test_a_budget_is_never_exceeded_and_the_next_best_takes_the_place(tmp_path: Path) -> None:
    decider = make_decider(tmp_path)
    responses = [decider.decide(request(f"c{i}", "call_center")) for i in range(12)]
    assert [picks(r) for r in responses[:5]] == [["gold", "basic"]] * 5
    assert [picks(r) for r in responses[5:]] == [["basic", "loan"]] * 7
    assert Counter(a for r in responses for a in picks(r))["gold"] == 5
    assert decider.budget_store is not None
    assert decider.budget_store.budget_counts() == {"b|gold_daily|2026-12-04": 5}


def test_the_exclusion_names_the_budget_its_counts_and_where_it_is_written(
    tmp_path: Path,
) -> None:
    decider = make_decider(tmp_path)
    for i in range(5):
        decider.decide(request(f"c{i}", "call_center"))
    refused = {e.action_id: e for e in decider.decide(request("late", "call_center")).excluded}
    gold = refused["gold"]
    assert (gold.stage, gold.rule) == ("budget", "gold_daily")
    assert gold.reason == "budget gold_daily is spent: 5 of 5 today"
    assert (gold.file, gold.line, gold.channel) == ("rules/budgets.yaml", 2, "call_center")


def test_a_new_day_starts_the_budget_afresh(tmp_path: Path) -> None:
    clock = FakeClock(2026, 12, 4, 23, 59)
    decider = make_decider(tmp_path, clock=clock)
    for i in range(5):
        assert "gold" in picks(decider.decide(request(f"c{i}", "call_center")))
    assert "gold" not in picks(decider.decide(request("spent", "call_center")))
    clock.now += 120  # 00:01 on the 5th, London time
    assert "gold" in picks(decider.decide(request("tomorrow", "call_center")))


def test_pacing_holds_back_at_the_start_of_the_window(tmp_path: Path) -> None:
    """48 a day, paced: one by 00:30, then two an hour; only on web, never elsewhere."""
    clock = FakeClock(2026, 12, 4, 0, 30)
    decider = make_decider(tmp_path, clock=clock)

    def loans(prefix: str, count: int, channel: str = "web") -> int:
        decided = [
            decider.decide(request(f"{prefix}{i}", channel, max_results=3)) for i in range(count)
        ]
        return sum("loan" in picks(r) for r in decided)

    assert loans("a", 10) == 1  # ceil(48 x 0.5 / 24) = 1
    clock.now += 3600  # 01:30: ceil(48 x 1.5 / 24) = 3
    assert loans("b", 10) == 2
    refused = {e.action_id: e for e in decider.decide(request("x", max_results=3)).excluded}
    assert refused["loan"].reason == "budget loans_paced is paced: 3 of 48 today, 3 allowed by now"
    assert loans("c", 10, "call_center") == 10  # the budget counts web only


def test_without_budgets_the_store_is_never_asked(tmp_path: Path) -> None:
    class NoBudgets(MemoryStore):
        def take_budget(self, claims: object, expires_at: float) -> tuple[bool, list[int]]:
            raise AssertionError("take_budget called without budgets")

    decider = make_decider(tmp_path, budgets="", store=NoBudgets(retention_seconds=86400))
    assert decider.budgets is None
    assert picks(decider.decide(request("c1"))) == ["gold", "basic"]


def test_a_store_error_drops_the_budgeted_picks_and_marks_the_decision_degraded(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    class Failing(MemoryStore):
        def take_budget(self, claims: object, expires_at: float) -> tuple[bool, list[int]]:
            raise StoreError("redis take_budget failed: connection refused")

    decider = make_decider(tmp_path, store=Failing(retention_seconds=86400))
    response = decider.decide(request("c1", "call_center"))
    assert picks(response) == ["basic", "loan"]  # loan: its budget is on web only
    assert response.degraded
    gold = {e.action_id: e for e in response.excluded}["gold"]
    assert gold.reason == "budget gold_daily could not be counted (store error)"
    assert "budgets not counted" in caplog.text


def test_explain_shows_the_story_without_spending_the_budget(tmp_path: Path) -> None:
    decider = make_decider(tmp_path)
    validated = decider.validator.validate(request("c1", "call_center"), decider.clock())
    for _ in range(10):
        story = explain(decider, validated)
    assert [p.action.id for p in story.decision.picks] == ["gold", "basic"]
    assert decider.budget_store is not None
    assert decider.budget_store.budget_counts() == {}


def test_a_spent_budget_only_removes_picks_and_never_breaks_consent(tmp_path: Path) -> None:
    """Outbound, opted out of the call center: the budget's replacements never land there,
    and every budgeted decision recommends only what an unbudgeted ranking allows."""
    budgeted = make_decider(tmp_path)
    free = make_decider(tmp_path / "free", budgets="")
    chosen: set[tuple[str, str]] = set()
    for i in range(12):
        msg = request(f"c{i}", channel="")
        msg.consent.update({"email": True, "call_center": False})
        picked = {(r.action_id, r.channel) for r in budgeted.decide(msg).recommendations}
        msg.max_results = 4
        allowed = {(r.action_id, r.channel) for r in free.decide(msg).recommendations}
        assert picked <= allowed
        assert all(channel != "call_center" for _, channel in picked)
        chosen |= picked
    assert {a for a, _ in chosen} == {"gold", "basic", "loan"}  # loan replaced gold


def test_the_fallback_counts_against_a_budget_too(tmp_path: Path) -> None:
    decider = make_decider(
        tmp_path,
        "budgets:\n  - {id: tips_cap, limit: 1, per: day, actions: [tips]}\n"
        "  - {id: none, limit: 0, per: day, actions: [gold, basic, loan]}\n",
    )
    assert picks(decider.decide(request("c1"))) == ["tips"]
    response = decider.decide(request("c2"))
    assert picks(response) == []
    assert {e.action_id: e.rule for e in response.excluded}["tips"] == "tips_cap"


def test_two_processes_deciding_on_one_sqlite_store_never_exceed_the_limit(
    tmp_path: Path,
) -> None:
    """Two real processes, 40 decisions each, one budget of 25 in total: 25 golds exactly."""
    directory = rules(
        tmp_path, "budgets:\n  - {id: gold_total, limit: 25, per: total, actions: [gold]}\n"
    )
    url = f"sqlite:///{tmp_path}/shared.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    workers = [
        subprocess.Popen(
            [sys.executable, str(WORKER), str(directory), url, "40"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        for _ in range(2)
    ]
    try:
        for proc in workers:
            assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
        for proc in workers:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        counts = [json.loads(proc.communicate(timeout=120)[0]) for proc in workers]
    finally:
        for proc in workers:
            proc.kill()
            proc.communicate()
    assert sum(c.get("gold", 0) for c in counts) == 25
    assert sum(sum(c.values()) for c in counts) == 2 * 40 * 2  # every decision kept two picks


def test_two_picks_sharing_a_budget_with_room_for_one_keep_the_better(tmp_path: Path) -> None:
    decider = make_decider(
        tmp_path, "budgets:\n  - {id: cards_cap, limit: 3, per: week, groups: [cards]}\n"
    )
    assert picks(decider.decide(request("c1"))) == ["gold", "basic"]
    response = decider.decide(request("c2"))
    assert picks(response) == ["gold", "loan"]  # basic had no room left: loan took its place
    refused = {e.action_id: e for e in response.excluded}["basic"]
    assert refused.reason == "budget cards_cap is spent: 3 of 3 this week"
    assert picks(decider.decide(request("c3"))) == ["loan", "tips"]


def test_a_store_that_refuses_without_reason_cannot_make_a_decision_loop(
    tmp_path: Path,
) -> None:
    class Contrary(MemoryStore):
        def take_budget(self, claims: object, expires_at: float) -> tuple[bool, list[int]]:
            return False, [0] * len(claims)  # type: ignore[arg-type]

    decider = make_decider(tmp_path, store=Contrary(retention_seconds=86400))
    response = decider.decide(request("c1", "call_center"))
    assert picks(response) == ["basic", "loan"]
    assert response.degraded


def test_out_of_time_a_budgeted_fallback_is_not_given_unclaimed(tmp_path: Path) -> None:
    budgeted = make_decider(
        tmp_path, "budgets:\n  - {id: tips_cap, limit: 9, per: day, actions: [tips]}\n"
    )
    free = make_decider(tmp_path / "free", BUDGETS)
    assert picks(budgeted.decide(request("c1"), deadline=time.monotonic())) == []
    assert picks(free.decide(request("c1"), deadline=time.monotonic())) == ["tips"]
