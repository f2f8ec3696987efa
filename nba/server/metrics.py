"""Prometheus metrics: the standard gRPC server metrics and nba's own, one scrape for all workers.

Off unless `nba serve --metrics-port PORT`. Then `enable()` points prometheus-client's
multiprocess mode at a fresh directory before any worker forks (PROMETHEUS_MULTIPROC_DIR
must be set before the first metric exists): each worker writes its samples to files
there, and the supervisor (or the one process) serves `/metrics` from all of them, so
one scrape sees every worker. A dead worker's live gauges are dropped (`worker_died`).

    metric                              labels                                     type
    grpc_server_started_total           grpc_type grpc_service grpc_method         counter
    grpc_server_handled_total           ... grpc_code                              counter
    grpc_server_handling_seconds        grpc_type grpc_service grpc_method         histogram
    nba_decisions_total                 fallback degraded arms                     counter
    nba_recommendations_total           action channel arms                        counter
    nba_exclusions_total                stage rule arms                            counter
    nba_reloads_total                   result (loaded|failed)                     counter
    nba_store_seconds                   operation                                  histogram
    nba_store_errors_total              operation                                  counter
    nba_store_available                 (1: answering, 0: circuit open)            gauge
    nba_in_flight                       (calls being worked on, summed)            gauge
    nba_rejected_total                  reason (overloaded, deadline, ...)         counter

The grpc_server_* names and labels are those of the Go and Python gRPC Prometheus
middlewares, so existing dashboards work; the HTTP face's calls count there too, with
`transport="http"` beside `transport="grpc"`. `arms` names the customer's experiment arms,
"exp=arm,exp2=arm2" sorted ("" without experiments): at most 64 combinations, as a rule
set has at most that many variants (nba/ruleset/load_experiments.py). Without
--metrics-port every hook is a no-op method on NO_METRICS.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from nba.pipeline.types import Decision
    from nba.server.reload import LoadResult

SERVICE = "nba.v1.DecisionService"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Decisions take about a millisecond; the tail under load reaches tens of milliseconds.
CALL_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
STORE_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1, 0.25, 1.0)
# A status code's reason for refusing a call, for nba_rejected_total.
REJECTIONS = {
    "RESOURCE_EXHAUSTED": "overloaded",
    "DEADLINE_EXCEEDED": "deadline",
    "UNAUTHENTICATED": "unauthenticated",
    "PERMISSION_DENIED": "permission_denied",
    "UNAVAILABLE": "unavailable",
}


class Metrics:
    """The hooks the server calls; this base class records nothing (NO_METRICS)."""

    def started(self, transport: str, method: str) -> None:
        """A face received a call (counted before it is worked on)."""

    def call(self, transport: str, method: str, code: str, seconds: float) -> None:
        """One call answered by a face, with its status code name."""

    def decided(self, decision: Decision) -> None:
        """One decision made (its picks and what it excluded)."""

    def reloaded(self, result: LoadResult) -> None:
        """A rule-set load finished, loaded or not."""

    def store_call(self, operation: str, seconds: float, failed: bool) -> None:
        """One interaction-store call."""

    def store_available(self, available: bool) -> None:
        """The store's circuit closed (True) or opened (False)."""

    def in_flight(self, change: int) -> None:
        """A call was admitted (+1) or finished (-1)."""


NO_METRICS = Metrics()


class PrometheusMetrics(Metrics):
    """The metrics of the module docstring, in prometheus-client's multiprocess mode."""

    def __init__(self) -> None:
        from prometheus_client import Counter, Gauge, Histogram

        call_labels = ["grpc_type", "grpc_service", "grpc_method", "transport"]
        self._started = Counter("grpc_server_started_total", "Calls started.", call_labels)
        self._handled = Counter(
            "grpc_server_handled_total", "Calls answered.", [*call_labels, "grpc_code"]
        )
        self._handling = Histogram(
            "grpc_server_handling_seconds", "Time to answer.", call_labels, buckets=CALL_BUCKETS
        )
        self._decisions = Counter(
            "nba_decisions_total", "Decisions made.", ["fallback", "degraded", "arms"]
        )
        self._recommendations = Counter(
            "nba_recommendations_total", "Actions recommended.", ["action", "channel", "arms"]
        )
        self._exclusions = Counter(
            "nba_exclusions_total", "Actions excluded.", ["stage", "rule", "arms"]
        )
        self._reloads = Counter("nba_reloads_total", "Rule-set loads.", ["result"])
        self._store_seconds = Histogram(
            "nba_store_seconds", "Store call time.", ["operation"], buckets=STORE_BUCKETS
        )
        self._store_errors = Counter("nba_store_errors_total", "Store call errors.", ["operation"])
        self._store_up = Gauge(
            "nba_store_available", "1 while the store answers.", multiprocess_mode="livemin"
        )
        self._store_up.set(1)
        self._in_flight = Gauge(
            "nba_in_flight", "Calls being worked on.", multiprocess_mode="livesum"
        )
        self._rejected = Counter("nba_rejected_total", "Calls refused.", ["reason"])

    def started(self, transport: str, method: str) -> None:
        self._started.labels("unary", SERVICE, method, transport).inc()

    def call(self, transport: str, method: str, code: str, seconds: float) -> None:
        labels = ("unary", SERVICE, method, transport)
        self._handled.labels(*labels, code).inc()
        self._handling.labels(*labels).observe(seconds)
        reason = REJECTIONS.get(code)
        if reason is not None:
            self._rejected.labels(reason).inc()

    def decided(self, decision: Decision) -> None:
        fallback = str(any(p.fallback for p in decision.picks)).lower()
        arms = ",".join(f"{e}={a}" for e, a in sorted(decision.arms.items()))
        self._decisions.labels(fallback, str(decision.request.degraded).lower(), arms).inc()
        for pick in decision.picks:
            self._recommendations.labels(pick.action.id, pick.channel, arms).inc()
        for exclusion in decision.excluded:
            self._exclusions.labels(exclusion.stage, exclusion.rule, arms).inc()

    def reloaded(self, result: LoadResult) -> None:
        self._reloads.labels("loaded" if result.loaded else "failed").inc()

    def store_call(self, operation: str, seconds: float, failed: bool) -> None:
        self._store_seconds.labels(operation).observe(seconds)
        if failed:
            self._store_errors.labels(operation).inc()

    def store_available(self, available: bool) -> None:
        self._store_up.set(1 if available else 0)

    def in_flight(self, change: int) -> None:
        self._in_flight.inc(change)


def enable() -> str:
    """Set up multiprocess mode (before any worker forks); the directory samples go to.

    An operator's PROMETHEUS_MULTIPROC_DIR is used as given (it must be empty, as
    prometheus-client requires); otherwise a fresh temporary directory.
    """
    directory = os.environ.get(MULTIPROC_ENV) or tempfile.mkdtemp(prefix="nba-metrics-")
    os.environ[MULTIPROC_ENV] = directory
    return directory


def serve_metrics(host: str, port: int) -> int:
    """`/metrics` from every process's samples, on a thread of its own; the bound port."""
    from prometheus_client import CollectorRegistry, start_http_server
    from prometheus_client.multiprocess import MultiProcessCollector

    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]  # untyped in 0.26
    server, _thread = start_http_server(port, addr=host, registry=registry)
    return int(server.server_port)


def worker_died(pid: int) -> None:
    """Drop a dead worker's live gauges (its counters stay: they happened)."""
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)  # type: ignore[no-untyped-call]  # untyped in 0.26


def clean_up(directory: str) -> None:
    """Remove a temporary samples directory once the server has stopped."""
    if directory.startswith(tempfile.gettempdir()) and "nba-metrics-" in directory:
        shutil.rmtree(directory, ignore_errors=True)
