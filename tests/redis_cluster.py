"""A real Redis Cluster for the tests: three redis-server processes in cluster mode on spare
ports, joined with `redis-cli --cluster create`, removed afterwards."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

NODES = 3


def _free_port() -> int:
    # Cluster mode also binds port + 10000 (the bus): pick ports whose bus is free too.
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = int(s.getsockname()[1])
        if port + 10000 < 65536:
            with socket.socket() as bus:
                try:
                    bus.bind(("127.0.0.1", port + 10000))
                except OSError:
                    continue
            return port


def missing() -> str | None:
    """Why a cluster cannot be started here, or None."""
    for binary in ("redis-server", "redis-cli"):
        if shutil.which(binary) is None:
            return f"{binary} is not installed"
    return None


@contextmanager
def redis_cluster() -> Iterator[str]:
    """A redis+cluster:// URL naming every node of a fresh cluster."""
    directory = Path(tempfile.mkdtemp(prefix="nba-cluster-"))
    ports = [_free_port() for _ in range(NODES)]
    processes = []
    try:
        for port in ports:
            node = directory / str(port)
            node.mkdir()
            processes.append(
                subprocess.Popen(
                    ["redis-server", "--port", str(port), "--bind", "127.0.0.1",
                     "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
                     "--save", "", "--appendonly", "no", "--dir", str(node)],
                    stdout=subprocess.DEVNULL,
                )
            )  # fmt: skip
        for port in ports:
            _wait_for(lambda p=port: _ping(p), f"node {port} up")
        subprocess.run(
            ["redis-cli", "--cluster", "create", *(f"127.0.0.1:{p}" for p in ports),
             "--cluster-replicas", "0", "--cluster-yes"],
            check=True, capture_output=True, timeout=60,
        )  # fmt: skip
        for port in ports:
            _wait_for(lambda p=port: "cluster_state:ok" in _info(p), f"node {port} in the cluster")
        yield "redis+cluster://" + ",".join(f"127.0.0.1:{p}" for p in ports)
    finally:
        for process in processes:
            process.kill()
        for process in processes:
            process.wait(timeout=10)
        shutil.rmtree(directory, ignore_errors=True)


def _ping(port: int) -> bool:
    return _cli(port, "ping") == "PONG"


def _info(port: int) -> str:
    return _cli(port, "cluster", "info")


def _cli(port: int, *args: str) -> str:
    done = subprocess.run(
        ["redis-cli", "-p", str(port), *args], capture_output=True, text=True, timeout=10
    )
    return done.stdout.strip()


def _wait_for(check: object, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not check():  # type: ignore[operator]
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis cluster: timed out waiting for {what}")
        time.sleep(0.1)


CI = os.environ.get("CI") == "true"


def flush(url: str) -> None:
    """FLUSHALL on every primary of the cluster the URL names."""
    for seed in url.removeprefix("redis+cluster://").split(","):
        port = int(seed.rpartition(":")[2])
        if "role:master" in _cli(port, "info", "replication"):
            _cli(port, "flushall")
