"""End to end over gRPC on loopback, against an echo server measured in the same run.

    python -m bench.grpc_e2e [--quick] [--workers N] [--clients P]

The echo server is a plain grpc server implementing DecisionService.Decide that returns
a pre-built DecideResponse: the response the real engine gives for that request
(computed once at start-up), with the same thread pool. It is the floor: protobuf,
HTTP/2 and the Python grpc stack, no decisioning. The nba server is `nba serve` with
`--store none` (stateless: the requests carry their history, so both servers
return the same recommendations for the same request).

Each server runs in its own process; the load generator runs in P more processes
(spawned, so none shares the GIL with a server), each with CHANNELS_PER_CLIENT channels
(connections: balancing across SO_REUSEPORT workers is per connection). Measured, for each server:
- unloaded: one call in flight, sequential calls from one client, p50 / p99;
- closed loop with 16 and 64 calls in flight (split across the client processes and
  kept full with `stub.Decide.future`): calls per second over a fixed window after a
  warm-up, latency p50 / p99 under that load, and the server's CPU time per call.
Requests: the 19 example requests with 20 synthetic interactions each, explain off.
"""

from __future__ import annotations

import argparse
import itertools
import multiprocessing as mp
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from concurrent import futures
from dataclasses import dataclass
from pathlib import Path
from queue import Empty

from bench.common import REPO, RULES_DIR, Stats, Target, ratio, show, show_targets, table, us
from nba.v1 import decisioning_pb2 as pb

# The kernel spreads connections, not calls, over SO_REUSEPORT workers: with 2 clients
# x 2 channels, all 4 connections sometimes hashed onto one of 2 workers (28% vs 56% of
# echo in two runs). 4 channels each make an even spread likely, as a real client would.
CHANNELS_PER_CLIENT = 4
THREADS = 8  # gRPC worker threads per server process, both servers (nba serve's default)
HISTORY = 20
READY = re.compile(r"ready on [\d.]+:(\d+)")
NBA = Path(sys.executable).with_name("nba")


@dataclass(frozen=True, slots=True)
class Plan:
    unloaded_calls: int
    warmup_s: float
    window_s: float
    in_flight: tuple[int, ...] = (16, 64)

    @classmethod
    def of(cls, quick: bool) -> Plan:
        return cls(300, 0.5, 1.5) if quick else cls(3000, 1.0, 5.0)


# ---------------------------------------------------------------------------- requests file


def write_requests(path: Path, messages: Sequence[pb.DecideRequest]) -> None:
    """Length-prefixed serialized requests: what every process of the run replays."""
    with path.open("wb") as f:
        for msg in messages:
            data = msg.SerializeToString()
            f.write(struct.pack("<I", len(data)) + data)


def read_requests(path: Path) -> list[pb.DecideRequest]:
    data = path.read_bytes()
    out, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from("<I", data, offset)
        offset += 4
        out.append(pb.DecideRequest.FromString(data[offset : offset + size]))
        offset += size
    return out


# ---------------------------------------------------------------------------- echo server


def echo_server(requests_path: Path, port: int, threads: int, reuse_port: bool) -> None:
    """Serve pre-built real responses, keyed by customer id, until SIGTERM."""
    import grpc

    from nba.pipeline.decider import Decider
    from nba.ruleset.loader import load_ruleset
    from nba.v1 import decisioning_pb2_grpc as pb_grpc

    decider = Decider(load_ruleset(RULES_DIR), "durable")
    responses = {m.customer_id: decider.decide(m) for m in read_requests(requests_path)}
    default = next(iter(responses.values()))

    class Echo(pb_grpc.DecisionServiceServicer):
        def Decide(self, request: pb.DecideRequest, context: object) -> pb.DecideResponse:
            return responses.get(request.customer_id, default)

    options = [("grpc.so_reuseport", 1 if reuse_port else 0)]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=threads), options=options)
    pb_grpc.add_DecisionServiceServicer_to_server(Echo(), server)
    bound = server.add_insecure_port(f"127.0.0.1:{port}")
    server.start()
    print(f"echo ready on 127.0.0.1:{bound}", file=sys.stderr, flush=True)
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    stopped.wait()
    server.stop(0)


# ---------------------------------------------------------------------------- servers


@dataclass
class Server:
    name: str
    procs: list[subprocess.Popen[bytes]]
    port: int
    log: Path

    def cpu_seconds(self) -> float:
        """User + system CPU of the server processes and their children so far."""
        total = 0.0
        for pid in _tree([p.pid for p in self.procs]):
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        return total

    def stop(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.procs:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def _tree(roots: list[int]) -> list[int]:
    """The roots and all their descendants (from /proc), for --workers servers."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], list(roots)
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def serve_has_workers() -> bool:
    return serve_has("--workers")


def serve_has(option: str) -> bool:
    """Whether this checkout's `nba serve` takes OPTION (the bench also runs older ones)."""
    help_text = subprocess.run(
        [str(NBA), "serve", "--help"], capture_output=True, text=True, cwd=REPO, check=False
    ).stdout
    return option in help_text


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_nba(workdir: Path, workers: int) -> Server:
    port = free_port() if workers > 1 else 0
    cmd = [str(NBA), "serve", "--rules", str(RULES_DIR), "--port", str(port)]
    cmd += ["--store", "none", "--threads", str(THREADS), "--log-level", "info"]
    cmd += ["--workers", str(workers), "--no-watch"]
    if serve_has("--http-port"):  # off: only the gRPC face is measured here
        cmd += ["--http-port", "0"]
    log = workdir / "nba.log"
    proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=log.open("wb"))
    return Server("nba", [proc], _wait_ready(proc, log), log)


def start_echo(workdir: Path, requests_path: Path, workers: int) -> Server:
    port = free_port() if workers > 1 else 0
    procs, log = [], workdir / "echo.log"
    for i in range(workers):
        cmd = [sys.executable, "-m", "bench.grpc_e2e", "--echo-server", str(requests_path)]
        cmd += ["--port", str(port), "--threads", str(THREADS)]
        if workers > 1:
            cmd.append("--reuse-port")
        worker_log = log.with_suffix(f".{i}.log")
        procs.append(
            subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=worker_log.open("wb"))
        )
    bound = [_wait_ready(p, log.with_suffix(f".{i}.log")) for i, p in enumerate(procs)]
    return Server("echo", procs, bound[0], log)


def _wait_ready(proc: subprocess.Popen[bytes], log: Path, timeout: float = 60) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = READY.search(log.read_text(errors="replace"))
        if found:
            return int(found.group(1))
        if proc.poll() is not None:
            raise SystemExit(f"server exited ({proc.returncode}):\n{log.read_text()}")
        time.sleep(0.05)
    proc.kill()
    raise SystemExit(f"server not ready after {timeout} s:\n{log.read_text()}")


# ---------------------------------------------------------------------------- load generator


def _channel(port: int) -> object:
    import grpc

    # A local subchannel pool: channels with equal arguments would otherwise share one
    # connection, and balancing across SO_REUSEPORT workers is per connection.
    options = [("grpc.use_local_subchannel_pool", 1)]
    channel = grpc.insecure_channel(f"127.0.0.1:{port}", options=options)
    grpc.channel_ready_future(channel).result(timeout=10)
    return channel


def unloaded(port: int, requests_path: Path, calls: int, queue: mp.Queue) -> None:  # type: ignore[type-arg]
    """One call in flight: sequential calls, one sample each."""
    from nba.v1 import decisioning_pb2_grpc as pb_grpc

    requests = read_requests(requests_path)
    stub = pb_grpc.DecisionServiceStub(_channel(port))
    for i in range(max(50, calls // 10)):
        stub.Decide(requests[i % len(requests)], timeout=10)
    samples = []
    for i in range(calls):
        start = time.perf_counter_ns()
        stub.Decide(requests[i % len(requests)], timeout=10)
        samples.append(time.perf_counter_ns() - start)
    queue.put(samples)


def closed_loop(
    port: int,
    requests_path: Path,
    in_flight: int,
    warmup_s: float,
    window_s: float,
    barrier: object,
    queue: mp.Queue,  # type: ignore[type-arg]
) -> None:
    """Keep in_flight calls outstanding over several channels; report the window's completions."""
    from nba.v1 import decisioning_pb2_grpc as pb_grpc

    requests = read_requests(requests_path)
    stubs = [pb_grpc.DecisionServiceStub(_channel(port)) for _ in range(CHANNELS_PER_CLIENT)]
    slots = threading.Semaphore(in_flight)
    done: list[tuple[int, int]] = []  # (finished at, latency), appended from grpc threads
    errors = [0]

    def finished(future: object, started: int) -> None:
        now = time.perf_counter_ns()
        try:
            if future.exception() is None:  # type: ignore[attr-defined]
                done.append((now, now - started))
            else:
                errors[0] += 1
        finally:
            slots.release()  # always: a lost slot would hang the drain below

    barrier.wait()  # type: ignore[attr-defined]
    begin = time.perf_counter_ns()
    window_start = begin + int(warmup_s * 1e9)
    end = window_start + int(window_s * 1e9)
    for i in itertools.count():
        slots.acquire()
        started = time.perf_counter_ns()
        if started >= end:
            slots.release()
            break
        stub = stubs[i % CHANNELS_PER_CLIENT]
        future = stub.Decide.future(requests[i % len(requests)], timeout=30)
        future.add_done_callback(lambda f, s=started: finished(f, s))
    for _ in range(in_flight):  # drain what is still in flight
        slots.acquire()
    window = [lat for at, lat in done if window_start <= at < end]
    queue.put((len(window), window_s, window, errors[0]))


def _collect(queue: mp.Queue, procs: list[mp.process.BaseProcess]) -> list:  # type: ignore[type-arg]
    """One result per client process; fails fast (not after a timeout) if a client died."""
    results: list = []  # type: ignore[type-arg]
    while len(results) < len(procs):
        try:
            results.append(queue.get(timeout=1))
        except Empty:
            dead = [p for p in procs if p.exitcode not in (None, 0)]
            if dead:
                for p in procs:
                    p.kill()
                raise SystemExit(
                    f"load generator failed (exit {dead[0].exitcode}); see above"
                ) from None
    for proc in procs:
        proc.join()
    return results


@dataclass(frozen=True, slots=True)
class Load:
    in_flight: int
    calls_per_s: float
    latency: Stats
    server_cpu_us: float  # server CPU time per call during the window (and warm-up)
    errors: int


def run_unloaded(port: int, requests_path: Path, calls: int) -> Stats:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=unloaded, args=(port, requests_path, calls, queue))
    proc.start()
    (samples,) = _collect(queue, [proc])
    return Stats.of(samples)


def run_loaded(
    server: Server, requests_path: Path, in_flight: int, clients: int, plan: Plan
) -> Load:
    clients = min(clients, in_flight)  # a client with nothing in flight would wait forever
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    barrier = ctx.Barrier(clients + 1)
    shares = [in_flight // clients + (i < in_flight % clients) for i in range(clients)]
    procs = [
        ctx.Process(
            target=closed_loop,
            args=(server.port, requests_path, share, plan.warmup_s, plan.window_s, barrier, queue),
        )
        for share in shares
    ]
    for proc in procs:
        proc.start()
    try:
        barrier.wait(timeout=120)  # every client connected: the windows start together
    except threading.BrokenBarrierError:
        _collect(queue, procs)  # says which client died, and how
        raise
    cpu_before = server.cpu_seconds()
    results = _collect(queue, procs)
    cpu = server.cpu_seconds() - cpu_before
    completed = sum(r[0] for r in results)
    latencies = [lat for r in results for lat in r[2]]
    total_calls = completed * (plan.warmup_s + plan.window_s) / plan.window_s  # warm-up too
    return Load(
        in_flight,
        completed / plan.window_s,
        Stats.of(latencies),
        cpu / max(total_calls, 1) * 1e6,
        sum(r[3] for r in results),
    )


@dataclass
class Measured:
    unloaded: Stats
    loads: dict[int, Load]
    response_bytes: int


def measure_server(server: Server, requests_path: Path, clients: int, plan: Plan) -> Measured:
    show(f"  {server.name}: port {server.port}, measuring...")
    size = _check_response(server.port, requests_path)
    quiet = run_unloaded(server.port, requests_path, plan.unloaded_calls)
    loads = {n: run_loaded(server, requests_path, n, clients, plan) for n in plan.in_flight}
    return Measured(quiet, loads, size)


def _check_response(port: int, requests_path: Path) -> int:
    """One call per request: a real answer with recommendations (not an error page)."""
    from nba.v1 import decisioning_pb2_grpc as pb_grpc

    stub = pb_grpc.DecisionServiceStub(_channel(port))
    total = 0
    for msg in read_requests(requests_path):
        response = stub.Decide(msg, timeout=10)
        if not response.recommendations:
            raise SystemExit(f"no recommendations for {msg.customer_id} on port {port}")
        total += response.ByteSize()
    return total


# ---------------------------------------------------------------------------- report


def report(echo: Measured, nba: Measured, workers_note: str) -> list[Target]:
    rows: list[list[object]] = [
        _row("unloaded p50 (µs)", echo.unloaded.median, nba.unloaded.median),
        _row("unloaded p99 (µs)", echo.unloaded.p99, nba.unloaded.p99),
    ]
    for n in echo.loads:
        e, b = echo.loads[n], nba.loads[n]
        rows += [
            [
                f"{n} in flight: calls/s",
                f"{e.calls_per_s:,.0f}",
                f"{b.calls_per_s:,.0f}",
                ratio(b.calls_per_s / e.calls_per_s),
            ],
            _row(f"{n} in flight: p50 (µs)", e.latency.median, b.latency.median),
            _row(f"{n} in flight: p99 (µs)", e.latency.p99, b.latency.p99),
            _row(f"{n} in flight: server CPU per call (µs)", e.server_cpu_us, b.server_cpu_us),
        ]
        if e.errors or b.errors:
            rows.append([f"{n} in flight: failed calls", e.errors, b.errors, ""])
    rows.append(
        ["response bytes (19 requests)", f"{echo.response_bytes:,}", f"{nba.response_bytes:,}", ""]
    )
    show(
        table(
            ["over gRPC, loopback", "echo", "nba", "nba / echo"],
            rows,
            f"gRPC end to end ({workers_note})",
        )
    )
    share = nba.loads[16].calls_per_s / echo.loads[16].calls_per_s
    return [
        Target(
            "gRPC unloaded p99",
            f"{us(nba.unloaded.p99)} µs",
            "<= 2,000 µs",
            nba.unloaded.p99 <= 2000,
        ),
        Target(
            "gRPC throughput at 16 in flight / echo floor", f"{share:.0%}", ">= 50%", share >= 0.5
        ),
    ]


def _row(label: str, echo: float, nba: float) -> list[object]:
    return [label, us(echo), us(nba), ratio(nba / echo)]


def run(quick: bool = False, workers: int = 1, clients: int = 2) -> list[Target]:
    from bench.workload import example_requests
    from nba.ruleset.loader import load_ruleset

    plan = Plan.of(quick)
    supported = serve_has_workers()
    if workers > 1 and not supported:
        show(f"  note: `nba serve` has no --workers option; running 1 process, not {workers}")
        workers = 1
    note = f"{workers} server process{'es' if workers > 1 else ''}, {THREADS} threads"
    note += f", {clients} client processes" + (
        "" if supported else "; nba serve has no --workers yet"
    )
    with tempfile.TemporaryDirectory(prefix="nba-bench-") as tmp:
        workdir = Path(tmp)
        requests_path = workdir / "requests.bin"
        write_requests(requests_path, example_requests(load_ruleset(RULES_DIR), history=HISTORY))
        measured: dict[str, Measured] = {}
        for name in ("echo", "nba"):
            server = (
                start_echo(workdir, requests_path, workers)
                if name == "echo"
                else start_nba(workdir, workers)
            )
            try:
                measured[name] = measure_server(server, requests_path, clients, plan)
            finally:
                server.stop()
    return report(measured["echo"], measured["nba"], note)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="shorter windows (smoke run)")
    parser.add_argument(
        "--workers", type=int, default=1, help="server processes (needs `nba serve --workers`)"
    )
    parser.add_argument("--clients", type=int, default=2, help="load generator processes")
    parser.add_argument(
        "--echo-server", type=Path, help=argparse.SUPPRESS
    )  # internal: be the echo server
    parser.add_argument("--port", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=THREADS, help=argparse.SUPPRESS)
    parser.add_argument("--reuse-port", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.echo_server:
        echo_server(args.echo_server, args.port, args.threads, args.reuse_port)
        return
    targets = run(args.quick, args.workers, args.clients)
    show_targets(targets)


if __name__ == "__main__":
    main()
