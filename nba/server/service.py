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

- authentication and scopes (auth.py): the transport passes the `authorization` value it
  received in `CallContext.authorization`; each method authenticates it and checks its
  scope (decide, record, consent, admin) before anything else: UnauthenticatedError /
  PermissionDeniedError, mapped to UNAUTHENTICATED / PERMISSION_DENIED (401 / 403).
- limits (limits.py): the in-flight limit is one non-blocking semaphore per service,
  tried after authentication, so both faces share it (OverloadedError, mapped to
  RESOURCE_EXHAUSTED / 429). Request size stays with the transport, which sees the bytes
  before they are parsed (gRPC's max_receive_message_length, the HTTP body limit).
- deadlines: the transport fills `CallContext.deadline` from grpc-timeout or the
  Connect-Timeout-Ms header; a call whose deadline has passed when it is admitted is not
  worked on (DeadlineExceededError: DEADLINE_EXCEEDED / 504), and Decide passes the
  deadline on: a decision with less than MIN_DECISION_SECONDS left answers the touchpoint's
  fallback, marked degraded (decider.py).
- metrics (metrics.py): `service.metrics` is NO_METRICS (no-ops) unless --metrics-port;
  the faces count and time each call by status code, this layer counts decisions,
  recommendations, exclusions and calls in flight.
- the decision log (nba/decisionlog/writer.py): with `--decision-log`, `decide` hands each
  Decision to the recorder, which only enqueues it; a thread of its own writes it.
- attribution (nba/scoring/attribution.py): with a store, `decide` also hands each
  decision to the ShownRecorder, which keeps (off the decision path) what a contextual
  decision showed and in which bins; `record_outcome` counts the outcome in those bins.
"""

from __future__ import annotations

import functools
import os
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar, cast

from nba.errors import DeadlineExceededError, EngineError, NotConfiguredError
from nba.pipeline.validate import consent_update, outcome_record
from nba.scoring.attribution import ShownRecorder, outcome_increments
from nba.scoring.evidence import increments as evidence_increments
from nba.server import NO_STORE
from nba.server.auth import Authenticator, OpenDoor, Scope, require
from nba.server.limits import InFlight
from nba.server.metrics import NO_METRICS, Metrics
from nba.server.reload import RuleSetHolder
from nba.store import Clock, InteractionStore, prepared
from nba.v1 import decisioning_pb2 as pb

if TYPE_CHECKING:
    from nba.decisionlog.writer import DecisionRecorder

HOST = socket.gethostname()
NO_STORE_MESSAGE = f"this server runs without an interaction store (--store {NO_STORE})"


@dataclass(frozen=True, slots=True)
class CallContext:
    """Who calls and by when they need the answer: one per call, filled by the transport.

    `authorization` is what the caller presented (gRPC metadata or the HTTP header);
    the service authenticates it. `caller` is free for a transport-level identity (a TLS
    peer) and is not read yet.
    """

    caller: str | None = None  # the authenticated identity; None: nobody authenticated
    authorization: str | None = None  # `Bearer <token>` as sent; None: none sent
    deadline: float | None = None  # time.monotonic() when the caller gives up; None: never


ANONYMOUS = CallContext()
Method = TypeVar("Method", bound=Callable[..., Any])


def admits(scope: Scope) -> Callable[[Method], Method]:
    """A service method that first authenticates the caller, checks it holds `scope`, and
    takes an in-flight slot for the whole call (released however the call ends)."""

    def decorate(method: Method) -> Method:
        @functools.wraps(method)
        def admitted(service: DecisionService, request: Any, call: CallContext = ANONYMOUS) -> Any:
            require(service.auth.authenticate(call.authorization), scope)
            if call.deadline is not None and time.monotonic() >= call.deadline:
                raise DeadlineExceededError("the deadline passed before the call was worked on")
            slots = service.in_flight
            if slots is None:
                return method(service, request, call)
            slots.enter()  # not a `with`: a generator context manager per call costs ~0.5 µs
            service.metrics.in_flight(1)
            try:
                return method(service, request, call)
            finally:
                slots.leave()
                service.metrics.in_flight(-1)

        return cast(Method, admitted)

    return decorate


class DecisionService:
    """The four calls of DecisionService, on the holder's serving rule set and store."""

    def __init__(
        self,
        holder: RuleSetHolder,
        clock: Clock = time.time,
        auth: Authenticator | None = None,
        in_flight: InFlight | None = None,
        metrics: Metrics = NO_METRICS,
        decision_log: DecisionRecorder | None = None,
    ) -> None:
        self.holder = holder
        self.clock = clock
        self.auth: Authenticator = auth or OpenDoor()
        self.in_flight = in_flight
        self.metrics = metrics
        self.decision_log = decision_log  # --decision-log: queued, written on its own thread
        # Set on SIGTERM: readiness answers "shutting down" while calls in flight finish.
        self.draining = threading.Event()
        # What contextual decisions showed, for their outcomes (a thread once one does).
        store = holder.store
        self.shown = None if store is None else ShownRecorder(store)

    def close(self) -> None:
        """Write what is still queued (at shutdown, once no call is in flight)."""
        if self.shown is not None:
            self.shown.close()

    @property
    def store(self) -> InteractionStore:
        """The interaction store; NotConfiguredError when the server runs without one."""
        store = self.holder.store
        if store is None:
            raise NotConfiguredError(NO_STORE_MESSAGE)
        return store

    @admits(Scope.DECIDE)
    def decide(self, request: pb.DecideRequest, call: CallContext = ANONYMOUS) -> pb.DecideResponse:
        """The ranked decision for one customer."""
        with self.holder.lease() as decider:
            try:
                decision, response = decider.decision_and_response(request, call.deadline)
            except EngineError as exc:
                exc.add_note(f"rule set version {decider.version}")  # shown in the logged trace
                raise
        self.metrics.decided(decision)
        if self.decision_log is not None:
            self.decision_log.submit(decision)
        if self.shown is not None:
            self.shown.submit(decision)
        return response

    @admits(Scope.RECORD)
    def record_outcome(
        self, request: pb.RecordOutcomeRequest, call: CallContext = ANONYMOUS
    ) -> pb.RecordOutcomeResponse:
        """Store what the customer did with an action, once per interaction id; when the
        action learns its propensity, add the outcome to its evidence (once: a retry that
        records nothing adds nothing), and with learning.context to the evidence of the
        bins the decision that showed it was scored in."""
        store = self.store
        with self.holder.lease() as decider:  # channels are checked against these rules
            ruleset = decider.ruleset
        customer_id, interaction = outcome_record(request, self.clock(), ruleset)
        interaction = prepared(customer_id, interaction)
        recorded = store.record(customer_id, interaction)
        learning = ruleset.learning.get(interaction.action_id)
        if recorded and learning is not None:
            counters = evidence_increments(learning, interaction)
            counters |= outcome_increments(store, ruleset, learning, customer_id, interaction)
            store.add_to_counters(counters)  # one atomic update: both or neither
        return pb.RecordOutcomeResponse(
            recorded=recorded, interaction_id=interaction.interaction_id
        )

    @admits(Scope.CONSENT)
    def update_consent(
        self, request: pb.UpdateConsentRequest, call: CallContext = ANONYMOUS
    ) -> pb.UpdateConsentResponse:
        """Store consent per channel (newest `at` wins); answers the consent now stored."""
        store = self.store
        with self.holder.lease() as decider:  # the channels are checked against these rules
            customer_id, changes, at = consent_update(request, decider.ruleset, self.clock())
        store.update_consent(customer_id, changes, at)
        return pb.UpdateConsentResponse(consent=store.consent(customer_id))

    @admits(Scope.ADMIN)
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
