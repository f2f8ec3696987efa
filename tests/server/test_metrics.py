"""--metrics-port: one Prometheus scrape counts the calls of every worker; --log-format json."""

from __future__ import annotations

import json
import re
from pathlib import Path

import grpc
import httpx
from prometheus_client.parser import text_string_to_metric_families

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.conftest import example
from tests.own_redis import free_port
from tests.server.nba_process import serving


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def total(samples: list[tuple[dict[str, str], float]], **labels: str) -> float:
    return sum(v for got, v in samples if all(got.get(k) == x for k, x in labels.items()))


def test_one_scrape_counts_every_workers_calls_and_decisions(tmp_path: Path) -> None:
    metrics_port = free_port()
    store = f"sqlite:///{tmp_path / 'store.sqlite3'}"
    args = ("--workers", "2", "--store", store, "--metrics-port", str(metrics_port))
    with serving(*args, "--log-format", "json") as server:
        request = example("web_prospect_homepage.json")
        workers, decided = set(), 0
        for _ in range(12):  # a channel per call: the kernel spreads connections, not calls
            with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
                stub = pb_grpc.DecisionServiceStub(channel)
                stub.Decide(request, timeout=10)
                decided += 1
                workers.add(stub.GetRuleSetStatus(pb.GetRuleSetStatusRequest(), timeout=10).worker)
        bad = pb.DecideRequest()
        bad.CopyFrom(request)
        bad.profile.update({"age": "forty"})
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            try:
                pb_grpc.DecisionServiceStub(channel).Decide(bad, timeout=10)
            except grpc.RpcError as exc:
                assert exc.code() == grpc.StatusCode.INVALID_ARGUMENT
        samples = scrape(metrics_port)
        lines = list(server.lines)
    assert len(workers) == 2, "the calls did not reach both workers"
    handled = samples["grpc_server_handled_total"]
    assert total(handled, grpc_method="Decide", grpc_code="OK", transport="grpc") == decided
    assert total(handled, grpc_method="Decide", grpc_code="INVALID_ARGUMENT") == 1
    assert total(samples["grpc_server_started_total"], grpc_method="GetRuleSetStatus") == 12
    assert total(samples["grpc_server_handling_seconds_count"], grpc_method="Decide") == 13
    assert total(samples["nba_decisions_total"]) == decided
    assert total(samples["nba_recommendations_total"], channel="web") >= decided
    assert total(samples["nba_reloads_total"], result="loaded") == 2  # one load per worker
    assert total(samples["nba_store_seconds_count"], operation="snapshot") == decided
    assert total(samples["nba_store_available"]) == 1
    # --log-format json: every line the server wrote is one JSON object
    records = [json.loads(line) for line in lines if line.strip()]
    assert {"time", "level", "logger", "pid", "message"} <= set(records[0])
    assert any(re.match(r"nba ready on ", r["message"]) for r in records)
