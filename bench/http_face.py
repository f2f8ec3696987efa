"""The HTTP/JSON face against gRPC, and HTTP servers against each other, in one run.

    python -m bench.http_face [--quick]

Servers, each its own process, one at a time:
- gRPC echo (bench.grpc_e2e's: pre-built real responses) and `nba serve` over gRPC;
- `nba serve --http-port` over HTTP/1.1 JSON (the face as shipped: Starlette on Hypercorn);
- HTTP echo floors: the face's own handler (JSON parse, thread pool, JSON encode of the
  pre-built response) with no decision, on Hypercorn (shipped) and on uvicorn (httptools,
  uvloop; HTTP/1.1 only), which is how the server library was chosen.
`nba serve` runs with `--store none` (requests carry their history), so the echo servers
and nba return the same recommendations.

The HTTP load generator is raw asyncio on keep-alive HTTP/1.1 connections, one call in
flight per connection (cheaper than any HTTP client library, so the server is measured,
not the client), in 2 spawned processes like grpc_e2e's. Measured per server: unloaded
p50 / p99 (one call at a time), and with 16 in flight: calls/s, p50 / p99 and the server's
CPU per call. Requests: the 19 examples with 20 synthetic interactions each, explain off.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import multiprocessing as mp
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

from bench.common import REPO, RULES_DIR, Stats, Target, ratio, show, show_targets, table, us
from bench.grpc_e2e import (
    NBA,
    THREADS,
    Load,
    Plan,
    Server,
    _collect,
    _wait_ready,
    free_port,
    read_requests,
    run_loaded,
    run_unloaded,
    start_echo,
    write_requests,
)

DECIDE = "/nba.v1.DecisionService/Decide"
CLIENTS = 2
IN_FLIGHT = 16
STACKS = ("hypercorn", "uvicorn")


# ---------------------------------------------------------------------------- echo server


def echo_server(requests_path: Path, stack: str, port: int) -> None:
    """The face's Decide handler around pre-built responses, on `stack`, until SIGTERM."""
    from starlette.applications import Starlette
    from starlette.routing import Route

    from nba.pipeline.decider import Decider
    from nba.ruleset.loader import load_ruleset
    from nba.server.http_face import HttpFace, Rpc
    from nba.server.metrics import NO_METRICS
    from nba.v1 import decisioning_pb2 as pb

    decider = Decider(load_ruleset(RULES_DIR), "durable")
    responses = {m.customer_id: decider.decide(m) for m in read_requests(requests_path)}
    default = next(iter(responses.values()))

    def echo(request: pb.DecideRequest, _call: object) -> pb.DecideResponse:
        return responses.get(request.customer_id, default)

    # The echo needs no rule set: only what the face reads of a service besides calling it.
    service = SimpleNamespace(holder=None, metrics=NO_METRICS, draining=threading.Event())
    face = HttpFace(service, THREADS)  # type: ignore[arg-type]
    rpc = Rpc("Decide", "/v1/decide", pb.DecideRequest, lambda _service: echo)
    app = Starlette(routes=[Route(DECIDE, face.route(rpc), methods=["POST"])])
    print(f"echo ready on 127.0.0.1:{port}", file=sys.stderr, flush=True)
    if stack == "uvicorn":
        import uvicorn

        uvicorn.run(app, host="127.0.0.1", port=port, log_level="warning", access_log=False)
        return
    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.accesslog = None
    asyncio.run(serve(app, config))  # type: ignore[arg-type]


def start_http_echo(workdir: Path, requests_path: Path, stack: str) -> Server:
    port = free_port()
    log = workdir / f"echo-{stack}.log"
    cmd = [sys.executable, "-m", "bench.http_face", "--echo-server", str(requests_path)]
    cmd += ["--stack", stack, "--port", str(port)]
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    _wait_ready(proc, log)
    _wait_listening(port)
    return Server(f"HTTP echo ({stack})", [proc], port, log)


def start_nba_http(workdir: Path) -> tuple[Server, Server]:
    """One `nba serve`, as two targets: its gRPC port and its HTTP port."""
    http_port = free_port()
    cmd = [str(NBA), "serve", "--rules", str(RULES_DIR), "--port", "0"]
    cmd += ["--http-port", str(http_port), "--store", "none", "--threads", str(THREADS)]
    cmd += ["--workers", "1", "--no-watch"]
    log = workdir / "nba.log"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    grpc_port = _wait_ready(proc, log)
    return Server("nba gRPC", [proc], grpc_port, log), Server("nba HTTP", [proc], http_port, log)


def _wait_listening(port: int, timeout: float = 30) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port} after {timeout} s")


# ---------------------------------------------------------------------------- load generator


def http_requests(requests_path: Path) -> list[bytes]:
    """The raw HTTP/1.1 requests: the proto3 JSON of each DecideRequest."""
    from google.protobuf import json_format

    out = []
    for message in read_requests(requests_path):
        body = json_format.MessageToJson(message, indent=None).encode()
        head = (
            f"POST {DECIDE} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\n\r\n"
        )
        out.append(head.encode() + body)
    return out


class ConnectionClosedError(Exception):
    """The server closed the keep-alive connection between calls (Hypercorn does after
    keep_alive_max_requests, 1,000 by default): reconnect and send again, no error."""


async def _call(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes) -> None:
    writer.write(raw)
    try:
        head = await reader.readuntil(b"\r\n\r\n")
    except asyncio.IncompleteReadError as exc:
        if not exc.partial:
            raise ConnectionClosedError from None
        raise
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head[:200].decode(errors="replace"))
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    await reader.readexactly(length)


async def _connection_loop(
    port: int, raws: list[bytes], offset: int, until_ns: int, done: list[tuple[int, int]]
) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    errors, i = 0, offset
    while time.perf_counter_ns() < until_ns:
        started = time.perf_counter_ns()
        try:
            await asyncio.wait_for(_call(reader, writer, raws[i % len(raws)]), timeout=30)
        except ConnectionClosedError:
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            continue  # the same request again, on the new connection
        except (TimeoutError, RuntimeError, asyncio.IncompleteReadError):
            errors += 1
            writer.close()
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        else:
            now = time.perf_counter_ns()
            done.append((now, now - started))
        i += 1
    writer.close()
    return errors


def http_unloaded(port: int, requests_path: Path, calls: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> list[int]:
        raws = http_requests(requests_path)
        connection = [await asyncio.open_connection("127.0.0.1", port)]

        async def call(raw: bytes) -> None:
            try:
                await asyncio.wait_for(_call(*connection[0], raw), timeout=30)
            except ConnectionClosedError:
                connection[0][1].close()
                connection[0] = await asyncio.open_connection("127.0.0.1", port)
                await asyncio.wait_for(_call(*connection[0], raw), timeout=30)

        for i in range(max(50, calls // 10)):
            await call(raws[i % len(raws)])
        samples = []
        for i in range(calls):
            start = time.perf_counter_ns()
            await call(raws[i % len(raws)])
            samples.append(time.perf_counter_ns() - start)
        connection[0][1].close()
        return samples

    queue.put(asyncio.run(run()))


def http_closed_loop(
    port: int,
    requests_path: Path,
    in_flight: int,
    warmup_s: float,
    window_s: float,
    barrier: object,
    queue: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """`in_flight` keep-alive connections, each with one call outstanding at all times."""
    raws = http_requests(requests_path)
    done: list[tuple[int, int]] = []

    async def run() -> int:
        barrier.wait()  # type: ignore[attr-defined]
        begin = time.perf_counter_ns()
        end = begin + int((warmup_s + window_s) * 1e9)
        loops = [_connection_loop(port, raws, i * 7, end, done) for i in range(in_flight)]
        return sum(await asyncio.gather(*loops))

    errors = asyncio.run(run())
    end = max(at for at, _ in done)
    window_start = end - int(window_s * 1e9)
    window = [lat for at, lat in done if at >= window_start]
    queue.put((len(window), window_s, window, errors))


def run_http_unloaded(port: int, requests_path: Path, calls: int) -> Stats:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=http_unloaded, args=(port, requests_path, calls, queue))
    proc.start()
    (samples,) = _collect(queue, [proc])
    return Stats.of(samples)


def run_http_loaded(server: Server, requests_path: Path, plan: Plan) -> Load:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(CLIENTS + 1)
    share = IN_FLIGHT // CLIENTS
    args = (server.port, requests_path, share, plan.warmup_s, plan.window_s, barrier, queue)
    procs = [ctx.Process(target=http_closed_loop, args=args) for _ in range(CLIENTS)]
    for proc in procs:
        proc.start()
    barrier.wait(timeout=120)
    cpu_before = server.cpu_seconds()
    results = _collect(queue, procs)
    cpu = server.cpu_seconds() - cpu_before
    completed = sum(r[0] for r in results)
    total_calls = completed * (plan.warmup_s + plan.window_s) / plan.window_s
    return Load(
        IN_FLIGHT,
        completed / plan.window_s,
        Stats.of([lat for r in results for lat in r[2]]),
        cpu / max(total_calls, 1) * 1e6,
        sum(r[3] for r in results),
    )


# ---------------------------------------------------------------------------- run


@dataclass
class Row:
    name: str
    quiet: Stats
    load: Load


def measure(server: Server, requests_path: Path, plan: Plan, http: bool) -> Row:
    show(f"  {server.name}: port {server.port}, measuring...")
    if http:
        quiet = run_http_unloaded(server.port, requests_path, plan.unloaded_calls)
        return Row(server.name, quiet, run_http_loaded(server, requests_path, plan))
    quiet = run_unloaded(server.port, requests_path, plan.unloaded_calls)
    return Row(server.name, quiet, run_loaded(server, requests_path, IN_FLIGHT, CLIENTS, plan))


def measure_all(workdir: Path, requests_path: Path, plan: Plan) -> dict[str, Row]:
    rows: dict[str, Row] = {}
    echo = start_echo(workdir, requests_path, 1)
    try:
        rows["grpc echo"] = measure(echo, requests_path, plan, http=False)
    finally:
        echo.stop()
    for stack in STACKS:
        if importlib.util.find_spec(stack) is None:  # uvicorn: a comparison, not a dependency
            show(f"  HTTP echo ({stack}): skipped, not installed (pip install {stack})")
            continue
        server = start_http_echo(workdir, requests_path, stack)
        try:
            rows[f"http echo {stack}"] = measure(server, requests_path, plan, http=True)
        finally:
            server.stop()
    over_grpc, over_http = start_nba_http(workdir)
    try:
        rows["nba grpc"] = measure(over_grpc, requests_path, plan, http=False)
        rows["nba http"] = measure(over_http, requests_path, plan, http=True)
    finally:
        over_grpc.stop()
    return rows


def report(rows: dict[str, Row]) -> list[Target]:
    lines = [
        [
            name,
            us(r.quiet.median),
            us(r.quiet.p99),
            f"{r.load.calls_per_s:,.0f}",
            us(r.load.latency.median),
            us(r.load.latency.p99),
            us(r.load.server_cpu_us),
            r.load.errors,
        ]
        for name, r in rows.items()
    ]
    headers = ["server", "p50 µs", "p99 µs", "calls/s @16", "p50 @16", "p99 @16", "CPU µs/call"]
    show(table([*headers, "errors"], lines, "Decide, loopback, 1 server process"))
    grpc, http = rows["nba grpc"], rows["nba http"]
    cost = http.load.server_cpu_us / grpc.load.server_cpu_us
    speed = grpc.load.calls_per_s / http.load.calls_per_s
    stacks = ""
    if "http echo uvicorn" in rows:
        floor = rows["http echo hypercorn"].load.calls_per_s
        floor /= rows["http echo uvicorn"].load.calls_per_s
        stacks = f"; hypercorn echo calls/s / uvicorn echo {ratio(floor)}"
    show(
        f"  HTTP/gRPC per decision: server CPU {ratio(cost)}, unloaded p50"
        f" {ratio(http.quiet.median / grpc.quiet.median)}, time per call at 16 {ratio(speed)}"
        + stacks
    )
    return [
        Target("HTTP/gRPC server CPU per decision", ratio(cost), "<= 1.5x", cost <= 1.5),
        Target("HTTP/gRPC time per call at 16 in flight", ratio(speed), "<= 1.5x", speed <= 1.5),
    ]


def run(quick: bool) -> list[Target]:
    from bench.workload import example_requests
    from nba.ruleset.loader import load_ruleset

    plan = Plan.of(quick)
    with tempfile.TemporaryDirectory(prefix="nba-bench-http-") as tmp:
        workdir = Path(tmp)
        requests_path = workdir / "requests.bin"
        write_requests(requests_path, example_requests(load_ruleset(RULES_DIR), history=20))
        return report(measure_all(workdir, requests_path, plan))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter windows (smoke run)")
    parser.add_argument("--echo-server", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--stack", choices=STACKS, default="hypercorn", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        echo_server(args.echo_server, args.stack, args.port)
        return
    show_targets(run(args.quick))


if __name__ == "__main__":
    main()
