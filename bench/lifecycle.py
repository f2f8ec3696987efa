"""The lifecycle probes of issue 12, against a real `nba serve` of any checkout.

    python -m bench.lifecycle [--repo DIR]

Starts `DIR/.venv/bin/python -m nba serve` (memory store, bundled rules) from DIR
(default: this checkout), so the same script measures main (before) and a branch (after):

- drain: 50 Decides in flight (1,000 interactions each, so each takes milliseconds), then
  SIGTERM: the status of each of the 50, the exit status and how long the exit took;
- orphans: SIGKILL of the supervisor (2 workers): how many workers still run 2 s later;
- a second `nba serve` on the port the first listens on: its exit status and message;
- a hung store: a redis-server of its own, SIGSTOPped; 50 Decides one after another with
  a 300 ms deadline: how many answered in time, and calls per second.

Each probe prints one line.
"""

from __future__ import annotations

import argparse
import collections
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from bench.hostile import examples, git_head
from nba.v1 import decisioning_pb2 as pb

HERE = Path(__file__).resolve().parents[1]
READY = re.compile(r"nba ready on \S+:(\d+) ")
IN_FLIGHT = 50


class Serve:
    """`nba serve ARGS` of a checkout; waits for its ready line."""

    def __init__(self, repo: Path, *args: str, wait: bool = True) -> None:
        python = repo / ".venv/bin/python"
        command = [str(python), "-m", "nba", "serve", "--rules", "rules", "--no-watch"]
        # A store several workers share, each server its own file (ARGS may name another).
        store = f"sqlite:///{tempfile.mkdtemp(prefix='nba-lifecycle-')}/store.sqlite3"
        command += ["--store", store, "--http-port", "0", *args]
        self.process = subprocess.Popen(
            command,
            cwd=repo,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
            start_new_session=True,  # a probe's kill reaches this tree only
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = self._await_ready() if wait else 0

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def _await_ready(self, timeout: float = 90) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if match := READY.search(line):
                    return int(match.group(1))
            if self.process.poll() is not None:
                raise SystemExit("nba serve exited:\n" + "".join(self.lines))
            time.sleep(0.05)
        raise SystemExit("nba serve was not ready in time:\n" + "".join(self.lines))

    def children(self) -> list[int]:
        path = Path(f"/proc/{self.process.pid}/task/{self.process.pid}/children")
        return [int(p) for p in path.read_text().split()] if path.exists() else []

    def close(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        self.reader.join(timeout=5)


def slow_request(repo: Path) -> pb.DecideRequest:
    """An example request with 1,000 interactions (the validator's maximum)."""
    message = examples(repo)[0]
    del message.interactions[:]
    now = int(time.time())
    for i in range(1000):
        item = message.interactions.add(action_id="card_cashback", channel="web", outcome=1)
        item.at.FromSeconds(now - 3600 - i)
    message.ClearField("as_of")
    return message


def drain(repo: Path) -> None:
    server = Serve(repo, "--workers", "1", "--threads", "8", *_in_flight_option(repo))
    try:
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            decide = channel.unary_unary(
                "/nba.v1.DecisionService/Decide",
                request_serializer=pb.DecideRequest.SerializeToString,
                response_deserializer=pb.DecideResponse.FromString,
            )
            request = slow_request(repo)
            decide(request, timeout=30)  # warm: the connection is up before the burst
            calls = [decide.future(request, timeout=30) for _ in range(IN_FLIGHT)]
            time.sleep(0.02)  # the calls reach the server
            stopped_at = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            codes = collections.Counter(call.code().name for call in calls)
            try:
                exit_status = f"exit {server.process.wait(timeout=30)}"
            except subprocess.TimeoutExpired:
                exit_status = "still running"
            took = time.monotonic() - stopped_at
        shown = ", ".join(f"{name} {n}" for name, n in codes.most_common())
        print(f"SIGTERM with {IN_FLIGHT} in flight: {shown}; {exit_status} after {took:.2f} s")
    finally:
        server.close()


def _in_flight_option(repo: Path) -> list[str]:
    # The in-flight limit (where the checkout has one) would refuse part of the burst.
    help_text = subprocess.run(
        [str(repo / ".venv/bin/python"), "-m", "nba", "serve", "--help"],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    ).stdout
    return ["--max-in-flight", str(IN_FLIGHT * 2)] if "--max-in-flight" in help_text else []


def orphans(repo: Path) -> None:
    server = Serve(repo, "--workers", "2", "--port", "0")
    try:
        workers = server.children()
        os.kill(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=10)
        time.sleep(2)
        alive = [pid for pid in workers if Path(f"/proc/{pid}").exists() and _not_zombie(pid)]
        print(f"SIGKILL of the supervisor: {len(alive)} of {len(workers)} workers alive after 2 s")
    finally:
        for pid in server.children() + workers:
            if Path(f"/proc/{pid}").exists():
                os.kill(pid, signal.SIGKILL)
        server.close()


def _not_zombie(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def second_server(repo: Path) -> None:
    first = Serve(repo, "--workers", "2", "--port", "0")
    try:
        second = Serve(repo, "--workers", "2", "--port", str(first.port), wait=False)
        try:
            code = second.process.wait(timeout=60)
            said = next((line.strip() for line in second.lines if "port" in line.lower()), "")
            print(f"second nba serve on port {first.port}: exit {code}; {said[:120]!r}")
        except subprocess.TimeoutExpired:
            print(f"second nba serve on port {first.port}: still running after 60 s (serving)")
        finally:
            second.close()
    finally:
        first.close()


def hung_store(repo: Path) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        print("hung store: skipped (no redis-server)")
        return
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        redis_port = s.getsockname()[1]
    redis = subprocess.Popen(
        [binary, "--port", str(redis_port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
    )
    time.sleep(0.5)
    server: Serve | None = None
    try:
        store = f"redis://127.0.0.1:{redis_port}/0"
        server = Serve(repo, "--workers", "1", "--port", "0", "--store", store)
        with grpc.insecure_channel(f"127.0.0.1:{server.port}") as channel:
            decide = channel.unary_unary(
                "/nba.v1.DecisionService/Decide",
                request_serializer=pb.DecideRequest.SerializeToString,
                response_deserializer=pb.DecideResponse.FromString,
            )
            request = examples(repo)[0]
            decide(request, timeout=5)
            redis.send_signal(signal.SIGSTOP)
            codes: collections.Counter[str] = collections.Counter()
            started = time.monotonic()
            for _ in range(50):
                try:
                    decide(request, timeout=0.3)
                    codes["OK"] += 1
                except grpc.RpcError as exc:
                    codes[exc.code().name] += 1
            rate = 50 / (time.monotonic() - started)
        shown = ", ".join(f"{name} {n}" for name, n in codes.most_common())
        print(f"hung store, 50 Decides with a 300 ms deadline: {shown}; {rate:.1f} calls/s")
    finally:
        redis.send_signal(signal.SIGCONT)
        redis.kill()
        redis.wait(timeout=10)
        if server is not None:
            server.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout whose server to probe")
    repo = parser.parse_args().repo.resolve()
    print(f"nba serve of {repo} (git {git_head(repo)})")
    drain(repo)
    orphans(repo)
    second_server(repo)
    hung_store(repo)


if __name__ == "__main__":
    sys.exit(main())
