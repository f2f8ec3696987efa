"""Budget windows and pacing (nba/pipeline/budgets.py): calendar arithmetic, DST included."""

from __future__ import annotations

import math
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from nba.errors import Location
from nba.pipeline.budgets import allowance, window
from nba.ruleset.ruleset import Budget

LONDON = ZoneInfo("Europe/London")
NEW_YORK = ZoneInfo("America/New_York")


def budget(per: str = "day", limit: int = 500, paced: bool = False) -> Budget:
    return Budget("premium_cap", limit, per, frozenset({"a1"}), None, paced, Location("r", 1, 1))


def at(zone: ZoneInfo, *fields: int) -> float:
    return datetime(*fields, tzinfo=zone).timestamp()  # type: ignore[misc]


def test_a_day_runs_from_local_midnight_and_is_named_by_its_date() -> None:
    current = window(budget("day"), at(NEW_YORK, 2026, 12, 4, 23, 30), NEW_YORK)
    assert current.key == "b|premium_cap|2026-12-04"  # 04:30 UTC on the 5th is still the 4th
    assert current.start == at(NEW_YORK, 2026, 12, 4)
    assert current.end == at(NEW_YORK, 2026, 12, 5)
    assert current.label == "today"


@pytest.mark.parametrize(
    ("day", "hours"),
    [((2026, 3, 29), 23), ((2026, 10, 25), 25), ((2026, 6, 1), 24)],
    ids=["spring-forward", "fall-back", "summer"],
)
def test_a_day_is_23_or_25_hours_when_the_clocks_change(
    day: tuple[int, int, int], hours: int
) -> None:
    current = window(budget("day"), at(LONDON, *day, 12), LONDON)
    assert current.end - current.start == hours * 3600


def test_pacing_follows_the_real_hours_of_a_dst_day() -> None:
    """On the 23-hour day, 09:00 local is 8 hours in: 8/23 of the limit, not 9/24."""
    paced = budget("day", limit=230, paced=True)
    nine = at(LONDON, 2026, 3, 29, 9)
    assert allowance(paced, window(paced, nine, LONDON), nine) == 80


def test_a_week_starts_on_monday_and_is_named_by_its_iso_week() -> None:
    sunday = at(LONDON, 2026, 12, 6, 22)
    current = window(budget("week"), sunday, LONDON)
    assert current.key == "b|premium_cap|2026-W49"
    assert current.start == at(LONDON, 2026, 11, 30)  # Monday
    assert current.end == at(LONDON, 2026, 12, 7)
    assert window(budget("week"), at(LONDON, 2026, 12, 7), LONDON).key == "b|premium_cap|2026-W50"


def test_a_week_across_new_year_keeps_its_iso_year() -> None:
    current = window(budget("week"), at(LONDON, 2027, 1, 1, 12), LONDON)
    assert current.key == "b|premium_cap|2026-W53"
    assert current.start == at(LONDON, 2026, 12, 28)


def test_a_month_starts_on_the_first_and_december_ends_in_january() -> None:
    current = window(budget("month"), at(LONDON, 2026, 12, 31, 23, 59), LONDON)
    assert current.key == "b|premium_cap|2026-12"
    assert (current.start, current.end) == (at(LONDON, 2026, 12, 1), at(LONDON, 2027, 1, 1))
    february = window(budget("month"), at(LONDON, 2028, 2, 15), LONDON)  # a leap year
    assert february.end - february.start == 29 * 86400


def test_a_total_never_ends() -> None:
    current = window(budget("total"), at(LONDON, 2026, 12, 4), LONDON)
    assert current.key == "b|premium_cap|total"
    assert current.end == math.inf
    assert current.label == "in total"
    assert allowance(budget("total", 7), current, 0.0) == 7


def test_a_paced_day_grants_its_share_of_the_hours_gone() -> None:
    paced = budget("day", limit=480, paced=True)

    def allowed(hour: int, minute: int = 0) -> int:
        now = at(LONDON, 2026, 12, 4, hour, minute)
        return allowance(paced, window(paced, now, LONDON), now)

    assert allowed(0) == 1  # at least one, even at midnight
    assert allowed(0, 1) == 1  # 480 x 1/1440 = 0.33: ceil gives 1
    assert allowed(3) == 60  # exactly 3/24: 60, not 61
    assert allowed(9) == 180  # not spent by 9 am
    assert allowed(23, 59) == 480


def test_an_unpaced_budget_allows_its_whole_limit_at_once_and_zero_allows_nothing() -> None:
    now = at(LONDON, 2026, 12, 4, 0, 5)
    assert allowance(budget("day", 480), window(budget("day"), now, LONDON), now) == 480
    zero = budget("day", 0, paced=True)
    assert allowance(zero, window(zero, now, LONDON), now) == 0
