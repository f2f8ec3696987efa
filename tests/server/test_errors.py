"""The one error table: each nba error a call can raise answers the same on every transport.

The table itself is pinned here, then each row is driven through a real gRPC server on an
ephemeral port with a real failure behind it (no fakes): a malformed request, a server
without a store, a closed store, a closed engine, a server with no rule set yet.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import grpc
import pytest

import nba
from nba.errors import (
    DeadlineExceededError,
    EngineError,
    NbaError,
    NotConfiguredError,
    RequestError,
    RuleSetError,
    StoreError,
)
from nba.server.auth import PermissionDeniedError, UnauthenticatedError
from nba.server.errors import FAILURES, UNEXPECTED, failure_for
from nba.server.grpc_face import build_server
from nba.server.limits import OverloadedError
from nba.server.reload import RuleSetHolder
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import RULES, example

# error class -> (gRPC code, HTTP status, Connect code); the HTTP statuses are the ones
# the Connect protocol assigns to these codes (connectrpc.com/docs/protocol#error-codes).
EXPECTED_ROWS = {
    RequestError: (grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_argument"),
    NotConfiguredError: (grpc.StatusCode.FAILED_PRECONDITION, 400, "failed_precondition"),
    StoreError: (grpc.StatusCode.UNAVAILABLE, 503, "unavailable"),
    EngineError: (grpc.StatusCode.INTERNAL, 500, "internal"),
    UnauthenticatedError: (grpc.StatusCode.UNAUTHENTICATED, 401, "unauthenticated"),
    PermissionDeniedError: (grpc.StatusCode.PERMISSION_DENIED, 403, "permission_denied"),
    OverloadedError: (grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "resource_exhausted"),
    DeadlineExceededError: (grpc.StatusCode.DEADLINE_EXCEEDED, 504, "deadline_exceeded"),
}

# nba errors no call can raise, and why; a new NbaError subclass must land in one or the other
NEVER_FROM_A_CALL = {
    "RuleSetError": "rules are loaded before serving; a broken reload keeps the last good set",
    "ConditionSyntaxError": "raised inside the loader, reported in a RuleSetError",
    "ConditionTypeError": "raised inside the loader, reported in a RuleSetError",
    "ConditionCheckError": "raised inside the loader, reported in a RuleSetError",
    "CustomerFileError": "nba simulate / gen-customers only",
    "SimulationError": "nba simulate only",
    "BatchError": "nba batch only",
    "TokenFileError": "read at startup (exit 2); a broken reload keeps the last good tokens",
    "TlsFileError": "read at startup (exit 2); a broken rotation keeps the last good pair",
    "JwksFileError": "read at startup (exit 2); a broken reload keeps the last good keys",
}
NO_STORE = "this server runs without an interaction store (--store none)"


def test_the_table_gives_each_error_one_status_per_transport() -> None:
    rows = {cls: (f.grpc_code, f.http_status, f.connect_code) for cls, f in FAILURES.items()}
    assert rows == EXPECTED_ROWS
    assert (UNEXPECTED.grpc_code, UNEXPECTED.http_status, UNEXPECTED.connect_code) == (
        grpc.StatusCode.INTERNAL,
        500,
        "internal",
    )


def _every_nba_error() -> set[type[NbaError]]:
    for module in pkgutil.walk_packages(nba.__path__, "nba."):
        if module.name != "nba.__main__":
            importlib.import_module(module.name)
    found: set[type[NbaError]] = set()
    todo = [NbaError]
    while todo:
        for sub in todo.pop().__subclasses__():
            if sub.__module__.startswith("nba.") and sub not in found:
                found.add(sub)
                todo.append(sub)
    return found


def test_every_nba_error_a_call_can_raise_has_a_row() -> None:
    errors = _every_nba_error()
    assert set(NEVER_FROM_A_CALL) <= {cls.__name__ for cls in errors}  # no stale entries
    missing = [
        cls.__name__
        for cls in errors
        if cls.__name__ not in NEVER_FROM_A_CALL and failure_for(cls) is UNEXPECTED
    ]
    assert missing == [], "add these to nba.server.errors.FAILURES or NEVER_FROM_A_CALL"


def test_a_subclass_answers_like_its_parent() -> None:
    class ReplicaLagError(StoreError):  # e.g. a backend's own kind of outage
        pass

    assert failure_for(ReplicaLagError) is FAILURES[StoreError]
    assert failure_for(KeyError) is UNEXPECTED
    assert failure_for(RuleSetError) is UNEXPECTED


@contextmanager
def serving(holder: RuleSetHolder) -> Iterator[pb_grpc.DecisionServiceStub]:
    running = build_server(holder, "127.0.0.1", 0, threads=2)
    try:
        with grpc.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            yield pb_grpc.DecisionServiceStub(channel)
    finally:
        running.server.stop(grace=None)
        holder.close()


def failed(call: Callable[..., object], request: object) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as caught:
        call(request, timeout=10)
    return caught.value


def outcome() -> pb.RecordOutcomeRequest:
    record = pb.RecordOutcomeRequest(customer_id="c-errors", interaction_id="i-1")
    record.interaction.action_id = "card_cashback"
    record.interaction.channel = "web"
    record.interaction.outcome = pb.CLICK
    return record


def nba_errors_logged(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name.startswith("nba.server")]


def test_a_malformed_request_is_invalid_argument_naming_the_field_and_not_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = RuleSetHolder(RULES, "reference")
    holder.load()
    request = example("web_prospect_homepage.json")
    request.profile.update({"age": "forty"})
    with serving(holder) as stub:
        error = failed(stub.Decide, request)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error.details().startswith("profile.age: got 'forty'")
    assert nba_errors_logged(caplog) == []


def test_a_server_without_a_store_says_so_with_failed_precondition() -> None:
    holder = RuleSetHolder(RULES, "reference", store=None)
    holder.load()
    consent = pb.UpdateConsentRequest(customer_id="c-errors", consent={"email": False})
    with serving(holder) as stub:
        errors = [failed(stub.RecordOutcome, outcome()), failed(stub.UpdateConsent, consent)]
    assert [(e.code(), e.details()) for e in errors] == [
        (grpc.StatusCode.FAILED_PRECONDITION, NO_STORE)
    ] * 2


def test_a_store_outage_is_unavailable_and_the_client_never_sees_the_store(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "hidden-name.sqlite3"
    store = open_store(f"sqlite:///{path}", retention_seconds=86400)
    holder = RuleSetHolder(RULES, "reference", store)
    holder.load()
    store.close()  # every later call fails inside the store
    with serving(holder) as stub:
        error = failed(stub.RecordOutcome, outcome())
    assert (error.code(), error.details()) == (
        grpc.StatusCode.UNAVAILABLE,
        "the interaction store is unavailable",
    )
    [logged] = nba_errors_logged(caplog)
    assert logged.levelno == logging.ERROR and logged.exc_info is None
    assert logged.getMessage().startswith("RecordOutcome failed: sqlite ")
    assert "hidden-name.sqlite3" in logged.getMessage()


def test_an_engine_failure_is_internal_without_internals_and_logged_with_the_version(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = RuleSetHolder(RULES, "durable")
    decider = holder.load()
    decider.close()  # its engine now refuses every fact, as after a bug freed it
    with serving(holder) as stub:
        error = failed(stub.Decide, example("web_prospect_homepage.json"))
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INTERNAL,
        "the rule engine failed; see the server log",
    )
    [logged] = nba_errors_logged(caplog)
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], EngineError)
    assert logged.getMessage().startswith("Decide failed with EngineError: ")
    assert f"rule set version {decider.version}" in caplog.text  # the note, in the trace


def test_an_unexpected_exception_is_internal_generic_and_its_traceback_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = RuleSetHolder(RULES, "reference")  # never loaded: every lease fails
    with serving(holder) as stub:
        error = failed(stub.GetRuleSetStatus, pb.GetRuleSetStatusRequest())
    assert (error.code(), error.details()) == (
        grpc.StatusCode.INTERNAL,
        "internal error; see the server log",
    )
    [logged] = nba_errors_logged(caplog)
    assert logged.exc_info is not None and isinstance(logged.exc_info[1], RuntimeError)
    assert "Traceback" in caplog.text and "no rule set loaded yet" in caplog.text
