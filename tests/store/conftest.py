"""Fixtures for the interaction store tests: real backends, no fakes (except the clock).

Redis is the real server on 127.0.0.1:6379, database 15, flushed before and after each test.
When it does not answer, its tests are skipped on a developer's machine but fail under
``CI=true``, so a CI machine without Redis cannot pass by skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import redis.exceptions

REPO_ROOT = Path(__file__).resolve().parents[2]
if importlib.util.find_spec("nba") is None:  # the package is not installed in the venv
    sys.path.insert(0, str(REPO_ROOT))

from store_helpers import FakeClock, StoreFactory  # noqa: E402

from nba.store import InteractionStore, open_store  # noqa: E402
from nba.store.guarded import GuardedStore  # noqa: E402

REDIS_URL = "redis://127.0.0.1:6379/15"


@pytest.fixture(scope="session")
def redis_available() -> str:
    """The Redis URL, once it answered PING; skip (or fail under CI=true) otherwise."""
    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1.0, socket_timeout=1.0)
    try:
        client.ping()
    except redis.exceptions.RedisError as exc:
        message = f"Redis at {REDIS_URL} does not answer PING: {exc}"
        if os.environ.get("CI") == "true":
            pytest.fail(f"{message} (CI=true requires a running Redis)", pytrace=False)
        pytest.skip(message)
    finally:
        client.close()
    return REDIS_URL


@pytest.fixture
def redis_client(redis_available: str) -> Iterator[redis.Redis]:
    """A raw client on the test database, flushed before and after the test."""
    client = redis.Redis.from_url(redis_available, decode_responses=True)
    client.flushdb()
    try:
        yield client
    finally:
        client.flushdb()
        client.close()


@pytest.fixture
def redis_url(redis_client: redis.Redis) -> str:
    return REDIS_URL


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path}/nested/dir/interactions.sqlite3"


GUARDED = "guarded+"  # a URL prefix of the tests only: the backend inside a GuardedStore


def _backend_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    if request.param.startswith(GUARDED):
        return GUARDED + request.getfixturevalue(f"{request.param.removeprefix(GUARDED)}_url")
    return request.getfixturevalue(f"{request.param}_url")


@pytest.fixture(
    params=[
        "memory",
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis_cluster", marks=pytest.mark.redis),
        "guarded+sqlite",  # the circuit breaker keeps the contract of what it wraps
    ]
)
def store_url(request: pytest.FixtureRequest) -> str:
    """Each backend in turn."""
    return _backend_url(request)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("redis_cluster", marks=pytest.mark.redis),
    ]
)
def shared_url(request: pytest.FixtureRequest) -> str:
    """The backends that several store instances (threads, processes, replicas) share."""
    return _backend_url(request)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def make_store(clock: FakeClock) -> Iterator[StoreFactory]:
    """Opens stores (the fake clock unless told otherwise) and closes them all after the test."""
    opened: list[InteractionStore] = []

    def make(url: str, *, retention_seconds: float = 3600.0, **kwargs: object) -> InteractionStore:
        kwargs.setdefault("clock", clock)
        guarded = url.startswith(GUARDED)
        url = url.removeprefix(GUARDED)
        store = open_store(url, retention_seconds=retention_seconds, **kwargs)  # type: ignore[arg-type]
        if guarded:
            store = GuardedStore(store)
        opened.append(store)
        return store

    yield make
    for store in opened:
        store.close()


@pytest.fixture
def store(make_store: StoreFactory, store_url: str) -> InteractionStore:
    return make_store(store_url)
