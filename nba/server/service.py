"""The application service: what each DecisionService call does, whatever transport carries it.

A transport (the gRPC face in grpc_face.py; an HTTP/JSON face next) turns its wire format
into the protobuf messages of nba.v1 -- the transport-neutral contract -- makes one call
here, and turns the answer, or the nba error raised, back into its wire format through the
one table in nba.server.errors. Nothing here knows a transport: methods take and return
proto messages and raise RequestError, NotConfiguredError, StoreError or EngineError.

The service owns what a call needs: a lease on the serving rule set for the whole call (a
reload mid-call neither changes nor frees the rules it runs on), the interaction store (the
holder's, shared with the Decider) and the clock that stamps outcomes and consent updates
sent without a time.

Where the next pieces plug in, so that every transport gets them at once:

- authentication and scopes: the transport authenticates (TLS peer, bearer token) and puts
  the identity in `CallContext.caller`; each method checks the caller's scope (decide,
  record, consent, status) before anything else and raises an error the table maps to
  UNAUTHENTICATED / PERMISSION_DENIED.
- limits: the in-flight limit is one semaphore per service, tried at the start of each
  method, so both faces share it (an error mapped to RESOURCE_EXHAUSTED / 429). Request
  size stays with the transport, which sees the bytes before they are parsed (gRPC's
  max_receive_message_length, the HTTP body limit).
- deadlines: the transport fills `CallContext.deadline` from grpc-timeout or a header; a
  method checks the remaining time before its store round trip and the engine, raising an
  error mapped to DEADLINE_EXCEEDED.
- metrics: one decorator on the four public methods times and counts each call by method
  and error class (the rule-set version is on every DecideResponse already).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

from nba.errors import EngineError, NotConfiguredError
from nba.pipeline.validate import consent_update, outcome_record
from nba.server import NO_STORE
from nba.server.reload import RuleSetHolder
from nba.store import Clock, InteractionStore, prepared
from nba.v1 import decisioning_pb2 as pb

HOST = socket.gethostname()
NO_STORE_MESSAGE = f"this server runs without an interaction store (--store {NO_STORE})"


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who calls and by when they need the answer: one per call, filled by the transport.

    Nothing reads it yet; it is the seam for authentication (caller) and deadlines.
    """

    caller: str | None = None  # the authenticated identity; None: nobody authenticated
    deadline: float | None = None  # time.monotonic() when the caller gives up; None: never


ANONYMOUS = CallContext()


class DecisionService:
    """The four calls of DecisionService, on the holder's serving rule set and store."""

    def __init__(self, holder: RuleSetHolder, clock: Clock = time.time) -> None:
        self.holder = holder
        self.clock = clock

    @property
    def store(self) -> InteractionStore:
        """The interaction store; NotConfiguredError when the server runs without one."""
        store = self.holder.store
        if store is None:
            raise NotConfiguredError(NO_STORE_MESSAGE)
        return store

    def decide(self, request: pb.DecideRequest, call: CallContext = ANONYMOUS) -> pb.DecideResponse:
        """The ranked decision for one customer."""
        with self.holder.lease() as decider:
            try:
                return decider.decide(request)
            except EngineError as exc:
                exc.add_note(f"rule set version {decider.version}")  # shown in the logged trace
                raise

    def record_outcome(
        self, request: pb.RecordOutcomeRequest, call: CallContext = ANONYMOUS
    ) -> pb.RecordOutcomeResponse:
        """Store what the customer did with an action, once per interaction id."""
        store = self.store
        customer_id, interaction = outcome_record(request, self.clock())
        interaction = prepared(customer_id, interaction)
        recorded = store.record(customer_id, interaction)
        return pb.RecordOutcomeResponse(
            recorded=recorded, interaction_id=interaction.interaction_id
        )

    def update_consent(
        self, request: pb.UpdateConsentRequest, call: CallContext = ANONYMOUS
    ) -> pb.UpdateConsentResponse:
        """Store consent per channel (newest `at` wins); answers the consent now stored."""
        store = self.store
        with self.holder.lease() as decider:  # the channels are checked against these rules
            customer_id, changes, at = consent_update(request, decider.ruleset, self.clock())
        store.update_consent(customer_id, changes, at)
        return pb.UpdateConsentResponse(consent=store.consent(customer_id))

    def status(
        self, request: pb.GetRuleSetStatusRequest, call: CallContext = ANONYMOUS
    ) -> pb.RuleSetStatus:
        """The serving rule set, the last reload and which worker answered."""
        with self.holder.lease() as decider:
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
