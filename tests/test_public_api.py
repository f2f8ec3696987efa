"""The public API is exactly nba.__all__ (as httpx pins its own): adding a name is a
decision, removing or renaming one breaks embedders."""

from __future__ import annotations

import subprocess
import sys

import pytest

import nba
from nba.errors import NbaError
from tests.conftest import EXAMPLES, RULES, example

PUBLIC = {
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
}


def test_all_is_pinned() -> None:
    assert set(nba.__all__) == PUBLIC
    assert len(nba.__all__) == len(PUBLIC)  # no name twice


@pytest.mark.parametrize("name", sorted(PUBLIC))
def test_every_public_name_resolves(name: str) -> None:
    assert getattr(nba, name) is not None
    assert name in dir(nba)


def test_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no attribute 'Decidr'"):
        nba.Decidr  # noqa: B018 - the access is the test


def test_every_error_sits_under_the_root() -> None:
    for name in ("EngineError", "NotConfiguredError", "RequestError", "RuleSetError", "StoreError"):
        assert issubclass(getattr(nba, name), NbaError)
    from nba.authoring.customers import CustomerFileError
    from nba.authoring.simulate import SimulationError
    from nba.ruleset.conditions import ConditionSyntaxError
    from nba.ruleset.resolve import ConditionCheckError, ConditionTypeError

    for error in (
        CustomerFileError,
        SimulationError,
        ConditionSyntaxError,
        ConditionTypeError,
        ConditionCheckError,
    ):
        assert issubclass(error, NbaError), error


def test_the_documented_embedding_decides() -> None:
    """The module docstring's example, run as written (memory store instead of a file)."""
    ruleset = nba.load_ruleset(RULES)
    store = nba.open_store("memory://", retention_seconds=86400 * 400)
    decider = nba.Decider(ruleset, store=store)
    first = sorted(EXAMPLES.glob("*.json"))[0].name
    response = decider.decide(example(first))
    assert response.ruleset_version == ruleset.version
    assert response.recommendations
    with pytest.raises(nba.RuleSetError):
        nba.load_ruleset(RULES / "examples")  # a directory with no rule files


def test_import_nba_is_cheap() -> None:
    """`import nba` must not load the engine, the store backends or grpc (CLI start-up)."""
    heavy = "('grpc', 'durable', 'redis', 'nba.')"
    code = f"import sys, nba; print(sorted(m for m in sys.modules if m.startswith({heavy})))"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == "[]"
