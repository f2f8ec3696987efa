"""The gRPC face: DecisionService over gRPC, plus the standard health and reflection services.

Each RPC is one call into the transport-neutral DecisionService (service.py); a failure
becomes a status through the one error table (errors.py): a malformed request gets
INVALID_ARGUMENT naming the field and changes nothing, an engine failure (a bug, never the
caller's fault) gets INTERNAL and its traceback goes to the log. The `nba.rules` health
name follows the rule files: the holder tells this face's listener about every reload.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent import futures
from dataclasses import dataclass
from typing import TypeVar

import grpc
from google.protobuf.message import Message
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nba.server.errors import reported
from nba.server.reload import Listener, LoadResult, RuleSetHolder
from nba.server.service import DecisionService
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
# Health of the rule files themselves: NOT_SERVING while the newest files are rejected
# (the last good set still serves, so the service's own status stays SERVING).
RULES_HEALTH = "nba.rules"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING

Request = TypeVar("Request", bound=Message)
Response = TypeVar("Response", bound=Message)


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    """Each RPC: one service call; an exception becomes the status the error table says."""

    def __init__(self, service: DecisionService) -> None:
        self.service = service

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        return _answer("Decide", self.service.decide, request, context)

    def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: grpc.ServicerContext
    ) -> pb.RecordOutcomeResponse:
        return _answer("RecordOutcome", self.service.record_outcome, request, context)

    def UpdateConsent(
        self, request: pb.UpdateConsentRequest, context: grpc.ServicerContext
    ) -> pb.UpdateConsentResponse:
        return _answer("UpdateConsent", self.service.update_consent, request, context)

    def GetRuleSetStatus(
        self, request: pb.GetRuleSetStatusRequest, context: grpc.ServicerContext
    ) -> pb.RuleSetStatus:
        return _answer("GetRuleSetStatus", self.service.status, request, context)


def _answer(
    rpc: str,
    call: Callable[[Request], Response],
    request: Request,
    context: grpc.ServicerContext,
) -> Response:
    try:
        return call(request)
    except Exception as exc:  # every failure, expected or a bug, answers through the table
        failure = reported(exc, rpc)
        context.abort(failure.grpc_code, failure.client_message(exc))
        raise AssertionError("unreachable") from exc  # pragma: no cover - abort raises


@dataclass
class Running:
    server: grpc.Server
    port: int
    health: health.HealthServicer


def build_server(
    holder: RuleSetHolder,
    host: str = "127.0.0.1",
    port: int = 50051,
    threads: int = 8,
    reuse_port: bool = False,
) -> Running:
    """A started server on host:port (port 0 picks a free one) with health and reflection."""
    options = [("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), options=options)
    servicer = DecisionServicer(DecisionService(holder))
    pb_grpc.add_DecisionServiceServicer_to_server(servicer, server)
    health_servicer = health.HealthServicer(experimental_non_blocking=True)
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
    )
    bound = server.add_insecure_port(f"{host}:{port}")
    if bound == 0:
        raise OSError(f"cannot listen on {host}:{port}")
    server.start()
    status = SERVING if holder.loaded else NOT_SERVING
    for name in ("", SERVICE_NAME, RULES_HEALTH):
        health_servicer.set(name, status)
    holder.add_listener(rules_health(health_servicer))
    return Running(server, bound, health_servicer)


def rules_health(health_servicer: health.HealthServicer) -> Listener:
    """The listener keeping `nba.rules` SERVING after a good load, NOT_SERVING after a bad one."""

    def update(result: LoadResult) -> None:
        health_servicer.set(RULES_HEALTH, SERVING if result.loaded else NOT_SERVING)

    return update
