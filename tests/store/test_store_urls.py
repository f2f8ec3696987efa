"""open_store URLs, interaction_key, and how failures are reported."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import pytest
from store_helpers import START, StoreFactory

from nba.pipeline.types import Interaction
from nba.store import StoreError, interaction_key, open_store
from nba.store.sqlite import parse_sqlite_url


@pytest.mark.parametrize(
    "url",
    ["foo://bar", "", "interactions.sqlite3", "postgres://db/nba", "memory://somewhere"],
)
def test_a_bad_url_is_a_value_error(url: str) -> None:
    with pytest.raises(ValueError, match=r"memory://|sqlite|redis"):
        open_store(url, retention_seconds=60)


def test_an_unsupported_scheme_names_the_supported_ones() -> None:
    with pytest.raises(ValueError) as error:
        open_store("foo://x", retention_seconds=60)
    for scheme in ("memory://", "sqlite:///", "redis://"):
        assert scheme in str(error.value)


@pytest.mark.parametrize(
    "url",
    [
        "sqlite://",
        "sqlite:///",
        "sqlite:///dir/",
        "sqlite://host/file.sqlite3",
        "sqlite:///:memory:",
        "sqlite:///x.sqlite3?synchronous=off",
        "sqlite:///x.sqlite3?journal_mode=delete",
    ],
)
def test_a_bad_sqlite_url_is_a_value_error(
    url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="sqlite"):
        open_store(url, retention_seconds=60)
    assert not list(tmp_path.iterdir())


def test_a_redis_url_needs_a_host() -> None:
    with pytest.raises(ValueError, match="redis://host:port/db"):
        open_store("redis://", retention_seconds=60)


def test_retention_must_be_positive() -> None:
    with pytest.raises(ValueError, match="retention_seconds"):
        open_store("memory://", retention_seconds=0)


@pytest.mark.parametrize(
    ("url", "path", "synchronous"),
    [
        ("sqlite:///data/nba.sqlite3", "data/nba.sqlite3", "normal"),
        ("sqlite:////var/lib/nba.sqlite3", "/var/lib/nba.sqlite3", "normal"),
        ("sqlite:///nba.sqlite3?synchronous=full", "nba.sqlite3", "full"),
        ("sqlite:///my%20dir/nba.sqlite3?synchronous=EXTRA", "my dir/nba.sqlite3", "extra"),
    ],
)
def test_sqlite_urls(url: str, path: str, synchronous: str) -> None:
    assert parse_sqlite_url(url) == (Path(path), synchronous)


def test_a_relative_sqlite_path_is_created_under_the_working_directory(
    make_store: StoreFactory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    make_store("sqlite:///var/a/b/nba.sqlite3").ping()

    assert (tmp_path / "var/a/b/nba.sqlite3").is_file()


def test_the_sqlite_file_is_in_wal_mode_with_the_schema(
    make_store: StoreFactory, tmp_path: Path
) -> None:
    make_store(f"sqlite:///{tmp_path}/nba.sqlite3?synchronous=full").ping()

    conn = sqlite3.connect(tmp_path / "nba.sqlite3")
    try:
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
        indexes = {row[1] for row in conn.execute("PRAGMA index_list(interactions)")}
        assert {"interactions_customer_at", "interactions_at"} <= indexes
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert "consent" in tables
        assert conn.execute("PRAGMA user_version").fetchone() == (2,)
    finally:
        conn.close()


SCHEMA_V1 = """
CREATE TABLE interactions (
    customer_id TEXT NOT NULL, interaction_id TEXT NOT NULL, action_id TEXT NOT NULL,
    channel TEXT NOT NULL, outcome INTEGER NOT NULL, at REAL NOT NULL, decision_id TEXT NOT NULL,
    PRIMARY KEY (customer_id, interaction_id)
);
CREATE INDEX interactions_customer_at ON interactions (customer_id, at);
PRAGMA user_version=1;
"""


def test_a_version_1_file_is_upgraded_in_place(make_store: StoreFactory, tmp_path: Path) -> None:
    conn = sqlite3.connect(tmp_path / "nba.sqlite3")
    try:
        conn.executescript(SCHEMA_V1)
        conn.execute(
            "INSERT INTO interactions VALUES ('c-1', 'i-1', 'offer', 'web', 2, ?, '')", (START - 1,)
        )
        conn.commit()
    finally:
        conn.close()

    store = make_store(f"sqlite:///{tmp_path}/nba.sqlite3")
    store.update_consent("c-1", {"sms": False}, at=START)
    assert store.snapshot("c-1", since=0, with_consent=True) == (
        [Interaction("offer", "web", 2, START - 1, "i-1")],
        {"sms": False},
    )
    assert store.sweep(now=START + 3600) == 1


def test_an_unopenable_sqlite_path_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a directory")

    with pytest.raises(StoreError, match="sqlite open failed"):
        open_store(f"sqlite:///{tmp_path}/a-file/nba.sqlite3", retention_seconds=60)


def test_a_file_that_is_not_a_database_is_a_store_error(tmp_path: Path) -> None:
    (tmp_path / "nba.sqlite3").write_bytes(b"x" * 4096)

    with pytest.raises(StoreError, match="sqlite open failed"):
        open_store(f"sqlite:///{tmp_path}/nba.sqlite3", retention_seconds=60)


def test_a_closed_sqlite_store_refuses_work(tmp_path: Path) -> None:
    store = open_store(f"sqlite:///{tmp_path}/nba.sqlite3", retention_seconds=60)
    store.close()

    with pytest.raises(StoreError, match="closed"):
        store.history("c-1", since=0)
    with pytest.raises(StoreError, match=r"sqlite snapshot .*closed"):
        store.snapshot("c-1", since=0, with_consent=True)
    with pytest.raises(StoreError, match=r"sqlite sweep .*closed"):
        store.sweep()


def test_an_unreachable_redis_is_a_store_error_without_the_password() -> None:
    store = open_store("redis://:s3cret@127.0.0.1:1/0", retention_seconds=60)  # nothing listens
    try:
        started = time.monotonic()
        with pytest.raises(StoreError, match=r"redis ping failed at redis://:\*\*\*@127.0.0.1:1/0"):
            store.ping()
        with pytest.raises(StoreError, match="redis record failed") as error:
            store.record("c-1", Interaction("a", "web", 1, START))
        with pytest.raises(StoreError, match="redis history failed"):
            store.history("c-1", since=0)
        with pytest.raises(StoreError, match="redis snapshot failed"):
            store.snapshot("c-1", since=0, with_consent=True)
        with pytest.raises(StoreError, match="redis update_consent failed"):
            store.update_consent("c-1", {"sms": False}, at=START)
        assert "s3cret" not in str(error.value)
        assert time.monotonic() - started < 10
    finally:
        store.close()


def test_interaction_key_is_deterministic_short_hex() -> None:
    key = interaction_key("c-1", "offer-1", "web", 2, START)

    assert key == interaction_key("c-1", "offer-1", "web", 2, START)
    assert len(key) == 20
    int(key, 16)


def test_interaction_key_rounds_at_to_microseconds() -> None:
    at = 1_700_000_000.123456
    assert interaction_key("c", "a", "web", 2, at) == interaction_key("c", "a", "web", 2, at + 1e-8)
    assert interaction_key("c", "a", "web", 2, at) != interaction_key("c", "a", "web", 2, at + 1e-6)


@pytest.mark.parametrize(
    "other",
    [
        ("c-2", "offer-1", "web", 2, START),
        ("c-1", "offer-2", "web", 2, START),
        ("c-1", "offer-1", "sms", 2, START),
        ("c-1", "offer-1", "web", 3, START),
        ("c-1", "offer-1", "web", 2, START + 1),
        ("c-1|offer-1", "", "web", 2, START),  # separators in ids cannot shift fields
        ("c-1", "offer-1|web", "", 2, START),
    ],
)
def test_interaction_key_depends_on_every_field(other: tuple[str, str, str, int, float]) -> None:
    assert interaction_key(*other) != interaction_key("c-1", "offer-1", "web", 2, START)
