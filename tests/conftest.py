"""Shared fixtures: the bundled rule set, deciders on both engines, a real gRPC server."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from google.protobuf import json_format

from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.server.grpc_face import Running, build_server
from nba.server.reload import RuleSetHolder
from nba.store import open_store
from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc
from tests.browser import browser  # noqa: F401  (a fixture: Debian's chromium)
from tests.own_redis import own_redis  # noqa: F401  (a fixture, for every test)

REPO = Path(__file__).resolve().parents[1]
RULES = REPO / "rules"
EXAMPLES = RULES / "examples"


def example(name: str) -> pb.DecideRequest:
    """One of the bundled example requests, parsed from its proto3 JSON."""
    text = (EXAMPLES / name).read_text(encoding="utf-8")
    return json_format.Parse(text, pb.DecideRequest())


@pytest.fixture(scope="session")
def bank() -> RuleSet:
    return load_ruleset(RULES, display_root="rules")


@pytest.fixture(scope="session")
def bank_decider(bank: RuleSet) -> Decider:
    return Decider(bank, "durable")


@pytest.fixture(scope="session")
def reference_decider(bank: RuleSet) -> Decider:
    return Decider(bank, "reference")


@pytest.fixture(scope="module")
def server() -> Iterator[tuple[Running, RuleSetHolder]]:
    """A real server on an ephemeral port, serving the bundled rules with a memory store."""
    store = open_store("memory://", retention_seconds=400 * 86400)
    holder = RuleSetHolder(RULES, "durable", store)
    holder.load()
    running = build_server(holder, "127.0.0.1", 0, threads=4)
    yield running, holder
    running.server.stop(grace=None)
    store.close()


@pytest.fixture(scope="module")
def channel(server: tuple[Running, RuleSetHolder]) -> Iterator[grpc.Channel]:
    running, _ = server
    with grpc.insecure_channel(f"127.0.0.1:{running.port}") as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> pb_grpc.DecisionServiceStub:
    return pb_grpc.DecisionServiceStub(channel)


SERVICE_REDIS_URL = "redis://127.0.0.1:6379/14"  # the store tests use 15


@pytest.fixture
def service_redis() -> Iterator[str]:
    """A flushed Redis database for service tests; skipped locally, failed under CI=true."""
    import os

    import redis

    client = redis.Redis.from_url(SERVICE_REDIS_URL, socket_connect_timeout=1.0)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        client.close()
        message = f"Redis at {SERVICE_REDIS_URL} does not answer: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true requires a running Redis)", pytrace=False)
        pytest.skip(message)
    client.flushdb()
    try:
        yield SERVICE_REDIS_URL
    finally:
        client.flushdb()
        client.close()


@pytest.fixture(scope="session")
def redis_cluster_session() -> Iterator[str]:
    """A real three-node Redis Cluster for the session (tests/redis_cluster.py)."""
    from tests.redis_cluster import missing, redis_cluster

    why = missing()
    if why is not None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{why} (CI=true requires a Redis Cluster)", pytrace=False)
        pytest.skip(why)
    with redis_cluster() as url:
        yield url


@pytest.fixture
def redis_cluster_url(redis_cluster_session: str) -> Iterator[str]:
    """The cluster, emptied before and after the test."""
    from tests.redis_cluster import flush

    flush(redis_cluster_session)
    yield redis_cluster_session
    flush(redis_cluster_session)
