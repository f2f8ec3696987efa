"""Warnings on policy windows implausible for their kind, with the retention they imply (item 7)."""

from __future__ import annotations

from pathlib import Path

import pytest

from nba.authoring.checks import check
from nba.errors import Severity
from nba.ruleset.loader import load_ruleset
from tests.helpers import BASE, action, write_rules


def window_findings(tmp_path: Path, policies: str) -> list[str]:
    rules = write_rules(
        tmp_path / "rules",
        {
            "base.yaml": BASE,
            "actions.yaml": "actions:\n" + action("a1"),
            "policies.yaml": "policies:\n" + policies,
        },
    )
    found = [f for f in check(load_ruleset(rules, display_root="rules")) if "window" in f.code]
    assert all(f.severity == Severity.WARNING for f in found)
    return [str(f) for f in found]


def cap(within: str) -> str:
    return f"  caps:\n    - id: daily\n      max: 3\n      within: {within}\n"


def cooldown(within: str, pause: str) -> str:
    return (
        "  cooldowns:\n    - id: rest\n      outcome: dismiss\n      count: 2\n"
        f"      within: {within}\n      pause: {pause}\n"
    )


def test_a_daily_cap_written_in_minutes_is_too_short(tmp_path: Path) -> None:
    assert window_findings(tmp_path, cap("1m")) == [
        "rules/policies.yaml:5:15: warning[window-too-short]: cap 'daily' has a cap window of 1m"
        " (1 minute; `m` is minutes), which is too short to matter: caps are usually per day,"
        " week or month; expected at least 1h (a day is 1d, a month 30d)"
    ]


def test_a_cap_over_twenty_years_names_the_retention_it_implies(tmp_path: Path) -> None:
    assert window_findings(tmp_path, cap("7300d")) == [
        "rules/policies.yaml:5:15: warning[window-too-long]: cap 'daily' has a cap window of"
        " 7300d (20.0 years): caps are usually per day, week or month, and history is kept as"
        " long as the longest window needs, so this keeps every customer's history for 20.0"
        " years; expected at most 732d (2.0 years)"
    ]


def test_a_600_day_cooldown_pause_keeps_history_for_window_plus_pause(tmp_path: Path) -> None:
    (found,) = window_findings(tmp_path, cooldown("30d", "600d"))
    assert found.startswith(
        "rules/policies.yaml:7:14: warning[window-too-long]: cooldown 'rest' has a cooldown pause"
        " of 600d (600 days)"
    )
    assert "keeps every customer's history for 630 days; expected at most 366d" in found


def test_a_3000_day_complaint_pause_keeps_history_for_8_years(tmp_path: Path) -> None:
    (found,) = window_findings(tmp_path, "  complaint_pause:\n    pause: 3000d\n")
    assert found.startswith("rules/policies.yaml:3:12: warning[window-too-long]: complaint_pause")
    assert "has a complaint pause of 3000d (8.2 years)" in found
    assert "keeps every customer's history for 8.2 years; expected at most 1096d" in found


@pytest.mark.parametrize(
    "policies",
    [cap("1h"), cap("732d"), cooldown("366d", "1h"), "  complaint_pause:\n    pause: 1096d\n"],
)
def test_windows_at_the_documented_bounds_pass(tmp_path: Path, policies: str) -> None:
    assert window_findings(tmp_path, policies) == []
