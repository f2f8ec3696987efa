"""The hostile-caller probes of issue 12, against a real `nba serve` of any checkout.

    python bench/hostile.py [--repo DIR] [--quick]

Starts `DIR/.venv/bin/python -m nba serve` (one worker, memory store, the server's
defaults otherwise) from DIR (default: this checkout), so the same script measures main
(before) and a branch (after) with the same probes, and prints each figure:

- fuzzed Decides: the count of each status over hostile variants of the example requests
  (dates past datetime's range, NaN, megabyte strings, unknown channels, odd ints);
- undecodable bytes (garbage, truncated, invalid UTF-8, a Struct nested 34 deep): the
  statuses, and tracebacks in the server's stderr;
- a 1 MB profile value: the length of the status message;
- 150k undeclared profile keys (3 MiB): the status and the server's CPU for the call;
- 500 Decides in flight at once: p50 latency and how many were refused;
- 600 x ~1 MB requests in flight: the server's RSS before and its peak (VmHWM).

Self-contained (stdlib, grpc and the generated nba.v1 code of the checkout it runs in), so
it can run against a checkout that does not have it.
"""

from __future__ import annotations

import argparse
import collections
import math
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import grpc
from google.protobuf import json_format

from nba.v1 import decisioning_pb2 as pb

HERE = Path(__file__).resolve().parents[1]
READY = re.compile(r"nba ready on \S+:(\d+) ")
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _serve_help(python: Path, repo: Path) -> str:
    return subprocess.run(
        [str(python), "-m", "nba", "serve", "--help"], cwd=repo, capture_output=True, text=True
    ).stdout


class Server:
    """`nba serve` of a checkout, its stderr kept for counting tracebacks."""

    def __init__(self, repo: Path) -> None:
        python = repo / ".venv/bin/python"
        args = ["--rules", "rules", "--store", "memory://", "--workers", "1", "--no-watch"]
        if "--http-port" in _serve_help(python, repo):  # the HTTP face off: one port to find
            args += ["--http-port", "0"]
        self.process = subprocess.Popen(
            [str(python), "-m", "nba", "serve", *args, "--port", "0", "--log-level", "warning"],
            cwd=repo,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        self.port = self._await_port()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def _await_port(self, timeout: float = 60) -> int:
        # --log-level warning hides the ready line: find the port from /proc instead
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit("nba serve exited:\n" + "".join(self.lines))
            port = listening_port(self.process.pid)
            if port:
                return port
            time.sleep(0.2)
        raise SystemExit("nba serve did not listen in time")

    def cpu_seconds(self) -> float:
        fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS

    def memory_mb(self, key: str) -> float:
        for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024
        return math.nan

    def tracebacks(self) -> int:
        return sum("Traceback" in line for line in self.lines)

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)
        self.reader.join(timeout=5)


def listening_port(pid: int) -> int | None:
    """The TCP port `pid` listens on (from /proc/net/tcp and its fds), or None."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            parts = line.split()
            if parts[3] == "0A" and parts[9] in inodes:  # 0A: LISTEN
                return int(parts[1].rsplit(":", 1)[1], 16)
    return None


def examples(repo: Path) -> list[pb.DecideRequest]:
    paths = sorted((repo / "rules/examples").glob("*.json"))
    return [json_format.Parse(p.read_text(), pb.DecideRequest()) for p in paths]


# ---------------------------------------------------------------------------- probes

Mutation = Callable[[pb.DecideRequest, random.Random], None]
MEGABYTE = "a" * 1_000_000


def _as_of(seconds: int) -> Mutation:
    def mutate(msg: pb.DecideRequest, _: random.Random) -> None:
        msg.as_of.seconds = seconds

    return mutate


def _profile(value: object) -> Mutation:
    def mutate(msg: pb.DecideRequest, rng: random.Random) -> None:
        msg.profile[rng.choice(["region", "age", "income", "not_declared"])] = value

    return mutate


def _field(name: str, value: object) -> Mutation:
    def mutate(msg: pb.DecideRequest, _: random.Random) -> None:
        target = msg.touchpoint if name in ("channel", "placement") else msg
        setattr(target, name, value)

    return mutate


MUTATIONS: list[Mutation] = [
    _as_of(-62_135_596_800),  # 0001-01-01
    _as_of(253_402_300_800 + 10**6),  # past 9999
    _as_of(-(10**12)),
    _profile(math.nan),
    _profile(math.inf),
    _profile(1e300),
    _profile(MEGABYTE[:2000]),
    _field("channel", "website"),
    _field("channel", "web\x00"),
    _field("lifecycle_stage", "x" * 500),
    _field("max_results", -5),
    _field("time_zone", "Mars/Olympus"),
    lambda msg, rng: msg.consent.update({"emial": True}),
    lambda msg, rng: None,  # some stay valid
]


def fuzzed_decides(channel: grpc.Channel, bases: list[pb.DecideRequest], count: int) -> None:
    rng = random.Random(12)
    decide = channel.unary_unary(
        "/nba.v1.DecisionService/Decide",
        request_serializer=pb.DecideRequest.SerializeToString,
        response_deserializer=pb.DecideResponse.FromString,
    )
    statuses: collections.Counter[str] = collections.Counter()
    for _ in range(count):
        msg = pb.DecideRequest()
        msg.CopyFrom(rng.choice(bases))
        for mutate in rng.sample(MUTATIONS, rng.randint(1, 2)):
            mutate(msg, rng)
        statuses[status(lambda m=msg: decide(m, timeout=30))] += 1
    print(f"fuzzed Decides ({count}): " + ", ".join(f"{k} {v}" for k, v in statuses.most_common()))


def status(call: Callable[[], object]) -> str:
    try:
        call()
    except grpc.RpcError as exc:
        return str(exc.code().name)
    return "OK"


def deep_struct(base: pb.DecideRequest, depth: int) -> bytes:
    msg = pb.DecideRequest()
    msg.CopyFrom(base)
    struct = msg.profile
    for _ in range(depth):
        struct = struct.get_or_create_struct("k")
    return msg.SerializeToString()


def undecodable(server: Server, channel: grpc.Channel, base: pb.DecideRequest, rounds: int) -> None:
    raw = channel.unary_unary("/nba.v1.DecisionService/Decide")
    payloads = [b"\xff\xff\xff\xff", b"\x0a\x7fabc", b"\x0a\x02\xc3\x28", deep_struct(base, 34)]
    before = server.tracebacks()
    statuses: collections.Counter[str] = collections.Counter()
    for _ in range(rounds):
        for payload in payloads:
            statuses[status(lambda p=payload: raw(p, timeout=30))] += 1
    time.sleep(0.5)
    shown = ", ".join(f"{k} {v}" for k, v in statuses.most_common())
    logged = server.tracebacks() - before
    print(f"undecodable ({rounds * len(payloads)}): {shown}; tracebacks logged {logged}")


def megabyte_value(channel: grpc.Channel, base: pb.DecideRequest) -> None:
    msg = pb.DecideRequest()
    msg.CopyFrom(base)
    msg.profile["region"] = MEGABYTE
    decide = channel.unary_unary(
        "/nba.v1.DecisionService/Decide", request_serializer=pb.DecideRequest.SerializeToString
    )
    try:
        decide(msg, timeout=30)
        print("1 MB value: OK (accepted)")
    except grpc.RpcError as exc:
        print(f"1 MB value: {exc.code().name}, message {len(exc.details() or ''):,} characters")


def many_keys(server: Server, channel: grpc.Channel, base: pb.DecideRequest) -> None:
    msg = pb.DecideRequest()
    msg.CopyFrom(base)
    msg.profile.update({f"u{i}": i for i in range(150_000)})
    data = msg.SerializeToString()
    raw = channel.unary_unary("/nba.v1.DecisionService/Decide")
    cpu = server.cpu_seconds()
    started = time.perf_counter()
    code = status(lambda: raw(data, timeout=30))
    wall = time.perf_counter() - started
    used = server.cpu_seconds() - cpu
    size = f"{len(data) / 2**20:.1f} MiB"
    print(f"150k keys ({size}): {code}, server CPU {used * 1000:.0f} ms, wall {wall * 1000:.0f} ms")


def in_flight(channel: grpc.Channel, bases: list[pb.DecideRequest], count: int) -> None:
    decide = channel.unary_unary(
        "/nba.v1.DecisionService/Decide",
        request_serializer=pb.DecideRequest.SerializeToString,
        response_deserializer=pb.DecideResponse.FromString,
    )
    latencies: list[float] = []
    refused = 0
    lock = threading.Lock()

    def done(started: float) -> Callable[[grpc.Future], None]:
        def record(future: grpc.Future) -> None:
            nonlocal refused
            with lock:
                latencies.append(time.perf_counter() - started)
                if future.code() == grpc.StatusCode.RESOURCE_EXHAUSTED:
                    refused += 1

        return record

    calls = []
    for i in range(count):
        call = decide.future(bases[i % len(bases)], timeout=60)
        call.add_done_callback(done(time.perf_counter()))
        calls.append(call)
    for call in calls:
        call.exception(timeout=120)  # waits; the callbacks counted it
    while len(latencies) < count:  # callbacks run on grpc's thread, just after
        time.sleep(0.01)
    latencies.sort()
    p50, p99 = (latencies[int(count * q)] * 1000 for q in (0.5, 0.99))
    print(f"{count} in flight: p50 {p50:.0f} ms, p99 {p99:.0f} ms, refused {refused}")


def big_requests(server: Server, channel: grpc.Channel, base: pb.DecideRequest, count: int) -> None:
    msg = pb.DecideRequest()
    msg.CopyFrom(base)
    msg.profile["region"] = (
        "r" * 1_000_000
    )  # just under 1 MiB: past the size limit is another probe
    data = msg.SerializeToString()
    raw = channel.unary_unary("/nba.v1.DecisionService/Decide")
    before = server.memory_mb("VmRSS")
    calls = [raw.future(data, timeout=120) for _ in range(count)]
    codes = collections.Counter(str(c.code().name) for c in calls)
    peak = server.memory_mb("VmHWM")
    shown = ", ".join(f"{k} {v}" for k, v in codes.most_common())
    size = f"{len(data) / 2**20:.2f} MiB"
    print(f"{count} x {size} in flight: RSS {before:.0f} MB -> peak {peak:.0f} MB ({shown})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=HERE, help="checkout whose server to probe")
    parser.add_argument("--quick", action="store_true", help="fewer calls per probe")
    options = parser.parse_args()
    repo = options.repo.resolve()
    bases = examples(repo)
    server = Server(repo)
    print(
        f"nba serve of {repo} (git {git_head(repo)}), pid {server.process.pid}, port {server.port}"
    )
    try:
        options_ = [
            ("grpc.max_send_message_length", 8 * 2**20),
            ("grpc.max_receive_message_length", 8 * 2**20),
        ]
        with grpc.insecure_channel(f"127.0.0.1:{server.port}", options=options_) as channel:
            grpc.channel_ready_future(channel).result(timeout=30)
            fuzzed_decides(channel, bases, 500 if options.quick else 2000)
            undecodable(server, channel, bases[0], 25 if options.quick else 100)
            megabyte_value(channel, bases[0])
            many_keys(server, channel, bases[0])
            in_flight(channel, bases, 500)
            big_requests(server, channel, bases[0], 100 if options.quick else 600)
    finally:
        server.stop()


def git_head(repo: Path) -> str:
    result = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or "?"


if __name__ == "__main__":
    sys.exit(main())
