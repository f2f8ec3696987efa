"""nba: a rules-based next-best-action decisioning engine.

The public API is exactly ``__all__`` (pinned by tests/test_public_api.py); everything
else is internal and may move. A program that embeds nba needs only this::

    import nba

    ruleset = nba.load_ruleset("rules")           # every error at once: nba.RuleSetError
    store = nba.open_store("sqlite:///nba.sqlite3", retention_seconds=86400 * 400)
    decider = nba.Decider(ruleset, store=store)
    response = decider.decide(request)            # nba.v1 DecideRequest -> DecideResponse

Names are resolved on first use (PEP 562), so ``import nba`` stays cheap for the command
line and the store and pipeline packages can import each other's types without a cycle.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from nba.errors import (
        EngineError,
        Location,
        NbaError,
        NotConfiguredError,
        RequestError,
        RuleError,
        RuleSetError,
        Severity,
        StoreError,
    )
    from nba.pipeline.decider import Decider
    from nba.pipeline.types import Decision, DecisionRequest, Interaction, Outcome
    from nba.ruleset.loader import load_ruleset
    from nba.ruleset.ruleset import RuleSet
    from nba.store import InteractionStore, open_store

__all__ = [
    "Decider",
    "Decision",
    "DecisionRequest",
    "EngineError",
    "Interaction",
    "InteractionStore",
    "Location",
    "NbaError",
    "NotConfiguredError",
    "Outcome",
    "RequestError",
    "RuleError",
    "RuleSet",
    "RuleSetError",
    "Severity",
    "StoreError",
    "load_ruleset",
    "open_store",
]

_HOME = {
    "Decider": "nba.pipeline.decider",
    "Decision": "nba.pipeline.types",
    "DecisionRequest": "nba.pipeline.types",
    "Interaction": "nba.pipeline.types",
    "Outcome": "nba.pipeline.types",
    "InteractionStore": "nba.store",
    "open_store": "nba.store",
    "RuleSet": "nba.ruleset.ruleset",
    "load_ruleset": "nba.ruleset.loader",
    **{
        name: "nba.errors"
        for name in (
            "EngineError",
            "Location",
            "NbaError",
            "NotConfiguredError",
            "RequestError",
            "RuleError",
            "RuleSetError",
            "Severity",
            "StoreError",
        )
    },
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'nba' has no attribute {name!r}")
    value = getattr(import_module(home), name)
    globals()[name] = value  # resolved once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
