"""Budgets in a batch run, allocated over the whole base rather than in arrival order.

Online, a budget goes to whoever asks first. A batch knows every customer before any is
contacted, so it can do better: every customer is scored first (decide.py, with spares
past max_results), then every option of every customer with a budgeted one is taken in
descending score (expected value: propensity x weight x value x lever), across the whole
base. An option is granted when its customer still has room and every budget covering it
has some left; a customer whose budgeted option was refused gets the next option of their
own ranking in its place, as online. Customers without a budgeted option keep their
ranking as it is, unread.

What is left of a budget is its limit (or, paced, its allowance at the run's moment)
minus what its current window's counter in the store already holds (online decisions
today); the batch's grants are then added to that counter, so online decisions after the
run see them.

`order="arrival"` allocates first-come (the input order), as online claims would: what
bench/batch.py compares the global allocation with.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from nba.pipeline.budgets import Budgets, Room, spent
from nba.ruleset.ruleset import RuleSet
from nba.store import InteractionStore, StoreError

log = logging.getLogger(__name__)
WRITE_BACK_CHUNK = 10_000  # units of one budget claimed per take_budget call


@dataclass(slots=True)
class Allocation:
    """What the global pass decided, per customer row: the options kept (indexes into the
    row's recommendations) and the budget refusals, in words."""

    kept: dict[tuple[int, int], list[int]] = field(default_factory=dict)  # (part, row) ->
    refused: dict[tuple[int, int], list[str]] = field(default_factory=dict)
    granted: dict[str, int] = field(default_factory=dict)  # budget id -> units granted
    left: dict[str, int] = field(default_factory=dict)  # budget id -> units before the run
    value: float = 0.0  # summed score of every option kept: the expected value shown
    seconds: float = 0.0


@dataclass(frozen=True, slots=True)
class _Option:
    score: float
    customer: tuple[int, int]
    index: int  # into the customer's recommendations
    budgets: tuple[int, ...]  # indexes into the rule set's budgets


def allocate(
    ruleset: RuleSet,
    parts: Sequence[tuple[int, list[dict[str, Any]]]],
    rooms: Sequence[Room],
    order: str = "priority",
) -> Allocation:
    """`parts`: (partition, its rows) with each row's recommendations ranked, spares
    included, and `max_results`. `rooms`: per budget, what it may still grant."""
    started = time.perf_counter()
    found = Allocation(left={r.claim.budget.id: r.left for r in rooms})
    budgets = Budgets(ruleset.budgets, ruleset.meta.time_zone)
    room: dict[tuple[int, int], int] = {}
    options: list[_Option] = []
    for part, rows in parts:
        for i, row in enumerate(rows):
            key = (part, i)
            covered = [_covering(budgets, r) for r in row["recommendations"]]
            if not any(covered):
                kept = list(range(min(row["max_results"], len(covered))))
                found.kept[key] = kept
                found.value += sum(row["recommendations"][k]["score"] for k in kept)
                continue
            room[key] = row["max_results"]
            found.kept[key] = []
            options += [
                _Option(r["score"], key, k, covered[k])
                for k, r in enumerate(row["recommendations"])
            ]
    if order == "priority":
        options.sort(key=lambda o: -o.score)  # stable: ties keep arrival order
    units, rows_of = [r.left for r in rooms], dict(parts)
    for option in options:
        _offer(option, units, room, found, rooms, rows_of)
    _fallbacks(budgets, units, found, rows_of)
    found.granted = {r.claim.budget.id: r.left - units[i] for i, r in enumerate(rooms)}
    for kept in found.kept.values():
        kept.sort()
    found.seconds = time.perf_counter() - started
    return found


def _covering(budgets: Budgets, rec: dict[str, Any]) -> tuple[int, ...]:
    """The budgets (indexes) a recommendation counts against; a fallback's too, as online."""
    if rec["action_id"] not in budgets.covered:
        return ()
    action, channel = rec["action_id"], rec["channel"]
    return tuple(i for i, b in enumerate(budgets.budgets) if b.covers(action, channel))


def _offer(
    option: _Option,
    units: list[int],
    room: dict[tuple[int, int], int],
    found: Allocation,
    rooms: Sequence[Room],
    rows_of: dict[int, list[dict[str, Any]]],
) -> None:
    if room[option.customer] <= 0:
        return  # the customer's places are taken by better options
    full = next((b for b in option.budgets if units[b] <= 0), None)
    if full is not None:
        part, row = option.customer
        action = rows_of[part][row]["recommendations"][option.index]["action_id"]
        claim = rooms[full].claim  # all it allows is taken: online's and this run's
        found.refused.setdefault(option.customer, []).append(
            f"{action}: budget {claim.budget.id} {spent(claim, claim.allowed - units[full])}"
        )
        return
    for b in option.budgets:
        units[b] -= 1
    room[option.customer] -= 1
    found.kept[option.customer].append(option.index)
    found.value += option.score


def _fallbacks(
    budgets: Budgets,
    units: list[int],
    found: Allocation,
    rows_of: dict[int, list[dict[str, Any]]],
) -> None:
    """A customer every option of whom was refused gets the touchpoint's fallback, as
    online (its own budgets permitting), in arrival order: a fallback has no score."""
    for (part, i), kept in found.kept.items():
        row = rows_of[part][i]
        if kept or not row.get("fallback_option") or (part, i) not in found.refused:
            continue
        option = row["fallback_option"][0]
        covering = _covering(budgets, option)
        if any(units[b] <= 0 for b in covering):
            continue
        for b in covering:
            units[b] -= 1
        kept.append(len(row["recommendations"]))  # past the ranked options: the fallback


def apply(rows: list[dict[str, Any]], part: int, allocation: Allocation) -> list[dict[str, Any]]:
    """The rows as the output has them: the kept options, ranked 1, 2, ...; the refusals."""
    final = []
    for i, row in enumerate(rows):
        options = [*row["recommendations"], *(row.get("fallback_option") or [])]
        kept = [dict(options[k]) for k in allocation.kept[(part, i)]]
        for rank, rec in enumerate(kept, start=1):
            rec["rank"] = rank
        final.append(
            row
            | {
                "recommendations": kept,
                "budget_excluded": allocation.refused.get((part, i), []),
                "fallback_option": [],
            }
        )
    return final


def write_back(store: InteractionStore, rooms: Sequence[Room], granted: dict[str, int]) -> None:
    """Add the batch's grants to the budgets' counters, so online decisions see them."""
    for room in rooms:
        budget, current = room.claim.budget, room.claim.window
        units = granted.get(budget.id, 0)
        while units > 0:
            n = min(units, WRITE_BACK_CHUNK)
            try:
                ok, counts = store.take_budget([(current.key, budget.limit)] * n, current.end)
            except StoreError as exc:
                log.warning(
                    "budget %s: the batch's %d grants not counted: %s", budget.id, units, exc
                )
                return
            if not ok:
                log.warning(
                    "budget %s: online decisions took %d during the run; the batch's %d grants"
                    " would pass its limit and were not added",
                    budget.id,
                    counts[0] if counts else 0,
                    units,
                )
                break
            units -= n
