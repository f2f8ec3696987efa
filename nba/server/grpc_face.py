"""The gRPC service: DecisionService, plus the standard health and reflection services.

A malformed request gets INVALID_ARGUMENT naming the field and changes nothing; an
engine failure (a bug, never the caller's fault) gets INTERNAL and is logged.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from concurrent import futures
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from nba.errors import EngineError, RequestError
from nba.pipeline.validate import consent_update, outcome_record
from nba.server.reload import Listener, LoadResult, RuleSetHolder
from nba.store import InteractionStore, StoreError, prepared
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc

log = logging.getLogger("nba.server.grpc_face")
SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
# Health of the rule files themselves: NOT_SERVING while the newest files are rejected
# (the last good set still serves, so the service's own status stays SERVING).
RULES_HEALTH = "nba.rules"
SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
HOST = socket.gethostname()


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    def __init__(self, holder: RuleSetHolder) -> None:
        self.holder = holder

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        with self.holder.lease() as decider:  # the whole request uses one rule set
            try:
                return decider.decide(request)
            except RequestError as exc:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
            except EngineError:
                log.exception("engine failure on version %s", decider.version)
                context.abort(
                    grpc.StatusCode.INTERNAL, "the rule engine failed; see the server log"
                )
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def _store(self, context: grpc.ServicerContext) -> InteractionStore:
        store = self.holder.store
        if store is None:
            context.abort(
                grpc.StatusCode.FAILED_PRECONDITION,
                "this server runs without an interaction store (--store none)",
            )
        assert store is not None  # abort raises
        return store

    @staticmethod
    def _unavailable(context: grpc.ServicerContext, rpc: str, exc: StoreError) -> None:
        log.error("%s failed: %s", rpc, exc)
        context.abort(grpc.StatusCode.UNAVAILABLE, "the interaction store is unavailable")

    def RecordOutcome(
        self, request: pb.RecordOutcomeRequest, context: grpc.ServicerContext
    ) -> pb.RecordOutcomeResponse:
        store = self._store(context)
        try:
            customer_id, interaction = outcome_record(request, time.time())
        except RequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        interaction = prepared(customer_id, interaction)
        try:
            recorded = store.record(customer_id, interaction)
        except StoreError as exc:
            self._unavailable(context, "RecordOutcome", exc)
        return pb.RecordOutcomeResponse(
            recorded=recorded, interaction_id=interaction.interaction_id
        )

    def UpdateConsent(
        self, request: pb.UpdateConsentRequest, context: grpc.ServicerContext
    ) -> pb.UpdateConsentResponse:
        store = self._store(context)
        try:
            customer_id, changes, at = consent_update(
                request, self.holder.current.ruleset, time.time()
            )
            store.update_consent(customer_id, changes, at)
            return pb.UpdateConsentResponse(consent=store.consent(customer_id))
        except RequestError as exc:
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(exc))
        except StoreError as exc:
            self._unavailable(context, "UpdateConsent", exc)
        raise AssertionError("unreachable")  # pragma: no cover - abort raises

    def GetRuleSetStatus(
        self, request: pb.GetRuleSetStatusRequest, context: grpc.ServicerContext
    ) -> pb.RuleSetStatus:
        decider = self.holder.current
        ruleset = decider.ruleset
        state = self.holder.state
        status = pb.RuleSetStatus(
            ruleset_version=ruleset.version,
            actions=len(ruleset.actions),
            rules=len(ruleset.rules),
            segments=len(ruleset.segments),
            last_reload_errors=state.last_errors,
            worker=f"{HOST}:{os.getpid()}",  # per call: a forked worker has its own pid
        )
        status.loaded_at.FromNanoseconds(int(state.loaded_at * 1e9))
        if state.last_attempt_at:
            status.last_reload_at.FromNanoseconds(int(state.last_attempt_at * 1e9))
        return status


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
    pb_grpc.add_DecisionServiceServicer_to_server(DecisionServicer(holder), server)
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
