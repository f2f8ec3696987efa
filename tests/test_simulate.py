"""Synthetic customers (nba.authoring.customers) and simulations over them (nba.authoring.simulate).

Everything runs the real engine: the simulation's counts are checked against a plain
loop over Decider.decide, and the changes `--against` reports against two Deciders.
"""

from __future__ import annotations

import io
import json
import shutil
import statistics
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.protobuf import json_format
from rich.console import Console

from nba.authoring.customers import (
    DEFAULT_AS_OF,
    CustomerFileError,
    generate_customers,
    parse_line,
    read_jsonl,
    request_json,
    write_jsonl,
)
from nba.authoring.simulate import INVALID, NONE, SimulationReport, render, simulate
from nba.pipeline.decider import Decider
from nba.pipeline.validate import struct_values
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import EXAMPLES, RULES
from tests.helpers import BASE, action, write_rules

AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
Picks = tuple[tuple[str, str], ...]


@pytest.fixture(scope="module")
def base(bank: RuleSet) -> list[pb.DecideRequest]:
    """2,000 customers of the bundled bank, for the proportions."""
    return list(generate_customers(bank, 2000, seed=11, as_of=AS_OF))


@pytest.fixture(scope="module")
def customers_file(bank: RuleSet, tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("customers") / "customers.jsonl"
    write_jsonl(generate_customers(bank, 300, seed=5, as_of=AS_OF), path)
    return path


def profiles(requests: list[pb.DecideRequest]) -> list[dict]:
    return [struct_values(r.profile) for r in requests]


def share(count: int, whole: int) -> float:
    return count / whole


# ---------------------------------------------------------------------------- generation


def test_every_generated_customer_is_a_valid_request(
    bank_decider: Decider, base: list[pb.DecideRequest]
) -> None:
    for request in base[:500]:
        bank_decider.validator.validate(request)  # raises RequestError naming the field


def test_customers_of_an_unfamiliar_schema_are_valid_too(tmp_path: Path) -> None:
    """Names nothing in nba.authoring.customers recognises still get values the schema accepts."""
    rules = write_rules(
        tmp_path / "small",
        {
            "base.yaml": BASE.replace(
                "profile:\n",
                "profile:\n  tier: {type: enum, values: [bronze, silver, gold]}\n"
                "  score_x: {type: number, min: -5, max: 5, required: true}\n",
            ),
            "actions.yaml": "actions:\n"
            + action("a1", extra="eligible: profile.income > 2500 and profile.score_x > 1")
            + action("a2", purpose="service", group="help"),
        },
    )
    ruleset = load_ruleset(rules)
    decider = Decider(ruleset)
    requests = list(generate_customers(ruleset, 300, seed=1, as_of=AS_OF))
    for request in requests:
        decider.validator.validate(request)
        assert {i.action_id for i in request.interactions} <= {"a1", "a2"}
    assert {r.lifecycle_stage for r in requests} == {"prospect", "active", "at_risk"}
    incomes = [p["income"] for p in profiles(requests) if "income" in p]
    assert 0.2 < share(sum(i > 2500 for i in incomes), len(incomes)) < 0.8  # around the rule


def test_generation_is_deterministic_per_seed(bank: RuleSet) -> None:
    first = list(generate_customers(bank, 40, seed=3, as_of=AS_OF))
    assert first == list(generate_customers(bank, 40, seed=3, as_of=AS_OF))
    assert first[:10] == list(generate_customers(bank, 10, seed=3, as_of=AS_OF))
    assert first != list(generate_customers(bank, 40, seed=4, as_of=AS_OF))
    assert list(generate_customers(bank, 5, seed=3)) == list(
        generate_customers(bank, 5, seed=3, as_of=DEFAULT_AS_OF)
    )
    assert len({r.customer_id for r in first}) == 40


def test_lifecycle_stages_in_plausible_proportions(base: list[pb.DecideRequest]) -> None:
    stages = Counter(r.lifecycle_stage for r in base)
    assert stages.most_common(1)[0][0] == "active"
    assert 0.35 < share(stages["active"], len(base)) < 0.55
    for fewer in ("prospect", "onboarding", "lapsed"):
        assert 0.03 < share(stages[fewer], len(base)) < 0.12, fewer


def test_attributes_are_correlated_as_in_life(base: list[pb.DecideRequest]) -> None:
    people = profiles(base)
    aged = [p for p in people if "age" in p]  # age is optional (anonymous web visitors)
    students = [p["age"] for p in aged if p.get("student")]
    others = [p["age"] for p in aged if p.get("student") is False]
    assert students and statistics.median(students) < 25 < statistics.median(others)
    paid = sorted(
        (p["monthly_income"], p["total_balance"])
        for p in people
        if len(p) > 5 and "monthly_income" in p and "total_balance" in p
    )
    quarter = len(paid) // 4
    low = statistics.median(b for _, b in paid[:quarter])
    high = statistics.median(b for _, b in paid[-quarter:])
    assert high > 3 * low
    scores = [p["credit_score"] for p in people if "credit_score" in p]
    assert 620 < statistics.median(scores) < 740
    assert min(scores) >= 300 and max(scores) <= 850
    mortgages = [p for p in people if "mortgage" in p.get("products", [])]
    assert mortgages and all(p.get("home_owner", True) for p in mortgages)
    prospects = [struct_values(r.profile) for r in base if r.lifecycle_stage == "prospect"]
    assert all(not p.get("products") for p in prospects)


def test_histories_are_recent_real_and_mostly_impressions(
    bank: RuleSet, base: list[pb.DecideRequest]
) -> None:
    as_of = int(AS_OF.timestamp())
    outcomes: Counter[int] = Counter()
    for request in base:
        assert 0 <= len(request.interactions) <= 30
        for item in request.interactions:
            assert item.action_id in bank.actions
            assert item.channel in bank.actions[item.action_id].channels
            assert as_of - 90 * 86400 <= item.at.seconds < as_of
            outcomes[item.outcome] += 1
    total = sum(outcomes.values())
    assert share(outcomes[pb.IMPRESSION], total) > 0.6
    assert outcomes[pb.CLICK] > outcomes[pb.ACCEPT] > 0
    assert outcomes[pb.DISMISS] > outcomes[pb.ACCEPT]
    assert 0 < share(outcomes[pb.COMPLAINT], total) < 0.01
    lengths = [len(r.interactions) for r in base]
    assert 4 < statistics.mean(lengths) < 12 and max(lengths) == 30


def test_consent_and_touchpoints_follow_the_channels(
    bank: RuleSet, base: list[pb.DecideRequest]
) -> None:
    opted_in = Counter(c for r in base for c, yes in r.consent.items() if yes)
    assert opted_in["email"] > opted_in["sms"] > 0 and opted_in["push"] > 0
    assert share(opted_in["email"], len(base)) > 0.5
    inbound_only = {c for c, spec in bank.channels.items() if spec.direction == "inbound"}
    assert not any(set(r.consent) & inbound_only for r in base)
    channels = Counter(r.touchpoint.channel for r in base)
    assert 0.22 < share(channels["outbound"], len(base)) < 0.38
    assert {"web", "mobile_app", "call_center", "branch"} <= set(channels)
    intents = Counter(r.touchpoint.intent for r in base if r.touchpoint.intent)
    assert {"cancel", "complaint"} <= set(intents)
    at_risk = [r for r in base if r.lifecycle_stage == "at_risk" and r.touchpoint.intent]
    assert share(sum(r.touchpoint.intent == "cancel" for r in at_risk), len(at_risk)) > 0.3


# ---------------------------------------------------------------------------- JSON lines


def test_jsonl_round_trip(bank: RuleSet, tmp_path: Path) -> None:
    requests = list(generate_customers(bank, 50, seed=9, as_of=AS_OF))
    path = tmp_path / "c.jsonl"
    assert write_jsonl(requests, path) == 50
    lines = path.read_text(encoding="utf-8").splitlines()
    first = json.loads(lines[0])
    assert len(lines) == 50 and first["customerId"] == requests[0].customer_id
    assert type(first["profile"]["age"]) is int  # not json_format's 41.0
    assert list(read_jsonl(path)) == requests
    stream = io.StringIO()
    assert write_jsonl(requests[:3], stream) == 3
    assert stream.getvalue().splitlines() == lines[:3]


def test_the_writer_keeps_every_form_json_format_would() -> None:
    msg = pb.DecideRequest(customer_id="x", max_results=3, explain=True, time_zone="Europe/Paris")
    msg.profile.update({"a": None, "b": [1, 2.5, None, {"c": "d"}], "e": 1e300, "f": -0.0})
    msg.interactions.add(outcome=pb.CLICK)
    msg.touchpoint.SetInParent()
    msg.as_of.FromNanoseconds(1_795_168_800_123_456_789)
    for request in (msg, pb.DecideRequest()):
        assert json_format.ParseDict(request_json(request), pb.DecideRequest()) == request


def test_the_fast_parser_agrees_with_json_format(base: list[pb.DecideRequest]) -> None:
    texts = [json.dumps(json_format.MessageToDict(r)) for r in base[:300]]
    texts += [p.read_text(encoding="utf-8") for p in sorted(EXAMPLES.glob("*.json"))]
    texts += [
        '{"asOf": "2026-11-20T10:00:00.123456789Z", "maxResults": "3"}',  # json_format's forms
        '{"customer_id": "c-1", "interactions": [{"outcome": 2}]}',
        '{"interactions": [{"outcome": "CLICK", "at": "2026-11-20T10:00:00+01:00"}]}',
    ]
    for text in texts:
        assert parse_line(text) == json_format.Parse(text, pb.DecideRequest()), text


@pytest.mark.parametrize(
    ("line", "why"),
    [
        ('{"customerId": "c-2", ', "not JSON"),
        ('["c-2"]', "expected a JSON object"),
        ('{"customerId": "c-2", "lifecycle": "active"}', 'no field named "lifecycle"'),
        ('{"customerId": "c-2", "interactions": [{"outcome": "LIKE"}]}', "LIKE"),
    ],
)
def test_a_malformed_line_is_reported_with_file_and_line(
    tmp_path: Path, line: str, why: str
) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"customerId": "c-1"}\n\n' + line + "\n", encoding="utf-8")
    with pytest.raises(CustomerFileError) as caught:
        list(read_jsonl(path))
    assert str(caught.value).startswith(f"{path}:3: ") and why in str(caught.value)
    assert caught.value.line == 3


def test_simulate_reports_the_bad_line_from_a_worker(customers_file: Path, tmp_path: Path) -> None:
    path = tmp_path / "broken.jsonl"
    lines = customers_file.read_text(encoding="utf-8").splitlines()
    lines[41] = lines[41][:-1]  # cut the closing brace of line 42
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with pytest.raises(CustomerFileError, match=rf"^{path}:42: not JSON"):
        simulate(RULES, path, workers=2)
    with pytest.raises(CustomerFileError, match=r":0: No such file"):
        simulate(RULES, tmp_path / "missing.jsonl", workers=1)


# ---------------------------------------------------------------------------- simulate


def decide_all(rules: Path, path: Path) -> list[tuple[str, Picks, bool, tuple[str, ...]]]:
    """The plain loop the simulation must agree with: (stage, picks, fallback, segments)."""
    decider = Decider(load_ruleset(rules))
    out = []
    for request in read_jsonl(path):
        request.explain = True  # for the segments
        response = decider.decide(request)
        picks = tuple((r.action_id, r.channel) for r in response.recommendations)
        fallback = bool(picks) and response.recommendations[0].fallback
        out.append((request.lifecycle_stage, picks, fallback, tuple(response.segments)))
    return out


@pytest.fixture(scope="module")
def sequential(customers_file: Path) -> list[tuple[str, Picks, bool, tuple[str, ...]]]:
    return decide_all(RULES, customers_file)


@pytest.fixture(scope="module")
def report(customers_file: Path) -> Iterator[tuple[SimulationReport, list[tuple[int, int]]]]:
    calls: list[tuple[int, int]] = []
    yield simulate(RULES, customers_file, workers=2, progress=lambda *a: calls.append(a)), calls


def test_simulate_on_two_workers_counts_what_a_plain_loop_decides(
    report: tuple[SimulationReport, list[tuple[int, int]]], sequential: list
) -> None:
    result, _ = report
    overall = result.base.overall
    assert result.workers == 2 and result.customers == overall.customers == 300
    assert overall.top_actions == Counter(p[0][0] for _, p, _, _ in sequential if p)
    assert overall.top_channels == Counter(p[0][1] for _, p, _, _ in sequential if p)
    assert overall.no_recommendation == sum(not p for _, p, _, _ in sequential)
    assert overall.fallback == sum(f for _, _, f, _ in sequential)
    assert result.base.offered == Counter(a for _, p, _, _ in sequential for a in {a for a, _ in p})
    for stage, row in result.base.stage_rows():
        expected = Counter(p[0][0] for s, p, _, _ in sequential if s == stage and p)
        assert row.top_actions == expected, stage
    for segment, row in result.base.by_segment.items():
        members = [
            p
            for _, p, _, segs in sequential
            if segment in segs or (not segs and segment == "(no segment)")
        ]
        assert row.customers == len(members), segment
        assert row.top_actions == Counter(p[0][0] for p in members if p), segment
    assert result.decisions_per_second > 0 and result.worker_cpu_seconds > 0


def test_progress_runs_from_zero_to_the_total(
    report: tuple[SimulationReport, list[tuple[int, int]]],
) -> None:
    _, calls = report
    assert calls[0] == (0, 300) and calls[-1] == (300, 300) and len(calls) > 2
    assert [done for done, _ in calls] == sorted(done for done, _ in calls)


def test_one_worker_decides_in_process_and_agrees(
    report: tuple[SimulationReport, list[tuple[int, int]]], customers_file: Path
) -> None:
    alone = simulate(RULES, customers_file, workers=1)
    assert alone.workers == 1
    assert alone.as_dict()["base"] == report[0].as_dict()["base"]


def test_against_the_same_rules_changes_nothing(customers_file: Path) -> None:
    result = simulate(RULES, customers_file, against_dir=RULES, workers=2)
    assert result.changes is not None and result.decisions == 600
    assert result.changes.compared == 300
    assert result.changes.changed == result.changes.top_action_changed == 0
    assert not result.changes.top_actions and not result.changes.lost_recommendation


def test_against_an_edited_copy_reports_exactly_the_changes(
    customers_file: Path, sequential: list, tmp_path: Path
) -> None:
    edited = tmp_path / "rules"
    shutil.copytree(RULES, edited)
    with open(edited / "rules.yaml", "a", encoding="utf-8") as rules:
        rules.write(
            "\n  - id: no_easy_access_on_the_web\n"
            '    when: touchpoint.channel == "web"\n'
            "    suppress: {actions: [sav_easy_access]}\n"
            "    reason: The web team pulled easy access this quarter.\n"
        )
    after = decide_all(edited, customers_file)
    transitions: Counter[tuple[str, str]] = Counter()
    changed = 0
    for (_, before, fb, _), (_, now, new_fb, _) in zip(sequential, after, strict=True):
        changed += (before, fb) != (now, new_fb)
        top, new_top = (before[0][0] if before else NONE), (now[0][0] if now else NONE)
        if top != new_top:
            transitions[top, new_top] += 1
    assert transitions and all(old == "sav_easy_access" for old, _ in transitions)

    result = simulate(RULES, customers_file, against_dir=edited, workers=2)
    changes = result.changes
    assert changes is not None and result.against is not None
    assert changes.changed == changed
    assert changes.top_actions == transitions
    assert changes.top_action_changed == sum(transitions.values())
    assert changes.lost_recommendation == changes.gained_recommendation == 0
    assert result.against.offered["sav_easy_access"] < result.base.offered["sav_easy_access"]
    rows = result.as_dict()["changes"]["top_action_transitions"]
    assert rows[0]["from"] == "sav_easy_access" and rows[0]["customers"] == max(
        transitions.values()
    )


def two_sets_a_new_attribute_apart(tmp_path: Path, required: bool) -> tuple[Path, Path]:
    """A base set, and the same set plus a `tenure` attribute and an action that reads it."""
    actions = (
        "actions:\n" + action("a_all") + action("a_vip", value=50, extra="eligible: profile.vip")
    )
    base = write_rules(tmp_path / "base", {"base.yaml": BASE, "actions.yaml": actions})
    tenure = f"  tenure: {{type: int, min: 0, max: 50, required: {str(required).lower()}}}\n"
    new = write_rules(
        tmp_path / "new",
        {
            "base.yaml": BASE.replace("  nickname: string\n", "  nickname: string\n" + tenure),
            "actions.yaml": actions
            + action("a_loyal", value=500, extra="eligible: profile.tenure >= 5"),
        },
    )
    return base, new


def test_against_a_set_with_a_new_attribute_decides_each_on_what_it_declares(
    tmp_path: Path,
) -> None:
    """Issue 11 item 8: customers of the new set carry `tenure`; the base set used to reject
    every one of them ("0.0% changed"). Now it decides them without the key, and says so."""
    base, new = two_sets_a_new_attribute_apart(tmp_path, required=False)
    path = tmp_path / "customers.jsonl"
    write_jsonl(generate_customers(load_ruleset(new), 200, seed=3, as_of=AS_OF), path)
    old_decider, new_decider = Decider(load_ruleset(base)), Decider(load_ruleset(new))
    changed = with_tenure = 0
    for request in read_jsonl(path):
        with_tenure += "tenure" in request.profile.fields
        after = new_decider.decide(request)
        request.profile.fields.pop("tenure", None)
        before = old_decider.decide(request)
        ranking = [
            [(r.action_id, r.channel, r.fallback) for r in d.recommendations]
            for d in (before, after)
        ]
        changed += ranking[0] != ranking[1]
    assert 0 < changed < 200 and with_tenure > 100

    result = simulate(base, path, against_dir=new, workers=2)
    changes = result.changes
    assert changes is not None and result.against is not None
    assert (result.base.invalid, result.against.invalid) == (0, 0)
    assert (changes.compared, changes.changed) == (200, changed)
    assert result.base.dropped == with_tenure
    assert result.base.dropped_keys == Counter({"profile.tenure": with_tenure})
    assert result.against.dropped == 0
    assert {to for _, to in changes.top_actions} == {"a_loyal"}
    as_json = result.as_dict()
    assert as_json["changes"]["changed_share"] == round(changed / 200, 4)
    assert as_json["base"]["dropped_undeclared_keys"]["customers"] == with_tenure
    buffer = io.StringIO()
    render(result, Console(file=buffer, width=200, soft_wrap=True))
    text = buffer.getvalue()
    assert f"on the base rules {base} " in text
    assert f"{changed} of 200 customers ({100 * changed / 200:.1f}%) get a different" in text
    assert f"{with_tenure} customers had keys {base} does not declare" in text
    assert f"invalid requests: 0 on the base {base}, 0 on {new}" in text


def test_against_a_set_that_requires_a_new_attribute_counts_each_rejection(
    tmp_path: Path,
) -> None:
    """Customers of the base set lack the attribute the new set requires: every decision
    changes to a rejection, reported per set, not dropped from the comparison."""
    base, new = two_sets_a_new_attribute_apart(tmp_path, required=True)
    path = tmp_path / "customers.jsonl"
    write_jsonl(generate_customers(load_ruleset(base), 120, seed=4, as_of=AS_OF), path)
    result = simulate(base, path, against_dir=new, workers=1)
    changes = result.changes
    assert changes is not None and result.against is not None
    assert (result.base.invalid, result.against.invalid) == (0, 120)
    assert (changes.invalid_in_base, changes.invalid_in_against) == (0, 120)
    assert changes.invalid_only_in_against == 120 and changes.invalid_only_in_base == 0
    assert (changes.compared, changes.changed) == (120, 120)
    assert {to for _, to in changes.top_actions} == {INVALID}
    assert result.against.invalid_examples[0].endswith(
        "profile.tenure: is required by the rule set's schema"
    )
    buffer = io.StringIO()
    render(result, Console(file=buffer, width=200, soft_wrap=True))
    text = buffer.getvalue()
    assert "120 of 120 customers (100.0%) get a different decision" in text
    assert f"invalid requests: 0 on the base {base}, 120 on {new}" in text


def test_requests_the_rules_reject_are_counted_not_fatal(
    customers_file: Path, tmp_path: Path
) -> None:
    path = tmp_path / "mixed.jsonl"
    good = customers_file.read_text(encoding="utf-8").splitlines()[:20]
    bad = json.dumps({"customerId": "c-x", "lifecycleStage": "at-risk", "profile": {"age": 40}})
    path.write_text("\n".join([*good, bad]) + "\n", encoding="utf-8")
    result = simulate(RULES, path, workers=1)
    assert result.customers == 21 and result.base.invalid == 1
    assert result.base.invalid_examples[0].startswith("line 21: lifecycle_stage: 'at-risk'")


def test_report_renders_and_serialises(customers_file: Path, tmp_path: Path) -> None:
    result = simulate(RULES, customers_file, against_dir=RULES, workers=1)
    json.dumps(result.as_dict())
    buffer = io.StringIO()
    render(result, Console(file=buffer, width=160), top=5)
    text = buffer.getvalue()
    for heading in ("Outcomes", "Top action", "Top channel", "By lifecycle stage", "By segment"):
        assert heading in text
    assert "decisions/s" in text and "0 of 300 customers (0.0%)" in text
