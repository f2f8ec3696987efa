"""Assignment: the documented hash, stable across processes, splits that match the shares,
layers that keep experiments apart."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from nba.experiments.assign import Assigner, bucket
from nba.ruleset.ruleset import UNIVERSAL_CONTROL
from tests.experiments.bank import bank_with

# The test vectors in rules/README.md ("Experiments"): anyone reimplementing the hash
# (a warehouse query, a CRM) checks against these.
VECTORS = [
    ("uc-2026", "universal_control", "c-1001", 3138),
    ("uc-2026", "universal_control", "c-1002", 4134),
    ("push-2026-12", "push", "c-1001", 9784),
    ("push-2026-12", "push", "ünïcode-ω", 3466),
    ("layer", "homepage", "c-1001", 2430),
]

TWO_ARMS = """
experiments:
  - id: copy
    salt: copy-1
    control: champion
    arms:
      - {id: champion, share: 0.3}
      - {id: challenger, share: 0.7, levers: {q4_deposit_push: 2}}
"""

LAYERED = """
experiments:
  - id: banner_a
    salt: a-1
    layer: homepage
    traffic: 0.5
    control: without
    arms:
      - {id: without, share: 0.5}
      - {id: with, share: 0.5, levers: {q4_deposit_push: 2}}
  - id: banner_b
    salt: b-1
    layer: homepage
    traffic: 0.3
    control: without
    arms:
      - {id: without, share: 0.5}
      - {id: with, share: 0.5, levers: {mortgage_rate_promo: 2}}
  - id: email_copy
    salt: e-1
    control: without
    arms:
      - {id: without, share: 0.5}
      - {id: with, share: 0.5, scoring: static}
"""


@pytest.mark.parametrize(("salt", "experiment", "customer", "expected"), VECTORS)
def test_the_documented_hash_gives_the_published_test_vectors(
    salt: str, experiment: str, customer: str, expected: int
) -> None:
    assert bucket(salt, experiment, customer) == expected


def test_assignment_is_the_same_in_another_process_and_after_a_reload(tmp_path: Path) -> None:
    customers = [f"c-{i}" for i in range(200)]
    rules = bank_with(TWO_ARMS, tmp_path)
    ours = [Assigner(rules.experiments).arms(c)["copy"].id for c in customers]
    script = (
        "import sys\n"
        "from nba.experiments.assign import Assigner\n"
        "from nba.ruleset.loader import load_ruleset\n"
        "a = Assigner(load_ruleset(sys.argv[1]).experiments)\n"
        f"print(' '.join(a.arms(f'c-{{i}}')['copy'].id for i in range({len(customers)})))\n"
    )
    theirs = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "rules")],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "12345"},  # another str hash: must not matter
    ).stdout.split()
    assert theirs == ours
    again = Assigner(bank_with(TWO_ARMS).experiments)  # a reload builds a new one
    assert [again.arms(c)["copy"].id for c in customers] == ours


def test_the_split_matches_the_declared_shares_within_sampling_error() -> None:
    assigner = Assigner(bank_with(TWO_ARMS).experiments)
    n = 20_000
    counts = Counter(assigner.arms(f"customer-{i}")["copy"].id for i in range(n))
    share = counts["challenger"] / n
    assert abs(share - 0.7) < 4 * math.sqrt(0.7 * 0.3 / n), counts  # 4 sigma: ~1 in 16,000


def test_experiments_of_one_layer_never_share_a_customer_and_other_layers_are_independent() -> None:
    assigner = Assigner(bank_with(LAYERED).experiments)
    n = 20_000
    seen = [assigner.arms(f"u{i}") for i in range(n)]
    assert not any("banner_a" in s and "banner_b" in s for s in seen)
    a = sum("banner_a" in s for s in seen) / n
    b = sum("banner_b" in s for s in seen) / n
    assert abs(a - 0.5) < 0.02 and abs(b - 0.3) < 0.02
    assert all("email_copy" in s for s in seen)  # its own layer, all traffic
    # independence: email_copy's split is the same inside banner_a and outside it
    on_in_a = [s["email_copy"].id == "with" for s in seen if "banner_a" in s]
    on_out = [s["email_copy"].id == "with" for s in seen if "banner_a" not in s]
    assert abs(sum(on_in_a) / len(on_in_a) - sum(on_out) / len(on_out)) < 0.03


def test_a_universal_control_customer_is_in_no_other_experiment() -> None:
    rules = bank_with(TWO_ARMS + "universal_control: {share: 0.2, salt: uc-9}\n")
    assigner = Assigner(rules.experiments)
    seen = [assigner.arms(f"x{i}") for i in range(5_000)]
    held = [s for s in seen if s[UNIVERSAL_CONTROL].id == "control"]
    assert 0.17 < len(held) / len(seen) < 0.23
    assert all(list(s) == [UNIVERSAL_CONTROL] for s in held)
    assert all("copy" in s for s in seen if s[UNIVERSAL_CONTROL].id == "treated")
