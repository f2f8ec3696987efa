"""Budgets: calendar windows, pacing, and claiming a decision's picks from the store.

A budget (`budgets:` in the rule files, nba.ruleset.ruleset.Budget) allows at most `limit`
recommendations of the actions it covers per calendar window of the rule set's time zone:
a day from local midnight (23 or 25 hours on a DST change), a week from Monday, a month
from the 1st, or in total. Each window has its own counter in the interaction store, named
after the budget and the window's start (`b|premium_cap|2026-12-04`, `b|premium_cap|2026-W49`,
`b|premium_cap|2026-12`, `b|premium_cap|total`), so a new window starts from 0 without any
reset, and the counter expires when its window ends.

Pacing: at time t a paced budget may have granted at most ceil(limit x elapsed fraction of
its window), at least 1, so a daily budget of 500 has granted at most 21 by 01:00 and 188 by
09:00 rather than all 500 by 9 am.

Claiming (Decider.decide_request): the picks a budget covers are claimed in one store call,
all or nothing (InteractionStore.take_budget). When it refuses, the counts it returns say
which budgets are out of room: those picks are dropped with an Exclusion naming the budget
and its counts, the next ranked candidates take their places, and the rest is claimed again.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from nba.errors import StoreError
from nba.pipeline.types import Exclusion
from nba.ruleset.ruleset import Action, Budget
from nba.store import InteractionStore

log = logging.getLogger(__name__)

KEY_PREFIX = "b|"  # every budget counter's name starts with this (budget_counts' prefix)
MAX_CONTENDED_ROUNDS = 8
_LABELS = {"day": "today", "week": "this week", "month": "this month", "total": "in total"}


@dataclass(frozen=True, slots=True)
class Window:
    """One budget's current calendar window."""

    key: str  # the store counter: the budget id and the window's start
    start: float  # unix seconds; -inf for "total"
    end: float  # unix seconds; inf for "total"
    label: str  # "today", "this week", ... for messages

    def elapsed(self, now: float) -> float:
        """The fraction of the window gone by at `now`, in [0, 1]."""
        if not math.isfinite(self.start) or not math.isfinite(self.end):
            return 1.0
        return min(1.0, max(0.0, (now - self.start) / (self.end - self.start)))


def window(budget: Budget, now: float, zone: ZoneInfo) -> Window:
    """The window of `budget` that holds `now`, in the rule set's time zone."""
    label = _LABELS[budget.window]
    if budget.window == "total":
        return Window(f"{KEY_PREFIX}{budget.id}|total", -math.inf, math.inf, label)
    local = datetime.fromtimestamp(now, zone).date()
    if budget.window == "day":
        first, after, name = local, local + timedelta(days=1), local.isoformat()
    elif budget.window == "week":
        first = local - timedelta(days=local.weekday())  # Monday
        year, week, _ = first.isocalendar()
        after, name = first + timedelta(days=7), f"{year}-W{week:02d}"
    else:
        first = local.replace(day=1)
        after = (first + timedelta(days=32)).replace(day=1)
        name = f"{first.year}-{first.month:02d}"
    # Local midnights through the zone's rules: a day is 23 or 25 hours when DST changes.
    start = datetime(first.year, first.month, first.day, tzinfo=zone).timestamp()
    end = datetime(after.year, after.month, after.day, tzinfo=zone).timestamp()
    return Window(f"{KEY_PREFIX}{budget.id}|{name}", start, end, label)


def allowance(budget: Budget, current: Window, now: float) -> int:
    """How many the budget may have granted by `now`: its limit, or paced, its share so far."""
    if not budget.paced or budget.limit == 0:
        return budget.limit
    # A hair below the product, so that an exact k/limit of the window allows k, not k + 1.
    share = math.ceil(budget.limit * current.elapsed(now) - 1e-9)
    return min(budget.limit, max(1, share))


@dataclass(frozen=True, slots=True)
class Claim:
    """One budget's counter as one decision claims it."""

    budget: Budget
    window: Window
    allowed: int  # what the counter may reach now (the limit, or the paced allowance)


class Budgets:
    """A rule set's budgets for one Decider: which cover what, and claiming them."""

    def __init__(self, budgets: Sequence[Budget], time_zone: str) -> None:
        self.budgets = tuple(budgets)
        self.zone = ZoneInfo(time_zone)
        self.covered = frozenset().union(*(b.actions for b in self.budgets))
        # Each budget's current window, computed again only when `now` leaves it: the
        # calendar arithmetic in a zone costs ~10 us, a comparison nothing.
        self._windows: dict[str, Window] = {}

    def covers(self, action: Action, channel: str) -> bool:
        return action.id in self.covered and any(b.covers(action.id, channel) for b in self.budgets)

    def claims(self, action: Action, channel: str, now: float) -> list[Claim]:
        """The counters a recommendation of `action` on `channel` at `now` must claim."""
        if action.id not in self.covered:
            return []
        found = []
        for budget in self.budgets:
            if budget.covers(action.id, channel):
                current = self._windows.get(budget.id)
                if current is None or not current.start <= now < current.end:
                    current = self._windows[budget.id] = window(budget, now, self.zone)
                found.append(Claim(budget, current, allowance(budget, current, now)))
        return found


@dataclass(slots=True)
class Outcome:
    """What claiming left of the picks: who got through, who was refused and why."""

    kept: list[int]  # indexes into the options, in rank order
    excluded: list[Exclusion]
    failed: bool  # the store failed: budgeted picks were dropped, the decision is degraded


def claim(
    budgets: Budgets,
    store: InteractionStore,
    options: Sequence[tuple[Action, str]],
    wanted: int,
    now: float,
) -> Outcome:
    """The first `wanted` of `options` (ranked (action, channel) pairs) that budgets allow.

    Options no budget covers pass without a store call. The covered ones among the first
    `wanted` are claimed together; a refused claim drops the picks whose budgets are out
    of room and lets the next options in. A store error drops every budgeted option not yet
    granted (the safe side: a budget is never exceeded because the store was down).
    """
    state = _Walk(budgets, options, wanted, now)
    # Each refusal drops an option or meets a rival decision's claim; this many rounds and
    # the store is answering nonsense: fail safe rather than loop.
    rounds = len(options) + MAX_CONTENDED_ROUNDS
    while pending := state.fill():
        rounds -= 1
        if rounds < 0:
            state.fail(pending)
            continue
        try:
            granted, counts = store.take_budget(state.claim_list(pending), state.expires(pending))
        except StoreError as exc:
            log.warning("budgets not counted, budgeted picks dropped: %s", exc)
            state.fail(pending)
            continue
        if granted:
            state.grant(pending)
        else:
            state.refuse(pending, counts)
    return Outcome(state.kept(), state.excluded, state.failed)


class _Walk:
    """The walk down the ranking that `claim` does, one store round trip per step."""

    def __init__(
        self, budgets: Budgets, options: Sequence[tuple[Action, str]], wanted: int, now: float
    ) -> None:
        self.options = options
        self.wanted = wanted
        self.now = now
        self.budgets = budgets
        self.claims: list[list[Claim]] = []  # of the options looked at, in order
        self.next = 0  # the next option not looked at
        self.accepted: list[int] = []  # granted, or not budgeted
        self.waiting: list[int] = []  # budgeted, to claim in the next round trip
        self.excluded: list[Exclusion] = []
        self.failed = False

    def fill(self) -> list[int]:
        """Let options in until the list could be full; the budgeted ones wait for a claim."""
        while len(self.accepted) + len(self.waiting) < self.wanted and self.next < len(
            self.options
        ):
            index, self.next = self.next, self.next + 1
            action, channel = self.options[index]
            self.claims.append(self.budgets.claims(action, channel, self.now))
            if not self.claims[index]:
                self.accepted.append(index)
            elif self.failed:
                self.exclude(index, self.claims[index][0], "could not be counted (store error)")
            else:
                self.waiting.append(index)
        pending, self.waiting = self.waiting, []
        return pending

    def claim_list(self, pending: list[int]) -> list[tuple[str, int]]:
        return [(c.window.key, c.allowed) for i in pending for c in self.claims[i]]

    def expires(self, pending: list[int]) -> float:
        """The counters live until their windows end: the latest end among them."""
        return max(c.window.end for i in pending for c in self.claims[i])

    def grant(self, pending: list[int]) -> None:
        self.accepted.extend(pending)

    def fail(self, pending: list[int]) -> None:
        self.failed = True
        for index in pending:
            self.exclude(index, self.claims[index][0], "could not be counted (store error)")

    def refuse(self, pending: list[int], counts: list[int]) -> None:
        """Keep, best first, the options every budget of which still has room; drop the rest.
        The kept ones are claimed again (another decision may have taken the room since)."""
        flat = [c for i in pending for c in self.claims[i]]
        room = {c.window.key: c.allowed - n for c, n in zip(flat, counts, strict=True)}
        for index in pending:
            full = next((c for c in self.claims[index] if room[c.window.key] < 1), None)
            if full is None:
                for c in self.claims[index]:
                    room[c.window.key] -= 1
                self.waiting.append(index)
            else:
                # What is counted, with what better picks of this decision keep for themselves.
                self.exclude(index, full, spent(full, full.allowed - room[full.window.key]))

    def exclude(self, index: int, claim: Claim, why: str) -> None:
        action, channel = self.options[index]
        budget = claim.budget
        self.excluded.append(
            Exclusion(
                action.id,
                budget.id,
                f"budget {budget.id} {why}",
                "budget",
                budget.location,
                channel,
            )
        )

    def kept(self) -> list[int]:
        return sorted(self.accepted)[: self.wanted]


def spent(claim: Claim, count: int) -> str:
    """Why `claim` is refused with `count` already taken: the words of every refusal."""
    budget, label = claim.budget, claim.window.label
    if claim.allowed < budget.limit:
        return f"is paced: {count} of {budget.limit} {label}, {claim.allowed} allowed by now"
    return f"is spent: {count} of {budget.limit} {label}"


@dataclass(frozen=True, slots=True)
class Room:
    """One budget as the store has it now: its window and allowance, and what is used."""

    claim: Claim
    used: int  # the current window's counter: every worker's and replica's claims

    @property
    def left(self) -> int:
        return max(0, self.claim.allowed - self.used)


def rooms(
    budgets: Sequence[Budget], time_zone: str, now: float, store: InteractionStore | None
) -> list[Room]:
    """Each budget's standing at `now`, in one read of the store (none: nothing used)."""
    zone = ZoneInfo(time_zone)
    used = store.budget_counts(KEY_PREFIX) if store is not None and budgets else {}
    found = []
    for budget in budgets:
        current = window(budget, now, zone)
        claim = Claim(budget, current, allowance(budget, current, now))
        found.append(Room(claim, used.get(current.key, 0)))
    return found
