"""nba batch on a real local Dask cluster: the decisions the service would make, from JSON
lines or Parquet; resumption from the partitions written; bad records named and counted;
a worker killed mid-run; stored history read in bulk."""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from distributed import Client, LocalCluster
from google.protobuf import json_format

from nba.authoring.customers import generate_customers, write_jsonl
from nba.batch import BatchError
from nba.batch.run import run_batch
from nba.pipeline.budgets import rooms
from nba.pipeline.decider import Decider
from nba.pipeline.types import Interaction, Outcome
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from tests.conftest import RULES

SMALL = 40_000  # bytes per partition: ~30 customers, so a few hundred make many tasks


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """Two worker processes, shared by the tests of this module (each run registers its
    own rule set plugin)."""
    with LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    ) as local:
        yield local.scheduler_address


def customers(path: Path, bank: RuleSet, n: int, seed: int = 1) -> list[dict[str, Any]]:
    with path.open("w") as f:
        write_jsonl(generate_customers(bank, n, seed), f)
    return [json.loads(line) for line in path.read_text().splitlines()]


def decided(out: Path) -> dict[str, dict[str, Any]]:
    rows = ds.dataset(out, format="parquet").to_table().to_pylist()
    return {r["customer_id"]: r for r in rows}


def ranking(row: dict[str, Any]) -> list[tuple[str, str, float]]:
    return [(r["action_id"], r["channel"], round(r["score"], 9)) for r in row["recommendations"]]


def expected(bank: RuleSet, items: list[dict[str, Any]]) -> dict[str, list[tuple[str, str, float]]]:
    decider = Decider(bank)
    found = {}
    for item in items:
        response = decider.decide(json_format.ParseDict(item, pb.DecideRequest()))
        found[item["customerId"]] = [
            (r.action_id, r.channel, round(r.score, 9)) for r in response.recommendations
        ]
    return found


def test_every_customer_gets_the_decision_the_service_would_make(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    items = customers(tmp_path / "base.jsonl", bank, 300)
    run = run_batch(
        tmp_path / "base.jsonl", RULES, tmp_path / "out", scheduler=cluster, partition_bytes=SMALL
    )
    assert run.decided == 300 and run.partitions > 5 and not run.bad
    assert len(run.workers) == 2, "the tasks ran on both workers"
    rows = decided(tmp_path / "out")
    assert {c: ranking(r) for c, r in rows.items()} == expected(bank, items)
    first = rows[items[0]["customerId"]]["recommendations"][0]
    assert first["treatment_id"] and first["reasons"] and first["rank"] == 1


def test_parquet_in_and_json_lines_out_decide_alike(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    items = customers(tmp_path / "base.jsonl", bank, 120)
    # pa.array infers the columns from every row (from_pylist looks at the first only)
    table = pa.Table.from_struct_array(pa.array(items))
    pq.write_table(table, tmp_path / "base.parquet", row_group_size=50)
    run = run_batch(
        tmp_path / "base.parquet", RULES, tmp_path / "out", scheduler=cluster, output_format="jsonl"
    )
    assert run.partitions == 3 and run.decided == 120 and not run.bad
    lines = [
        json.loads(x)
        for p in sorted((tmp_path / "out").glob("part-*.jsonl"))
        for x in p.read_text().splitlines()
    ]
    got = {r["customer_id"]: ranking(r) for r in lines}
    assert got == expected(bank, items)


def test_a_rerun_resumes_from_the_partitions_written_and_refuses_other_input(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    customers(tmp_path / "base.jsonl", bank, 200)
    out = tmp_path / "out"
    first = run_batch(tmp_path / "base.jsonl", RULES, out, scheduler=cluster, partition_bytes=SMALL)
    before = decided(out)
    lost = sorted(out.glob("part-*.parquet"))[2]
    lost.unlink()  # as if the run had died before this partition was written
    again = run_batch(tmp_path / "base.jsonl", RULES, out, scheduler=cluster, partition_bytes=SMALL)
    assert again.resumed == first.partitions - 1
    assert 0 < again.decided < 200
    after = decided(out)
    assert set(after) == set(before)  # every customer once: nothing twice, nothing lost
    assert {c: ranking(r) for c, r in after.items()} == {c: ranking(r) for c, r in before.items()}
    customers(tmp_path / "base.jsonl", bank, 210, seed=2)  # the input changed
    with pytest.raises(BatchError, match=r"holds a run of other input or rules .*--restart"):
        run_batch(tmp_path / "base.jsonl", RULES, out, scheduler=cluster, partition_bytes=SMALL)
    fresh = run_batch(
        tmp_path / "base.jsonl", RULES, out, scheduler=cluster, partition_bytes=SMALL, restart=True
    )
    assert fresh.resumed == 0 and len(decided(out)) == 210


def test_bad_records_are_named_by_line_and_too_many_stop_the_run(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    items = customers(tmp_path / "good.jsonl", bank, 20)
    lines = [json.dumps(i) for i in items]
    lines[3] = "{not json"
    broken = dict(items[7], profile={**items[7]["profile"], "age": "forty"})
    lines[7] = json.dumps(broken)
    lines[11] = json.dumps({**items[11], "lifecycleStage": "dormant"})
    (tmp_path / "base.jsonl").write_text("\n".join(lines) + "\n")
    run = run_batch(tmp_path / "base.jsonl", RULES, tmp_path / "out", scheduler=cluster)
    assert run.decided == 17
    bad = [
        json.loads(x) for x in (tmp_path / "out" / "_bad_records.jsonl").read_text().splitlines()
    ]
    assert [b["where"] for b in bad] == ["base.jsonl:4", "base.jsonl:8", "base.jsonl:12"]
    assert "not JSON" in bad[0]["error"]
    assert "age" in bad[1]["error"] and "dormant" in bad[2]["error"]
    with pytest.raises(
        BatchError,
        match=r"stopped after 3 bad records, more than --max-bad 2;"
        r" the first: base.jsonl:4: not JSON",
    ):
        run_batch(tmp_path / "base.jsonl", RULES, tmp_path / "out2", scheduler=cluster, max_bad=2)


def test_a_worker_killed_mid_run_loses_no_customer(bank: RuleSet, tmp_path: Path) -> None:
    customers(tmp_path / "base.jsonl", bank, 600)
    out = tmp_path / "out"
    with (
        LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
        ) as local,
        Client(local) as client,
    ):
        pids = client.run(os.getpid)
        result: dict[str, Any] = {}

        def batch() -> None:
            result["run"] = run_batch(
                tmp_path / "base.jsonl",
                RULES,
                out,
                scheduler=local.scheduler_address,
                partition_bytes=SMALL // 2,
            )

        runner = threading.Thread(target=batch)
        runner.start()
        deadline = time.monotonic() + 60
        while not list(out.glob("part-*")) and time.monotonic() < deadline:
            time.sleep(0.02)
        os.kill(next(iter(pids.values())), signal.SIGKILL)  # mid-run: parts are being written
        runner.join(timeout=120)
    assert not runner.is_alive()
    assert result["run"].decided == 600 and not result["run"].bad
    rows = decided(out)
    assert len(rows) == 600, "a partition of the killed worker was lost"


def test_stored_history_and_consent_decide_as_they_would_online(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    items = customers(tmp_path / "base.jsonl", bank, 60)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    plain = run_batch(tmp_path / "base.jsonl", RULES, tmp_path / "plain", scheduler=cluster)
    assert plain.decided == 60
    rows = decided(tmp_path / "plain")
    target = next(
        i for i in items if rows[i["customerId"]]["recommendations"][0]["purpose"] == "marketing"
    )
    top = rows[target["customerId"]]["recommendations"][0]
    store = open_store(url, retention_seconds=400 * 86400)
    now = time.time()
    for k in range(3):  # the customer waved the offer away: its not-dismissed rules fail
        store.record(
            target["customerId"],
            Interaction(top["action_id"], top["channel"], Outcome.DISMISS, now - 3600 * (k + 1)),
        )
    store.update_consent(target["customerId"], {top["channel"]: False}, now - 60)
    store.close()
    run_batch(tmp_path / "base.jsonl", RULES, tmp_path / "stored", scheduler=cluster, store_url=url)
    again = decided(tmp_path / "stored")[target["customerId"]]["recommendations"]
    assert all(
        not (r["action_id"] == top["action_id"] and r["channel"] == top["channel"]) for r in again
    )
    assert all(r["channel"] != top["channel"] or r["purpose"] == "service" for r in again)


BUDGET = """
budgets:
  - id: easy_access_daily
    limit: 20
    per: day
    actions: [sav_easy_access]
"""


def budget_rules(tmp_path: Path) -> Path:
    import shutil

    rules = tmp_path / "rules"
    shutil.copytree(RULES, rules, ignore=shutil.ignore_patterns("tests", "examples"))
    (rules / "budgets.yaml").write_text(BUDGET)
    return rules


def test_a_budget_goes_to_the_customers_where_it_is_worth_most_and_the_next_action_steps_in(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    customers(tmp_path / "base.jsonl", bank, 400)
    rules = budget_rules(tmp_path)
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store = open_store(url, retention_seconds=86400)
    ruleset = load_ruleset(rules)
    (room,) = rooms(ruleset.budgets, ruleset.meta.time_zone, time.time(), None)
    key = room.claim.window.key
    store.take_budget([(key, 20)] * 5, time.time() + 86400)  # online decisions took 5 today
    store.close()
    run = run_batch(
        tmp_path / "base.jsonl",
        rules,
        tmp_path / "out",
        scheduler=cluster,
        store_url=url,
        partition_bytes=SMALL,
    )
    assert run.allocation is not None and run.allocation.granted == {"easy_access_daily": 15}
    final = decided(tmp_path / "out")
    scored = decided(tmp_path / "out" / "_scored")

    def easy(row: dict[str, Any]) -> dict[str, Any] | None:
        return next(
            (r for r in row["recommendations"] if r["action_id"] == "sav_easy_access"), None
        )

    granted = [easy(r)["score"] for r in final.values() if easy(r)]  # type: ignore[index]
    assert len(granted) == 15
    wanted = {
        c: easy(r) for c, r in scored.items() if easy(r) and easy(r)["rank"] <= r["max_results"]
    }  # type: ignore[index]
    refused = [wanted[c]["score"] for c in wanted if not easy(final[c])]  # type: ignore[index]
    assert refused and min(granted) >= max(refused)  # priority across the base, not arrival
    for c in wanted:
        if not easy(final[c]):
            assert final[c]["budget_excluded"] == [
                "sav_easy_access: budget easy_access_daily is spent: 20 of 20 today"
            ]
            others = [
                r["action_id"]
                for r in scored[c]["recommendations"]
                if r["action_id"] != "sav_easy_access"
            ]
            if not others:  # nothing else qualified: the touchpoint's fallback, as online
                others = [r["action_id"] for r in scored[c]["fallback_option"]]
            assert [r["action_id"] for r in final[c]["recommendations"]] == others[
                : scored[c]["max_results"]
            ]
            assert [r["rank"] for r in final[c]["recommendations"]] == list(
                range(1, len(final[c]["recommendations"]) + 1)
            )
    store = open_store(url, retention_seconds=86400)
    assert store.budget_counts("b|") == {key: 20}  # the batch's grants are counted for online
    store.close()
    again = run_batch(
        tmp_path / "base.jsonl",
        rules,
        tmp_path / "out",
        scheduler=cluster,
        store_url=url,
        partition_bytes=SMALL,
    )
    assert again.resumed == run.partitions and again.allocation is None  # done: not again
    assert decided(tmp_path / "out") == final
    store = open_store(url, retention_seconds=86400)
    assert store.budget_counts("b|") == {key: 20}  # a rerun does not count its grants twice
    store.close()


def test_a_customer_whose_every_option_ran_out_gets_the_touchpoints_fallback(
    cluster: str, bank: RuleSet, tmp_path: Path
) -> None:
    customers(tmp_path / "base.jsonl", bank, 300)
    rules = budget_rules(tmp_path)
    (rules / "budgets.yaml").write_text(BUDGET.replace("limit: 20", "limit: 0"))
    run_batch(tmp_path / "base.jsonl", rules, tmp_path / "out", scheduler=cluster)
    final = decided(tmp_path / "out")
    scored = decided(tmp_path / "out" / "_scored")
    only_easy = [
        c
        for c, row in scored.items()
        if [r["action_id"] for r in row["recommendations"]] == ["sav_easy_access"]
    ]
    assert only_easy, "the base has customers whose one option is the budgeted offer"
    for c in only_easy:
        (shown,) = final[c]["recommendations"]
        assert shown["fallback"] and shown["rank"] == 1
        assert shown == {**scored[c]["fallback_option"][0], "rank": 1}
        assert final[c]["budget_excluded"]
    assert not any(
        r["action_id"] == "sav_easy_access"
        for row in final.values()
        for r in row["recommendations"]
    )
