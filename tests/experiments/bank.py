"""The bundled rules with experiments added, for the experiment tests."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from tests.conftest import RULES

# Arms as hostile as an author can make them: marketing levers and weights pushed 50x,
# every suppression switched off, learning off. Consent must hold in every one.
HOSTILE = """
universal_control:
  share: 0.1
  salt: uc-2026
  treatment: {treatment}
experiments:
  - id: push
    salt: push-2026-12
    control: champion
    arms:
      - id: champion
        share: 0.25
      - id: levers
        share: 0.25
        levers: {{q4_deposit_push: 50, mortgage_rate_promo: 50, card_risk_appetite: 50}}
      - id: unsuppressed
        share: 0.25
        rules:
          disable: [arrears_no_credit, prospect_no_credit, student_no_mortgage,
                    vulnerable_no_sales_assisted, complaint_no_marketing,
                    hardship_no_marketing, lapsed_winback_only, outbound_contact_fatigue]
      - id: weighted
        share: 0.25
        weights: {{growing_cross_sell: 50, mortgage_intent: 50, savings_hub_boost: 50}}
        scoring: static
"""


def bank_with(experiments: str, directory: Path | None = None) -> RuleSet:
    """The bundled rules plus an experiments.yaml of `experiments`."""
    target = Path(directory or tempfile.mkdtemp(prefix="nba-exp-")) / "rules"
    shutil.copytree(RULES, target, ignore=shutil.ignore_patterns("tests", "examples"))
    (target / "experiments.yaml").write_text(experiments)
    return load_ruleset(target, display_root="rules")
