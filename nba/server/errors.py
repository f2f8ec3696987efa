"""What a client sees when a call fails: one table for every transport.

Each nba error class that a call can raise maps to one row: the gRPC status code, the HTTP
status and Connect error code (https://connectrpc.com/docs/protocol#error-codes) for the
HTTP face, the message the client gets, and how the server logs it. An exception is looked
up along its MRO, so a subclass (a backend's own StoreError, say) answers like its parent.
Anything not in the table is a bug: INTERNAL, a generic message, the traceback in the log.

    error                 gRPC                 HTTP  Connect              client sees
    RequestError          INVALID_ARGUMENT     400   invalid_argument     "field: what was wrong"
    NotConfiguredError    FAILED_PRECONDITION  400   failed_precondition  its own message
    UnauthenticatedError  UNAUTHENTICATED      401   unauthenticated      its own message
    PermissionDeniedError PERMISSION_DENIED    403   permission_denied    the scope needed
    OverloadedError       RESOURCE_EXHAUSTED   429   resource_exhausted   its own message
    DeadlineExceededError DEADLINE_EXCEEDED    504   deadline_exceeded    its own message
    StoreError            UNAVAILABLE          503   unavailable          a fixed message
    EngineError           INTERNAL             500   internal             a fixed message
    anything else         INTERNAL             500   internal             a fixed message

Messages the caller can act on (which field, which flag the server lacks) are passed on as
they are; a store or engine failure is described to the operator in the log, never to the
client (store URLs, engine internals and tracebacks stay on the server).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import Enum

import grpc

from nba.errors import (
    DeadlineExceededError,
    EngineError,
    NotConfiguredError,
    RequestError,
    StoreError,
)
from nba.server.auth import PermissionDeniedError, UnauthenticatedError
from nba.server.limits import OverloadedError

log = logging.getLogger(__name__)


class Logged(Enum):
    """How the server logs a failure before answering it."""

    NOT = "not"  # the caller's mistake, already explained to the caller
    MESSAGE = "message"  # an outage: the message says what and where, a traceback adds nothing
    TRACEBACK = "traceback"  # a bug: the whole traceback, to report it


@dataclass(frozen=True)
class Failure:
    """How one kind of failure reaches a client, on every transport."""

    grpc_code: grpc.StatusCode
    http_status: int
    connect_code: str
    message: str | None  # what the client reads; None: the exception's own text
    logged: Logged

    def client_message(self, exc: BaseException) -> str:
        return str(exc) if self.message is None else self.message


FAILURES: dict[type[BaseException], Failure] = {
    RequestError: Failure(
        grpc.StatusCode.INVALID_ARGUMENT, 400, "invalid_argument", None, Logged.NOT
    ),
    NotConfiguredError: Failure(
        grpc.StatusCode.FAILED_PRECONDITION, 400, "failed_precondition", None, Logged.NOT
    ),
    UnauthenticatedError: Failure(
        grpc.StatusCode.UNAUTHENTICATED, 401, "unauthenticated", None, Logged.NOT
    ),
    PermissionDeniedError: Failure(
        grpc.StatusCode.PERMISSION_DENIED, 403, "permission_denied", None, Logged.NOT
    ),
    OverloadedError: Failure(
        grpc.StatusCode.RESOURCE_EXHAUSTED, 429, "resource_exhausted", None, Logged.NOT
    ),
    DeadlineExceededError: Failure(
        grpc.StatusCode.DEADLINE_EXCEEDED, 504, "deadline_exceeded", None, Logged.NOT
    ),
    StoreError: Failure(
        grpc.StatusCode.UNAVAILABLE,
        503,
        "unavailable",
        "the interaction store is unavailable",
        Logged.MESSAGE,
    ),
    EngineError: Failure(
        grpc.StatusCode.INTERNAL,
        500,
        "internal",
        "the rule engine failed; see the server log",
        Logged.TRACEBACK,
    ),
}

UNEXPECTED = Failure(
    grpc.StatusCode.INTERNAL,
    500,
    "internal",
    "internal error; see the server log",
    Logged.TRACEBACK,
)


def failure_for(kind: type[BaseException]) -> Failure:
    """The row for an exception class: its own, its nearest ancestor's, or UNEXPECTED."""
    for cls in kind.__mro__:
        failure = FAILURES.get(cls)
        if failure is not None:
            return failure
    return UNEXPECTED


def reported(exc: BaseException, operation: str) -> Failure:
    """The row for `exc`, once the server log has what the row says it should get.

    `operation` names the call in the log (the RPC name, or the HTTP route).
    """
    failure = failure_for(type(exc))
    if failure.logged is Logged.MESSAGE:
        log.error("%s failed: %s", operation, exc)
    elif failure.logged is Logged.TRACEBACK:
        log.error("%s failed with %s: %s", operation, type(exc).__name__, exc, exc_info=exc)
    return failure
