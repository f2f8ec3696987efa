"""The gRPC face: DecisionService over gRPC, plus the standard health and reflection services.

Each RPC is one call into the transport-neutral DecisionService (service.py); a failure
becomes a status through the one error table (errors.py): a malformed request gets
INVALID_ARGUMENT naming the field and changes nothing, an engine failure (a bug, never the
caller's fault) gets INTERNAL and its traceback goes to the log. The `nba.rules` health
name follows the rule files: the holder tells this face's listener about every reload.

Bytes that do not parse as the request never reach grpc's own deserializer (which logs a
traceback and answers INTERNAL): a lenient deserializer hands the handler an Undecodable
instead, answered INVALID_ARGUMENT naming the message, logged one line per 10 s at most.
The `authorization` metadata goes to the service, which authenticates it (auth.py);
reflection, which never reaches the service, is gated by an interceptor with the same
policy (admin scope).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nba.errors import NbaError, RequestError
from nba.server.auth import Authenticator, OpenDoor, Scope, require
from nba.server.errors import failure_for, reported
from nba.server.limits import InFlight, Limits, RateLimitedLog
from nba.server.metrics import NO_METRICS, Metrics
from nba.server.reload import Listener, LoadResult, RuleSetHolder
from nba.server.service import CallContext, DecisionService
from nba.server.tls import TlsFiles, server_credentials
from nba.store import InteractionStore
from nba.store.guarded import GuardedStore
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc

if TYPE_CHECKING:
    from nba.decisionlog.writer import DecisionRecorder

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
# Health of the rule files themselves: NOT_SERVING while the newest files are rejected
# (the last good set still serves, so the service's own status stays SERVING).
RULES_HEALTH = "nba.rules"
STORE_HEALTH = "nba.store"  # NOT_SERVING while the store's circuit is open (store/guarded.py)
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)

log = logging.getLogger(__name__)
undecodable_log = RateLimitedLog()
NO_LIMITS_GIVEN = Limits()  # the defaults of limits.py


@dataclass(frozen=True)
class Undecodable:
    """What the lenient deserializer hands on for bytes that are not the request."""

    message: str  # the request message's name, e.g. DecideRequest
    reason: str  # protobuf's words, cut


def lenient(message: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    """A request deserializer that never raises: bad bytes, invalid UTF-8 in a string or a
    Struct nested past protobuf's recursion limit become an Undecodable."""
    name = message.DESCRIPTOR.name

    def parse(data: bytes) -> Message | Undecodable:
        try:
            return message.FromString(data)
        except Exception as exc:  # DecodeError, RecursionError: all the caller's bytes
            return Undecodable(name, str(exc)[:100])

    return parse


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    """Each RPC: one service call; an exception becomes the status the error table says."""

    def __init__(self, service: DecisionService) -> None:
        self.service = service

    def _answer(
        self,
        rpc: str,
        call: Callable[[Request, CallContext], Response],
        request: Request | Undecodable,
        context: grpc.ServicerContext,
    ) -> Response:
        return answer(rpc, call, request, context, self.service.metrics)

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        return self._answer("Decide", self.service.decide, request, context)

    def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: grpc.ServicerContext
    ) -> pb.RecordOutcomeResponse:
        return self._answer("RecordOutcome", self.service.record_outcome, request, context)

    def UpdateConsent(
        self, request: pb.UpdateConsentRequest, context: grpc.ServicerContext
    ) -> pb.UpdateConsentResponse:
        return self._answer("UpdateConsent", self.service.update_consent, request, context)

    def GetRuleSetStatus(
        self, request: pb.GetRuleSetStatusRequest, context: grpc.ServicerContext
    ) -> pb.RuleSetStatus:
        return self._answer("GetRuleSetStatus", self.service.status, request, context)


def answer(
    rpc: str,
    call: Callable[[Request, CallContext], Response],
    request: Request | Undecodable,
    context: grpc.ServicerContext,
    metrics: Metrics,
) -> Response:
    started = time.perf_counter()
    metrics.started("grpc", rpc)
    try:
        if isinstance(request, Undecodable):
            raise _undecodable(request, context)
        response = call(request, _call_context(context))
    except Exception as exc:  # every failure, expected or a bug, answers through the table
        failure = reported(exc, rpc)
        metrics.call("grpc", rpc, failure.grpc_code.name, time.perf_counter() - started)
        context.abort(failure.grpc_code, failure.client_message(exc))
        raise AssertionError("unreachable") from exc  # pragma: no cover - abort raises
    metrics.call("grpc", rpc, "OK", time.perf_counter() - started)
    return response


def _call_context(context: grpc.ServicerContext) -> CallContext:
    remaining = context.time_remaining()  # None: the client set no deadline
    return CallContext(
        authorization=_authorization(context.invocation_metadata()),
        deadline=None if remaining is None else time.monotonic() + remaining,
    )


def _undecodable(request: Undecodable, context: grpc.ServicerContext) -> RequestError:
    suppressed = undecodable_log.allow()
    if suppressed is not None:
        more = f" ({suppressed} more since the last line)" if suppressed else ""
        log.warning(
            "undecodable %s from %s: %s%s", request.message, context.peer(), request.reason, more
        )
    return RequestError(request.message, "undecodable bytes: not a valid protobuf message")


def _authorization(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            return value if isinstance(value, str) else None
    return None


def decision_handler(servicer: DecisionServicer) -> grpc.GenericRpcHandler:
    """The DecisionService methods, each with its lenient deserializer."""
    methods = pb.DESCRIPTOR.services_by_name["DecisionService"].methods
    handlers = {
        method.name: grpc.unary_unary_rpc_method_handler(
            getattr(servicer, method.name),
            request_deserializer=lenient(_message_class(method.input_type.name)),
            response_serializer=_message_class(method.output_type.name).SerializeToString,
        )
        for method in methods
    }
    return grpc.method_handlers_generic_handler(SERVICE_NAME, handlers)


def _message_class(name: str) -> type[Message]:
    cls: type[Message] = getattr(pb, name)
    return cls


class AdminOnlyReflection(grpc.ServerInterceptor):
    """Server reflection answers only callers with the admin scope."""

    def __init__(self, auth: Authenticator) -> None:
        self.auth = auth

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], grpc.RpcMethodHandler[Any, Any] | None],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        if not details.method.startswith(f"/{reflection.SERVICE_NAME}/"):
            return continuation(details)
        try:
            require(
                self.auth.authenticate(_authorization(details.invocation_metadata)), Scope.ADMIN
            )
        except NbaError as exc:
            failure = failure_for(type(exc))
            message = failure.client_message(exc)

            def deny(_requests: Any, context: grpc.ServicerContext) -> Any:
                context.abort(failure.grpc_code, message)

            return grpc.stream_stream_rpc_method_handler(deny)
        return continuation(details)


@dataclass
class Running:
    server: grpc.Server
    port: int
    health: health.HealthServicer
    service: DecisionService  # the HTTP face serves this same one: same auth, same in-flight


def build_server(
    holder: RuleSetHolder,
    host: str = "127.0.0.1",
    port: int = 50051,
    threads: int = 8,
    reuse_port: bool = False,
    *,
    tls: TlsFiles | None = None,
    auth: Authenticator | None = None,
    limits: Limits = NO_LIMITS_GIVEN,
    reflection_on: bool = True,
    metrics: Metrics = NO_METRICS,
    decision_log: DecisionRecorder | None = None,
) -> Running:
    """A started server on host:port (port 0 picks a free one) with health and reflection.

    `tls`: serve TLS (mTLS with a client CA); `auth`: who may call what (None: anyone);
    `limits`: request size and calls in flight; `reflection_on`: False hides the schema;
    `decision_log`: where each decision is queued for the log (None: not logged).
    """
    in_flight = limits.in_flight_for(threads)
    pool = limits.pool_for(threads)
    options = [
        ("grpc.so_reuseport", 1 if reuse_port else 0),
        ("grpc.max_receive_message_length", limits.max_request_bytes),
    ]
    auth = auth or OpenDoor()
    gated = reflection_on and not isinstance(auth, OpenDoor)
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=pool),
        options=options,
        maximum_concurrent_rpcs=pool,  # every admitted call has a thread: nothing queues
        interceptors=[AdminOnlyReflection(auth)] if gated else None,
    )
    service = DecisionService(
        holder, auth=auth, in_flight=InFlight(in_flight), metrics=metrics, decision_log=decision_log
    )
    server.add_generic_rpc_handlers((decision_handler(DecisionServicer(service)),))
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    if reflection_on:
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
    address = f"{host}:{port}"
    bound = (
        server.add_secure_port(address, server_credentials(tls))
        if tls
        else server.add_insecure_port(address)
    )
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    status = SERVING if holder.loaded else NOT_SERVING
    for name in ("", SERVICE_NAME, RULES_HEALTH):
        health_servicer.set(name, status)
    holder.add_listener(rules_health(health_servicer))
    follow_store_health(health_servicer, holder.store)
    return Running(server, bound, health_servicer, service)


def follow_store_health(
    health_servicer: health.HealthServicer, store: InteractionStore | None
) -> None:
    """`nba.store`: SERVING while the store answers (or there is none to answer)."""
    if not isinstance(store, GuardedStore):
        health_servicer.set(STORE_HEALTH, SERVING)
        return
    store.add_listener(  # first: a change while setting the status below is not lost
        lambda available: health_servicer.set(STORE_HEALTH, SERVING if available else NOT_SERVING)
    )
    health_servicer.set(STORE_HEALTH, SERVING if store.available else NOT_SERVING)


def rules_health(health_servicer: health.HealthServicer) -> Listener:
    """The listener keeping `nba.rules` SERVING after a good load, NOT_SERVING after a bad one."""

    def update(result: LoadResult) -> None:
        health_servicer.set(RULES_HEALTH, SERVING if result.loaded else NOT_SERVING)

    return update
