"""Worker side of a batch run: the rule set compiled once per worker, and one partition
decided per task.

The rule set travels as its files' texts (a few hundred kB) in a Dask worker plugin, so a
worker compiles it once when it joins, not once per task, and a worker added to the
cluster mid-run gets it too. Stored history and consent are read in one bulk call per
partition (InteractionStore.snapshots), not one round trip per customer.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin
from google.protobuf import json_format

from nba.batch.source import Partition, Record, records
from nba.errors import RequestError
from nba.pipeline.context import merge_context
from nba.pipeline.decider import Decider
from nba.pipeline.types import Decision, DecisionRequest
from nba.ruleset.loader import load_documents
from nba.store import InteractionStore, StoreError, open_store
from nba.v1 import decisioning_pb2 as pb

log = logging.getLogger(__name__)
PLUGIN = "nba-batch"


@dataclass(frozen=True, slots=True)
class BatchSettings:
    """What every worker needs besides the rule files (shipped once, in the plugin)."""

    as_of: float | None  # for requests without asOf; None: now (each request's asOf wins)
    store_url: str | None  # stored history and consent; None: the input's own only
    engine: str = "durable"


@dataclass(slots=True)
class Decided:
    """One customer's decision: its options ranked, best first (more than max_results
    when budgets need spares to replace what ran out, nba/batch/allocate.py)."""

    customer_id: str
    decision_id: str
    ruleset_version: str
    degraded: bool
    arms: dict[str, str]
    recommendations: list[dict[str, Any]]
    max_results: int = 0  # what the customer may get; more options are budgets' spares
    budget_excluded: list[str] = field(default_factory=list)  # allocate.py's refusals
    fallback_option: list[dict[str, Any]] = field(default_factory=list)  # 0 or 1, budgets


@dataclass(slots=True)
class PartitionResult:
    index: int
    decided: list[Decided] = field(default_factory=list)
    bad: list[tuple[str, str]] = field(default_factory=list)  # (where, what was wrong)
    seconds: float = 0.0


class RuleSetPlugin(WorkerPlugin):
    """A Dask worker plugin: compiles the rule set once on each worker (`setup`)."""

    name = PLUGIN

    def __init__(self, files: Sequence[tuple[str, str]], settings: BatchSettings) -> None:
        self.files = list(files)
        self.settings = settings
        self.decider: Decider | None = None
        self.store: InteractionStore | None = None

    def setup(self, worker: Any = None) -> None:
        ruleset = load_documents(self.files)
        self.decider = Decider(ruleset, self.settings.engine)
        if self.settings.store_url is not None:
            self.store = open_store(
                self.settings.store_url, retention_seconds=self.decider.history_seconds
            )

    def teardown(self, worker: Any = None) -> None:
        if self.decider is not None:
            self.decider.close()
        if self.store is not None:
            self.store.close()


def decide_partition(partition: Partition, plugin: RuleSetPlugin | None = None) -> PartitionResult:
    """Decide every customer of one partition (runs in a worker; `plugin` for tests)."""
    if plugin is None:
        from distributed import get_worker

        plugin = get_worker().plugins[PLUGIN]  # type: ignore[assignment]
    assert plugin is not None and plugin.decider is not None
    started = time.perf_counter()
    result = PartitionResult(partition.index)
    requests = _requests(plugin.decider, records(partition), plugin.settings, result)
    stored = _stored(plugin, requests)
    for request in requests:
        result.decided.append(_decide_one(plugin.decider, request, stored))
    result.seconds = time.perf_counter() - started
    return result


def _decide_one(
    decider: Decider,
    request: DecisionRequest,
    stored: dict[str, tuple[list[Any], dict[str, bool]]] | None,
) -> Decided:
    """One customer: their stored context merged in, decided, with spares under budgets."""
    if stored is None:
        request = replace(request, degraded=True)
    elif request.customer_id in stored:
        history, consent = stored[request.customer_id]
        skew = decider.ruleset.policies.clock_skew_seconds
        request = merge_context(request, history, consent, skew)
    wanted = request.max_results
    if decider.budgets is not None:  # spares, for what allocate.py finds spent
        request = replace(request, max_results=wanted + decider.budget_spares)
    decision = decider.decide_request(request, claim=False)  # allocate.py: globally
    decided = _decided(request.customer_id, decider.responses.build(decision), wanted)
    if decider.budgets is not None:
        decided.fallback_option = _fallback_option(decider, decision)
    return decided


def _requests(
    decider: Decider, found: Any, settings: BatchSettings, result: PartitionResult
) -> list[DecisionRequest]:
    """The partition's valid requests; the others go to result.bad, named by place."""
    valid: list[DecisionRequest] = []
    now = settings.as_of if settings.as_of is not None else time.time()
    for record in found:
        request = _request(decider, record, now, result)
        if request is not None:
            valid.append(request)
    return valid


def _request(
    decider: Decider, record: Record, now: float, result: PartitionResult
) -> DecisionRequest | None:
    if record.request is None:
        result.bad.append((record.where, record.error))
        return None
    try:
        message = json_format.ParseDict(record.request, pb.DecideRequest())
        return decider.validator.validate(message, now)
    except json_format.ParseError as exc:
        result.bad.append((record.where, f"not a DecideRequest: {exc}"))
    except RequestError as exc:
        result.bad.append((record.where, str(exc)))
    return None


def _stored(
    plugin: RuleSetPlugin, requests: list[DecisionRequest]
) -> dict[str, tuple[list[Any], dict[str, bool]]] | None:
    """Every customer's stored history and consent in one bulk read; {} without a store;
    None when the store failed (decided degraded: no marketing, as the service does)."""
    if plugin.store is None or not requests or plugin.decider is None:
        return {}
    decider = plugin.decider
    since = min(r.as_of for r in requests) - decider.history_seconds
    try:
        return plugin.store.snapshots(
            [r.customer_id for r in requests], since, decider.ruleset.policies.stored_consent
        )
    except StoreError as exc:
        log.warning("store unavailable, deciding this partition without marketing: %s", exc)
        return None


def _fallback_option(decider: Decider, decision: Decision) -> list[dict[str, Any]]:
    """The fallback this customer would get if budgets refused every option (none if the
    decision is a fallback already): allocate.py gives it when that happens."""
    if not decision.picks or decision.picks[0].fallback:
        return []
    variant = decider.variant_for(decision.request.customer_id)
    picks = variant.fallback_for(decision)
    if not picks:
        return []
    response = decider.responses.build(replace(decision, picks=picks))
    return _decided("", response, 1).recommendations


def _decided(customer_id: str, response: pb.DecideResponse, wanted: int) -> Decided:
    return Decided(
        max_results=wanted,
        customer_id=customer_id,
        decision_id=response.decision_id,
        ruleset_version=response.ruleset_version,
        degraded=response.degraded,
        arms=dict(response.arms),
        recommendations=[
            {
                "rank": r.rank,
                "action_id": r.action_id,
                "channel": r.channel,
                "treatment_id": r.treatment.id,
                "purpose": r.purpose,
                "score": r.score,
                "fallback": r.fallback,
                "reasons": [f"{x.kind} {x.rule_id}: {x.description}" for x in r.reasons],
            }
            for r in response.recommendations
        ],
    )
