"""Loading `experiments:` and `universal_control:`: every name an arm uses checked where it
is written, shares that add up, layers that fit (nba/experiments uses the result).

Kept out of loader.py, which calls `experiments()` once the rules and levers are built.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from nba.errors import Location, did_you_mean
from nba.ruleset.model import ArmSpec, ExperimentSpec, UniversalControlSpec
from nba.ruleset.ruleset import UNIVERSAL_CONTROL, Arm, Experiment, Rule

SHARE_TOLERANCE = 1e-9
MAX_VARIANTS = 64  # decisions route to a prebuilt rule set per combination of arms

Report = Callable[[str, str, Location | None, str], None]  # the loader's error()


@dataclass(frozen=True, slots=True)
class Names:
    """What arms may refer to, from the rest of the rule set."""

    levers: frozenset[str]
    weight_rules: frozenset[str]
    rules: frozenset[str]  # suppressions and weights an arm may disable
    dormant: frozenset[str]  # rules written `enabled: false`
    learns: bool  # a `learning:` section exists


def names_of(
    rules: Iterable[Rule], dormant: Iterable[Rule], levers: Iterable[str], learns: bool
) -> Names:
    live = [r for r in rules if r.kind in ("suppress", "weight")]
    return Names(
        levers=frozenset(levers),
        weight_rules=frozenset(r.id for r in (*live, *dormant) if r.kind == "weight"),
        rules=frozenset(r.id for r in live),
        dormant=frozenset(r.id for r in dormant),
        learns=learns,
    )


def experiments(
    entries: list[Any], control: Any | None, names: Names, error: Report
) -> tuple[Experiment, ...]:
    """`entries`: loader Entries of ExperimentSpec; `control`: the universal_control Entry."""
    found = [_universal(control)] if control is not None else []
    found += [_experiment(e, names, error) for e in entries]
    _check_layers(found, entries, error)
    _check_variants(found, entries, error)
    return tuple(found)


def _universal(entry: Any) -> Experiment:
    spec: UniversalControlSpec = entry.item
    at = entry.at()
    held_out = Arm(
        "control",
        float(spec.share),
        entry.at("share"),
        scoring="static" if spec.treatment == "static" else None,
        marketing=spec.treatment != "none",
    )
    treated = Arm("treated", 1.0 - float(spec.share), at)
    return Experiment(
        UNIVERSAL_CONTROL, spec.salt, UNIVERSAL_CONTROL, (held_out, treated), "control", at
    )


def _experiment(entry: Any, names: Names, error: Report) -> Experiment:
    spec: ExperimentSpec = entry.item
    if spec.id == UNIVERSAL_CONTROL:
        error(
            "schema",
            f"experiment id '{UNIVERSAL_CONTROL}' is reserved; expected the"
            " `universal_control:` section for a hold-out group",
            entry.at("id"),
            "",
        )
    arms = tuple(_arm(entry, i, spec.arms[i], names, error) for i in range(len(spec.arms)))
    ids = [a.id for a in arms]
    for i, arm_id in enumerate(ids):
        if arm_id in ids[:i]:
            error(
                "duplicate-id",
                f"arm '{arm_id}' is listed twice in experiment '{spec.id}'; expected each arm once",
                entry.at("arms", i, "id"),
                "",
            )
    if spec.control not in ids:
        error(
            "unknown-arm",
            f"control arm '{spec.control}' is not an arm of experiment '{spec.id}';"
            f" expected one of {', '.join(ids)}",
            entry.at("control"),
            did_you_mean(spec.control, ids),
        )
    total = sum(a.share for a in arms)
    if abs(total - 1.0) > SHARE_TOLERANCE:
        error(
            "schema",
            f"the arms of experiment '{spec.id}' share {total:g} of its customers;"
            " expected shares that add up to 1",
            entry.at("arms"),
            "",
        )
    layer = spec.layer or spec.id
    return Experiment(
        spec.id, spec.salt, layer, arms, spec.control, entry.at(), float(spec.traffic)
    )


def _arm(entry: Any, i: int, spec: ArmSpec, names: Names, error: Report) -> Arm:
    at = entry.at("arms", i)

    def known(
        kind: str,
        wanted: Iterable[str],
        known: frozenset[str],
        path: tuple[Any, ...],
        expected: str,
        by_index: bool = False,
    ) -> None:
        for n, name in enumerate(wanted):
            if name not in known:
                error(
                    f"unknown-{kind}",
                    f"arm '{spec.id}': unknown {kind} '{name}'; expected {expected}",
                    entry.at("arms", i, *path, n if by_index else name),
                    did_you_mean(name, known),
                )

    known("lever", spec.levers, names.levers, ("levers",), "a lever the rule set declares")
    known("rule", spec.weights, names.weight_rules, ("weights",), "the id of a weight rule")
    known(
        "rule",
        spec.rules.disable,
        names.rules,
        ("rules", "disable"),
        "the id of a suppression or weight rule",
        by_index=True,
    )
    known(
        "rule",
        spec.rules.enable,
        names.dormant,
        ("rules", "enable"),
        "a rule written `enabled: false`",
        by_index=True,
    )
    if spec.scoring in ("adaptive", "exploit") and not names.learns:
        error(
            "schema",
            f"arm '{spec.id}': scoring '{spec.scoring}' needs a `learning:` section;"
            " expected `scoring: static`, or learning declared in ruleset.yaml",
            entry.at("arms", i, "scoring"),
            "",
        )
    return Arm(
        spec.id,
        float(spec.share),
        at,
        levers={k: float(v) for k, v in spec.levers.items()},
        weights={k: float(v) for k, v in spec.weights.items()},
        scoring=spec.scoring,
        disable=frozenset(spec.rules.disable),
        enable=frozenset(spec.rules.enable),
    )


def _check_layers(found: list[Experiment], entries: list[Any], error: Report) -> None:
    """A layer's experiments split its customers: their traffic cannot exceed all of them."""
    at: Mapping[str, Location] = {e.item.id: e.at("traffic") for e in entries}
    by_layer: dict[str, list[Experiment]] = {}
    for experiment in found:
        by_layer.setdefault(experiment.layer, []).append(experiment)
    for layer, members in by_layer.items():
        total = sum(e.traffic for e in members)
        if total > 1.0 + SHARE_TOLERANCE:
            listed = ", ".join(f"{e.id} {e.traffic:g}" for e in members)
            error(
                "schema",
                f"layer '{layer}' gives {total:g} of its customers to its experiments ({listed});"
                " expected traffic shares that add up to at most 1",
                at.get(members[-1].id, members[-1].location),
                "",
            )


def _check_variants(found: list[Experiment], entries: list[Any], error: Report) -> None:
    count = 1
    for experiment in found:
        count *= 1 + sum(1 for a in experiment.arms if a.changes)
    if count > MAX_VARIANTS and entries:
        error(
            "schema",
            f"the experiments' arms combine into {count} different rule sets;"
            f" expected at most {MAX_VARIANTS} (end an experiment, or put experiments in"
            " one layer)",
            entries[-1].at(),
            "",
        )
