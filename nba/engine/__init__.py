"""Rule engines: given a request, which rules hold.

Two implementations of one small interface:
- `durable`   durable_rules, the production engine (compiled once per rule-set load);
- `reference` the condition language in plain Python: the oracle of the differential
              tests, and the engine where durable_rules does not import (Python 3.13+).
"""

from __future__ import annotations

import logging
from typing import Protocol

from nba.pipeline.types import DecisionRequest
from nba.ruleset.ruleset import Rule, RuleSet

log = logging.getLogger(__name__)
ENGINES = ("durable", "reference")


class RuleEngine(Protocol):
    name: str

    def fire(self, request: DecisionRequest, detailed: bool = True) -> list[Rule]:
        """The rules whose conditions hold, segments first (each rule at most once).

        detailed: every engagement rule separately (to explain exclusions); otherwise one
        "engaged" rule per action whose engagement rules all hold.
        """
        ...


def make_engine(ruleset: RuleSet, kind: str = "durable") -> RuleEngine:
    if kind == "reference":
        from nba.engine.reference import ReferenceEngine

        return ReferenceEngine(ruleset)
    if kind != "durable":
        raise ValueError(f"unknown engine '{kind}'; expected one of {', '.join(ENGINES)}")
    try:
        from nba.engine.durable import DurableEngine
    except ImportError as exc:  # e.g. Python 3.13: the C extension does not import
        log.warning("durable_rules unavailable (%s); using the reference evaluator", exc)
        from nba.engine.reference import ReferenceEngine

        return ReferenceEngine(ruleset)
    return DurableEngine(ruleset)
