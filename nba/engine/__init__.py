"""Rule engines: given a request, which rules hold.

Two implementations of one small interface:
- `durable`   durable_rules, the production engine (compiled once per rule-set load);
- `reference` the condition language in plain Python: the oracle of the differential
              tests, and the engine where durable_rules does not import (Python 3.13+).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Protocol

from nba.pipeline.types import DecisionRequest
from nba.ruleset.ruleset import Rule, RuleSet

log = logging.getLogger(__name__)
ENGINES = ("durable", "reference")


@dataclass(frozen=True, slots=True)
class EngagedChunk:
    """A chunk of "engaged" rules the engine evaluates in one go, and what it may engage.

    Known when the rule set is compiled; top-k (nba/pipeline/topk.py) bounds what each
    chunk could add to a decision from the actions of each (group, purpose) in it.
    """

    classes: Mapping[tuple[str, str], frozenset[str]]  # (group, purpose) -> action ids
    actions: frozenset[str]


class RankedRun(Protocol):
    """One request's run of the fast program, its engaged chunks fired on demand.

    On entry everything but the engaged chunks has run: `fired` holds the segments,
    suppressions and weights that hold (and the "engaged" rule of any action the engine
    evaluates outside its chunks). Each `fire_chunk` adds that chunk's engaged rules.
    """

    fired: list[Rule]

    def fire_chunk(self, index: int) -> None: ...


class RuleEngine(Protocol):
    name: str

    # The chunks a RankedRun fires on demand, by index; empty when the engine has no
    # chunks to skip (the whole program runs on entry).
    @property
    def engaged_chunks(self) -> Sequence[EngagedChunk]: ...

    def fire(self, request: DecisionRequest, detailed: bool = True) -> list[Rule]:
        """The rules whose conditions hold, segments first (each rule at most once).

        detailed: every engagement rule separately (to explain exclusions); otherwise one
        "engaged" rule per action whose engagement rules all hold.
        """
        ...

    def ranked(self, request: DecisionRequest) -> AbstractContextManager[RankedRun]:
        """The fast program for this request, its engaged chunks left for the caller.

        The caller fires chunks (best first) until the rest cannot change its answer; the
        run's `fired` then equals a prefix-complete `fire(request, detailed=False)`. The
        engine may hold a lock until the block ends.
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
