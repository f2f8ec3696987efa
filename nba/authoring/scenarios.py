"""Rule authors' scenario tests: `rules/tests/*.yaml`, run by `nba test`.

A scenario is a customer at a touchpoint and what the business expects to happen:

    scenarios:
      - name: at-risk caller hears a retention offer first
        request: ../examples/call_center_at_risk.json    # or the request inline
        expect: {top_action: ret_fee_waiver, channel: call_center}

Each runs through the same Decider the server uses, with `explain` on so a failure can
show the whole decision: the expectation, what was recommended and excluded, and the
rules that fired.
"""

from __future__ import annotations

import json
import re
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from nba.errors import Location, RequestError, RuleError, did_you_mean
from nba.pipeline.decider import Decider
from nba.pipeline.types import Decision
from nba.pipeline.validate import listing
from nba.ruleset.yaml_source import SourceDocument, read_document
from nba.v1 import decisioning_pb2 as pb


class ExpectedExclusion(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    action: str
    rule: str


class Expectations(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    top_action: str | None = None
    channel: str | None = None
    offered: list[str] = []
    not_offered: list[str] = []
    excluded: list[ExpectedExclusion] = []
    count: int | None = Field(default=None, ge=0)
    score_order: list[str] = []
    fallback: bool | None = None


class ScenarioSpec(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    name: str = Field(min_length=1)
    request: str | dict[str, Any]
    expect: Expectations


@dataclass
class Scenario:
    name: str
    spec: ScenarioSpec
    location: Location
    base: Path  # directory of the scenario file, for relative request paths
    # every action its expectations name, with the field and the place it is written
    action_refs: tuple[tuple[str, str, Location], ...] = ()


@dataclass
class Outcome:
    scenario: Scenario
    failures: list[str] = field(default_factory=list)
    error: str = ""
    decision: Decision | None = None

    @property
    def status(self) -> str:
        return "ERROR" if self.error else ("FAIL" if self.failures else "PASS")


# ---------------------------------------------------------------------------- loading


def scenario_files(rules_dir: Path) -> list[Path]:
    tests = rules_dir / "tests"
    return (
        sorted(p for p in tests.rglob("*") if p.suffix in (".yaml", ".yml"))
        if tests.is_dir()
        else []
    )


def load_scenarios(rules_dir: Path, display_root: Path) -> tuple[list[Scenario], list[RuleError]]:
    scenarios: list[Scenario] = []
    errors: list[RuleError] = []
    for path in scenario_files(rules_dir):
        name = str(display_root / path.relative_to(rules_dir))
        doc, parse_errors = read_document(path, name)
        errors.extend(parse_errors)
        if doc is not None:
            found, bad = _scenarios_of(doc, path.parent)
            scenarios.extend(found)
            errors.extend(bad)
    return scenarios, errors


def _scenarios_of(doc: SourceDocument, base: Path) -> tuple[list[Scenario], list[RuleError]]:
    data = doc.data
    if not isinstance(data, dict) or not isinstance(data.get("scenarios"), list):
        return [], [
            RuleError("scenario", "expected `scenarios:` with a list of scenarios", doc.locate(()))
        ]
    found: list[Scenario] = []
    errors: list[RuleError] = []
    for i, raw in enumerate(data["scenarios"]):
        try:
            spec = ScenarioSpec.model_validate(raw)
        except ValidationError as exc:
            for err in exc.errors():
                path = ("scenarios", i, *err["loc"])
                message = err["msg"]
                hint = ""
                if err["type"] == "extra_forbidden":
                    key = str(err["loc"][-1])
                    message = f"unknown expectation '{key}'"
                    hint = did_you_mean(key, Expectations.model_fields)
                errors.append(RuleError("scenario", message, doc.locate_key(path), hint))
            continue
        refs = tuple(_action_refs(spec.expect, doc, ("scenarios", i, "expect")))
        found.append(Scenario(spec.name, spec, doc.locate(("scenarios", i)), base, refs))
    return found, errors


def _action_refs(
    expect: Expectations, doc: SourceDocument, at: tuple[str | int, ...]
) -> Iterator[tuple[str, str, Location]]:
    if expect.top_action is not None:
        yield "top_action", expect.top_action, doc.locate((*at, "top_action"))
    for key in ("offered", "not_offered", "score_order"):
        for j, name in enumerate(getattr(expect, key)):
            yield key, name, doc.locate((*at, key, j))
    for j, item in enumerate(expect.excluded):
        yield "excluded.action", item.action, doc.locate((*at, "excluded", j, "action"))


def unknown_actions(scenario: Scenario, known: Collection[str]) -> list[RuleError]:
    """Expectations naming an action the rule set lacks: they would pass (or fail) silently.

    `not_offered: [ins_singel_trip]` holds for any decision, so a typo there would hide the
    very regression the scenario was written to catch.
    """
    return [
        RuleError(
            "scenario-unknown-action",
            f"{key} names action '{name}', which the rule set does not declare;"
            f" expected one of {listing(sorted(known))}",
            at,
            did_you_mean(name, known),
        )
        for key, name, at in scenario.action_refs
        if name not in known
    ]


# ---------------------------------------------------------------------------- running


def run_scenario(decider: Decider, scenario: Scenario) -> Outcome:
    outcome = Outcome(scenario)
    unknown = unknown_actions(scenario, decider.ruleset.actions)
    if unknown:
        outcome.error = "; ".join(str(e) for e in unknown)
        return outcome
    try:
        message = _request(scenario)
    except (OSError, ValueError, json_format.ParseError) as exc:
        outcome.error = f"request: {exc}"
        return outcome
    message.explain = True  # the whole decision, to check exclusions and explain failures
    try:
        request = decider.validator.validate(message)
    except RequestError as exc:
        outcome.error = f"invalid request: {exc}"
        return outcome
    decision = decider.decide_request(request, claim=False)  # a test: spends no budget
    outcome.decision = decision
    outcome.failures = list(check(scenario.spec.expect, decision))
    return outcome


def _request(scenario: Scenario) -> pb.DecideRequest:
    raw = scenario.spec.request
    if isinstance(raw, str):
        raw = json.loads((scenario.base / raw).read_text(encoding="utf-8"))
    return json_format.ParseDict(raw, pb.DecideRequest())


def check(expect: Expectations, decision: Decision) -> Iterator[str]:
    picks = decision.picks
    offered = [p.action.id for p in picks]
    scores = {p.action.id: p.scored.score if p.scored else 0.0 for p in picks}
    excluded = {(e.action_id, e.rule) for e in decision.excluded}
    if expect.top_action is not None and offered[:1] != [expect.top_action]:
        got = offered[0] if offered else "nothing"
        yield f"top_action: expected {expect.top_action}, got {got}"
    if expect.channel is not None:
        got = picks[0].channel if picks else "nothing"
        if got != expect.channel:
            yield f"channel: expected {expect.channel} for the top action, got {got}"
    for action in expect.offered:
        if action not in offered:
            yield f"offered: expected {action} among the recommendations"
    for action in expect.not_offered:
        if action in offered:
            yield f"not_offered: {action} was recommended (rank {offered.index(action) + 1})"
    for item in expect.excluded:
        if (item.action, item.rule) not in excluded:
            actual = [r for a, r in excluded if a == item.action]
            got = (
                f"excluded by {', '.join(actual)}"
                if actual
                else ("recommended" if item.action in offered else "not excluded")
            )
            yield f"excluded: expected {item.action} excluded by {item.rule}, but it was {got}"
    if expect.count is not None and len(picks) != expect.count:
        yield f"count: expected {expect.count} recommendations, got {len(picks)}"
    for higher, lower in zip(expect.score_order, expect.score_order[1:], strict=False):
        if higher not in scores or lower not in scores:
            missing = [a for a in (higher, lower) if a not in scores]
            yield f"score_order: {', '.join(missing)} not recommended"
        elif not scores[higher] > scores[lower]:
            yield (
                f"score_order: {higher} ({scores[higher]:.4g})"
                f" not above {lower} ({scores[lower]:.4g})"
            )
    if expect.fallback is not None:
        was_fallback = bool(picks) and picks[0].fallback
        if was_fallback != expect.fallback:
            yield f"fallback: expected {expect.fallback}, got {was_fallback}"


def select(scenarios: list[Scenario], pattern: str | None) -> list[Scenario]:
    if not pattern:
        return scenarios
    regex = re.compile(pattern)
    return [s for s in scenarios if regex.search(s.name)]


def describe(decision: Decision) -> list[str]:
    """The decision in a few lines: what was recommended, excluded, and which rules fired."""
    lines = ["recommended:"]
    for p in decision.picks:
        score = "fallback" if p.scored is None else f"{p.scored.score:.4g}"
        lines.append(f"  {p.rank}. {p.action.id} on {p.channel} ({score})")
    if not decision.picks:
        lines.append("  nothing")
    lines.append("excluded:")
    lines += [f"  {e.action_id}: {e.rule}: {e.reason}" for e in decision.excluded]
    fired = [r for r in decision.fired if r.kind in ("segment", "suppress", "weight")]
    lines.append("rules that fired (segments, suppressions, weights):")
    lines += [f"  {r.id} ({r.kind}) at {r.location}" for r in fired] or ["  none"]
    return lines
