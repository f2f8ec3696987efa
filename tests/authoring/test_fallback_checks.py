"""`nba validate` on fallbacks that bypass eligibility or that consent withholds (item 6)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from nba.authoring.checks import check
from nba.errors import Severity
from nba.ruleset.loader import load_ruleset
from tests.helpers import BASE, action, write_rules

FALLBACK_CODES = ("fallback-bypasses-eligibility", "fallback-is-marketing", "fallback-needs-opt-in")


def rules_with(tmp_path: Path, fallbacks: str, actions: str) -> Path:
    return write_rules(
        tmp_path / "rules",
        {"base.yaml": BASE + textwrap.dedent(fallbacks), "actions.yaml": "actions:\n" + actions},
    )


def fallback_findings(rules: Path) -> list[str]:
    found = check(load_ruleset(rules, display_root="rules"))
    return [str(f) for f in found if f.code in FALLBACK_CODES]


WINBACK = action("winback", extra="eligible: '\"checking\" in profile.products'")


def test_a_marketing_fallback_with_engagement_rules_is_an_error(tmp_path: Path) -> None:
    rules = rules_with(tmp_path, "fallbacks:\n  - channel: web\n    action: winback\n", WINBACK)
    assert fallback_findings(rules) == [
        "rules/base.yaml:20:5: error[fallback-bypasses-eligibility]: fallback action 'winback'"
        " for touchpoint.channel web is a marketing action with engagement rules"
        " ('winback.eligible' at rules/actions.yaml:12:15), which a fallback skips: it reaches"
        " customers its own rules exclude; expected a service action as the fallback (or no"
        " fallback for this touchpoint)"
    ]
    result = subprocess.run(
        [sys.executable, "-m", "nba", "validate", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1  # before: "ok", and the win-back offer went to everyone
    assert "error[fallback-bypasses-eligibility]" in result.stderr


def test_a_marketing_fallback_without_rules_and_one_on_an_opt_in_channel_warn(
    tmp_path: Path,
) -> None:
    fallbacks = """
        fallbacks:
          - channel: email
            action: newsletter
          - action: svc
    """
    actions = action("newsletter") + action("svc", purpose="service", group="service")
    rules = rules_with(tmp_path, fallbacks, actions)
    found = check(load_ruleset(rules, display_root="rules"))
    mine = [f for f in found if f.code in FALLBACK_CODES]
    assert {f.severity for f in mine} == {Severity.WARNING}
    assert [str(f) for f in mine] == [
        "rules/base.yaml:21:5: warning[fallback-is-marketing]: fallback action 'newsletter'"
        " for touchpoint.channel email is a marketing action: every customer nothing else"
        " qualifies for gets this sales message, whoever they are; expected a service action"
        " as the fallback",
        "rules/base.yaml:21:5: warning[fallback-needs-opt-in]: fallback action 'newsletter'"
        " for touchpoint.channel email is a marketing message on email, where marketing needs"
        " an explicit opt-in (declared at rules/base.yaml:14:5): every customer without"
        " consent[email] = true gets no fallback at all; expected a fallback action whose"
        " purpose the channel allows by default (e.g. a service message)",
    ]
    strict = subprocess.run(
        [sys.executable, "-m", "nba", "validate", "--strict", str(rules)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert strict.returncode == 1, strict.stdout + strict.stderr


def test_service_fallbacks_pass(tmp_path: Path) -> None:
    fallbacks = "fallbacks:\n  - channel: email\n    action: svc\n  - action: svc\n"
    rules = rules_with(tmp_path, fallbacks, action("svc", purpose="service", group="service"))
    assert fallback_findings(rules) == []
