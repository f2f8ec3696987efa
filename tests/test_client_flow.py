"""The README's client flow, run for real: decide, record ACCEPT, decide again.

examples/python/decide_record_decide.py runs against a real `nba serve`; the one-time
switch bonus it accepts is gone from the second decision. That holds only because the
example request has no fixed `asOf`: a request decided as of a past moment does not see an
ACCEPT recorded now, which is why the examples keep `asOf` only where the moment matters.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import EXAMPLES, REPO, RULES
from tests.helpers import served

FLOW = REPO / "examples" / "python" / "decide_record_decide.py"


def run_flow(address: str, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, str(FLOW), "--address", address, *args],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def recommended(section: str) -> list[str]:
    """Action ids of the lines "  1. acct_current_switch on web: ..." of one decision."""
    lines = [line.strip() for line in section.splitlines() if line.startswith("  ")]
    return [line.split()[1] for line in lines if line[0].isdigit()]


@pytest.mark.slow
def test_an_accepted_one_time_offer_is_gone_from_the_next_decision(tmp_path: Path) -> None:
    store = f"sqlite:///{tmp_path}/interactions.sqlite3"
    args = ("--rules", str(RULES), "--port", "0", "--store", store, "--workers", "1")
    with served(*args, "--no-watch") as server:
        output = run_flow(f"127.0.0.1:{server.port}")
    first, after = output.split("recorded ACCEPT of ")
    assert recommended(first)[0] == "acct_current_switch"  # one_time: true in accounts.yaml
    assert after.startswith("acct_current_switch on web")
    assert "acct_current_switch" not in recommended(after)
    assert "acct_current_switch is no longer recommended: one_time: " in after


def test_examples_fix_as_of_only_where_the_moment_matters() -> None:
    """History windows and quiet hours (outbound) need a fixed moment; nothing else does."""
    for path in sorted(EXAMPLES.glob("*.json")):
        request = json.loads(path.read_text(encoding="utf-8"))
        outbound = request.get("touchpoint", {}).get("channel", "outbound") == "outbound"
        needs_moment = bool(request.get("interactions")) or outbound
        assert ("asOf" in request) == needs_moment, path.name
