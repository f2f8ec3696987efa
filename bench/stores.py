"""Decide latency with each interaction store, against the store-less path, in one run.

Every example request's customer gets 20 recorded interactions (and stored consent)
before timing, so each Decide reads a realistic history from the store, merges it with
the request, and decides. The store-less path decides the same requests with the same
20 interactions carried in the request instead, so the ratios isolate the store's cost.

    python -m bench.stores [--quick]

Redis runs against the real server on 127.0.0.1:6379 (database 13, flushed before and
after); it is skipped, and said so, when Redis does not answer.
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

from bench.common import Stats, Target, ratio, show, table, time_calls, us
from bench.workload import example_requests
from nba.pipeline.decider import Decider, history_horizon
from nba.pipeline.types import Interaction
from nba.ruleset.loader import load_ruleset
from nba.store import InteractionStore, open_store
from nba.v1 import decisioning_pb2 as pb

REDIS_URL = "redis://127.0.0.1:6379/13"
HISTORY = 20


def _record_history(store: InteractionStore, requests: list[pb.DecideRequest]) -> None:
    """Move each request's interactions into the store (and store some consent)."""
    for msg in requests:
        for item in msg.interactions:
            at = item.at.seconds + item.at.nanos / 1e9
            store.record(
                msg.customer_id, Interaction(item.action_id, item.channel, item.outcome, at)
            )
        store.update_consent(msg.customer_id, {"email": True, "sms": False}, 1.0)


def _without_history(requests: list[pb.DecideRequest]) -> list[pb.DecideRequest]:
    bare = []
    for msg in requests:
        copy = pb.DecideRequest()
        copy.CopyFrom(msg)
        del copy.interactions[:]
        bare.append(copy)
    return bare


def _redis_store(retention: float) -> InteractionStore | None:
    try:
        store = open_store(REDIS_URL, retention_seconds=retention)
        store.ping()
    except Exception as exc:  # a benchmark without Redis still measures the rest
        show(f"  redis skipped: {exc}")
        return None
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()
    return store


def run(quick: bool = False) -> list[Target]:
    ruleset = load_ruleset(Path(__file__).resolve().parent.parent / "rules")
    iterations = 1_000 if quick else 6_000
    with_history = example_requests(ruleset, history=HISTORY)
    bare = _without_history(with_history)
    retention = history_horizon(ruleset)
    engine = Decider(ruleset).engine  # one compiled engine for every variant
    rows: list[list[str]] = []
    baseline = time_calls([_decide(Decider(ruleset, engine), m) for m in with_history], iterations)
    rows.append(_row("no store (20 interactions in the request)", baseline, baseline))
    with tempfile.TemporaryDirectory() as tmp:
        stores: list[tuple[str, Callable[[], InteractionStore | None]]] = [
            ("memory://", lambda: open_store("memory://", retention_seconds=retention)),
            (
                "sqlite (WAL, synchronous=NORMAL)",
                lambda: open_store(f"sqlite:///{tmp}/bench.sqlite3", retention_seconds=retention),
            ),
            ("redis (loopback)", lambda: _redis_store(retention)),
        ]
        results: dict[str, Stats] = {}
        for label, make in stores:
            store = make()
            if store is None:
                continue
            try:
                _record_history(store, with_history)
                decider = Decider(ruleset, engine, store)
                _check_same(decider, Decider(ruleset, engine), bare, with_history)
                stats = time_calls([_decide(decider, m) for m in bare], iterations)
            finally:
                store.close()
            results[label] = stats
            rows.append(_row(f"{label} (20 stored interactions + consent)", stats, baseline))
    if "redis (loopback)" in results:
        import redis

        redis.Redis.from_url(REDIS_URL).flushdb()
    show(
        table(
            ["Decide with", "median µs", "p99 µs", "median / no store"],
            rows,
            "Decide latency by interaction store (example set, explain off)",
        )
    )
    return [
        Target(
            f"Decide median with {label}",
            f"{us(s.median)} µs ({ratio(s.median / baseline.median)} no store)",
        )
        for label, s in results.items()
    ]


def _decide(decider: Decider, message: pb.DecideRequest) -> Callable[[], object]:
    return lambda: decider.decide(message)


def _row(label: str, stats: Stats, baseline: Stats) -> list[str]:
    return [label, us(stats.median), us(stats.p99), ratio(stats.median / baseline.median)]


def _check_same(
    with_store: Decider,
    without: Decider,
    bare: list[pb.DecideRequest],
    full: list[pb.DecideRequest],
) -> None:
    """The stored history must decide like the same history sent in the request."""
    for stored, sent in zip(bare, full, strict=True):
        a = [(r.action_id, r.channel) for r in with_store.decide(stored).recommendations]
        sent_copy = pb.DecideRequest()
        sent_copy.CopyFrom(sent)
        sent_copy.consent.update({"sms": False})
        if "email" not in sent_copy.consent:
            sent_copy.consent["email"] = True
        b = [(r.action_id, r.channel) for r in without.decide(sent_copy).recommendations]
        if a != b:
            raise SystemExit(f"{stored.customer_id}: stored history decided {a}, sent history {b}")


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.stores", description=__doc__)
    parser.add_argument("--quick", action="store_true")
    run(parser.parse_args().quick)


if __name__ == "__main__":
    main()
