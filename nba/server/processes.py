"""Running the service: one process, or several sharing one port.

durable_rules never releases the GIL, so threads cannot add decision throughput; more
processes can. With `--workers N` the parent parses and checks the rules once, reserves
the port (SO_REUSEPORT), and forks N workers before any gRPC server or channel exists
(gRPC is not fork-safe once started). Each worker inherits the parsed rule set through
the fork (no worker reads the files at startup), compiles its own engine from it
(durable_rules state cannot be shared across processes), opens its own store connection
and serves on the shared port; the kernel spreads new connections across them, so a
client should open several channels to use every worker (balancing is per connection,
not per call). The parent logs one ready line once every worker is up, forwards
SIGTERM/SIGINT (stop) and SIGHUP (reload: each worker rereads the files), and restarts a
worker that dies; a replacement reads the files itself, as they are then (the set parsed
at startup may be stale by now).

Stopping (SIGTERM, or SIGINT in the foreground) drains first: health turns NOT_SERVING
for every service and /readyz answers 503 at once, calls keep being served until none
has been in flight for QUIET_SECONDS (or the grace runs out), and only then does the
server stop listening and wait out what is left of `--grace`. Stopping grpc's server
straight away would cancel the calls that have arrived but not yet reached a thread:
grpc's core matches one waiting call at a time, and under load most of a burst waits
(39 of 50 were cancelled on main). A worker dies with its supervisor however that dies
(PR_SET_PDEATHSIG), and a second server on a port an nba server holds is refused.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

from nba.server import NO_STORE
from nba.server.limits import Limits

if TYPE_CHECKING:  # annotations only: the serving code is imported where it serves
    from nba.decisionlog import LogSettings
    from nba.decisionlog.writer import DecisionRecorder
    from nba.ruleset.ruleset import RuleSet
    from nba.server.auth import JwtSettings
    from nba.server.grpc_face import Running
    from nba.server.http_serve import HttpServer
    from nba.server.reload import LoadResult, RuleSetHolder
    from nba.server.service import DecisionService
    from nba.server.tls import TlsFiles
    from nba.store import InteractionStore

log = logging.getLogger("nba")

DEFAULT_LIMITS = Limits()
RESTART_PAUSE_SECONDS = 1.0  # a worker that keeps crashing is not restarted in a hot loop
DEFAULT_GRACE_SECONDS = 5.0
# No call in flight for this long and the drain is over: long enough for the calls grpc's
# core holds unmatched to reach a thread (one per GIL switch interval, 5 ms, under load).
QUIET_SECONDS = 0.25
PR_SET_PDEATHSIG = 1  # linux/prctl.h


@dataclass(frozen=True)
class ServeConfig:
    rules: Path
    host: str
    port: int
    store: str
    engine: str
    threads: int
    sweep_every: float
    watch: bool
    # who may call and what a worker takes on (auth.py, tls.py, limits.py)
    tls: TlsFiles | None = None
    auth_tokens: Path | None = None
    jwt: JwtSettings | None = None  # --auth-jwks and the claims a JWT must carry
    reflection: bool = True
    limits: Limits = DEFAULT_LIMITS
    http_port: int = 0  # the HTTP/JSON (Connect) face; 0: off (the CLI's default is 8080)
    cors_origins: tuple[str, ...] = ()  # origins a browser may call the HTTP face from
    grace: float = DEFAULT_GRACE_SECONDS  # how long calls in flight may take to finish on stop
    metrics_port: int = 0  # Prometheus /metrics for every worker (metrics.py); 0: off
    model_refresh: float = 5.0  # seconds between a worker's reads of the learned evidence
    decision_log: LogSettings | None = None  # --decision-log DIR and its options; None: off


@dataclass
class Ready:
    """What a worker reports once its server is up."""

    port: int
    version: str
    summary: str
    engine: str
    http_port: int = 0  # 0: no HTTP face
    store_available: bool = True


def serve_one(
    config: ServeConfig,
    port: int,
    reuse_port: bool,
    ready: Connection | None,
    ruleset: RuleSet | None = None,
    http_port: int | None = None,
) -> None:
    """Compile the rules, open the store, serve until SIGTERM/SIGINT; this process only.

    `ruleset` is the set the caller already parsed (None: read the files here);
    `http_port` the HTTP port to bind (None: config.http_port; 0 there: no HTTP face).
    """
    from nba.pipeline.decider import history_horizon
    from nba.scoring.adaptive import ModelCache
    from nba.server.auth import authenticator
    from nba.server.grpc_face import build_server
    from nba.server.metrics import NO_METRICS, PrometheusMetrics
    from nba.server.reload import RuleSetHolder, load_rules
    from nba.server.reload import watch as watch_rules
    from nba.store import open_store
    from nba.store.guarded import GuardedStore

    if ruleset is None:
        ruleset = load_rules(config.rules)
    metrics = PrometheusMetrics() if config.metrics_port else NO_METRICS
    store = None
    if config.store != NO_STORE:
        backend = open_store(config.store, retention_seconds=history_horizon(ruleset))
        store = GuardedStore(backend, observe=metrics.store_call)
        store.add_listener(metrics.store_available)
        store.check_now()  # unreachable: logged, and the server starts degraded
    model = None if store is None else ModelCache(store, config.model_refresh)
    holder = RuleSetHolder(config.rules, config.engine, store, model)
    holder.add_listener(metrics.reloaded)
    recorder = _open_decision_log(config, holder)
    decider = holder.load(ruleset)
    running = build_server(
        holder,
        config.host,
        port,
        config.threads,
        reuse_port=reuse_port,
        tls=config.tls,
        auth=authenticator(
            config.auth_tokens, config.jwt
        ),  # per worker: each rereads a changed file
        limits=config.limits,
        reflection_on=config.reflection,
        metrics=metrics,
        decision_log=recorder,
    )
    http_port = config.http_port if http_port is None else http_port
    http = _start_http(config, running.service, http_port, reuse_port)
    stopped = threading.Event()
    # Handlers only set flags (StopRequest): a second signal during the graceful stop must
    # not re-enter it (pkill, systemd and the supervisor may all send one).
    stop = StopRequest()
    signal.signal(signal.SIGTERM, stop.handler)
    signal.signal(signal.SIGINT, stop.handler)
    reloads = ReloadRequests(holder)
    signal.signal(signal.SIGHUP, reloads.handler)
    if config.watch:
        threading.Thread(target=watch_rules, args=(holder, stopped), daemon=True).start()
    if model is not None:  # every worker its own copy of the learned evidence
        threading.Thread(target=model.refresh_forever, args=(stopped,), daemon=True).start()
    if config.sweep_every > 0 and store is not None:
        threading.Thread(
            target=_sweep_forever, args=(store, config.sweep_every, stopped), daemon=True
        ).start()
    report = Ready(
        running.port,
        decider.version,
        decider.ruleset.summary(),
        decider.engine.name,
        http.port if http is not None else 0,
        store_available=store is None or store.available,
    )
    if ready is not None:
        ready.send(report)
        ready.close()
    else:
        _log_ready(config, report, workers=1)
    while not stop.requested:  # the main thread polls: see StopRequest
        time.sleep(POLL_SECONDS)
        reloads.run_pending()
    stopped.set()  # the watcher, sweeper and model refresh threads end
    log.info("stopping: draining calls in flight (%g s grace)", config.grace)
    left = drain(running, config.grace)
    stopping_grpc = running.server.stop(grace=left)
    if http is not None:
        http.stop(left)  # drains beside the gRPC server's grace, not after it
    stopping_grpc.wait()
    running.service.close()
    if recorder is not None:  # every call has finished: what is queued is all there is
        recorder.close()
    holder.close()
    if store is not None:
        store.close()


def _open_decision_log(config: ServeConfig, holder: RuleSetHolder) -> DecisionRecorder | None:
    """This process's decision-log writer, archiving every rule set the holder loads."""
    if config.decision_log is None:
        return None
    from nba.decisionlog.writer import DecisionRecorder

    recorder = DecisionRecorder(config.decision_log, config.engine)

    def archive(result: LoadResult) -> None:
        if result.loaded:  # the listener runs right after the swap: current is the new set
            recorder.archive_ruleset(holder.current.ruleset, holder.rules_dir)

    holder.add_listener(archive)
    return recorder


POLL_SECONDS = 0.1


class StopRequest:
    """SIGTERM or SIGINT, as a flag the main thread polls.

    A signal handler runs on the main thread between two bytecodes, possibly while that
    thread holds a lock: setting a threading.Event there deadlocks when the main thread was
    inside that Event's own wait() (seen once in 14 SIGTERMs under load: the server hung,
    health never turned NOT_SERVING). A handler that only assigns an attribute takes no lock.
    """

    def __init__(self) -> None:
        self.requested = False

    def handler(self, signum: int, frame: object) -> None:
        self.requested = True


class ReloadRequests:
    """SIGHUP, counted by the handler and served by the main thread's poll (no lock taken
    in the handler, as for StopRequest)."""

    def __init__(self, holder: RuleSetHolder) -> None:
        self.holder = holder
        self.pending = 0
        self.served = 0

    def handler(self, signum: int, frame: object) -> None:
        self.pending += 1

    def run_pending(self) -> None:
        if self.pending != self.served:
            self.served = self.pending
            threading.Thread(target=self.holder.reload, name="nba-sighup-reload").start()


def drain(running: Running, grace: float) -> float:
    """Turn unready, serve until no call has been in flight for a while; the grace left."""
    deadline = time.monotonic() + grace
    running.service.draining.set()  # /readyz: 503 "shutting down"
    running.health.enter_graceful_shutdown()  # every service NOT_SERVING, watchers told
    in_flight = running.service.in_flight
    while in_flight is not None and time.monotonic() < deadline:
        if in_flight.quiet_for() >= QUIET_SECONDS:
            break
        time.sleep(0.02)
    return max(0.0, deadline - time.monotonic())


def _start_http(
    config: ServeConfig, service: DecisionService, port: int, reuse_port: bool
) -> HttpServer | None:
    """The HTTP face beside the gRPC server (its own thread and loop), or None when off."""
    if config.http_port == 0:
        return None
    from nba.server.http_serve import start_http

    return start_http(
        service, config.host, port, config.threads, config.cors_origins, reuse_port, config.tls
    )


def _log_ready(config: ServeConfig, report: Ready, workers: int) -> None:
    from nba.store import redact_url

    http = f" | http {config.host}:{report.http_port}" if report.http_port else ""
    store = redact_url(config.store)
    if not report.store_available:
        store += " (UNREACHABLE: deciding degraded, without marketing, until it answers)"
    log.log(
        logging.INFO if report.store_available else logging.WARNING,
        "nba ready on %s:%d%s | rules %s version %s (%s) | engine %s | store %s | workers %d",
        config.host,
        report.port,
        http,
        config.rules,
        report.version,
        report.summary,
        report.engine,
        store,
        workers,
    )


def _sweep_forever(store: InteractionStore, every: float, stopped: threading.Event) -> None:
    """Trim the history of customers who went quiet (recording trims only the active ones)."""
    sweeper = logging.getLogger("nba.store")
    while not stopped.wait(every):
        try:
            removed = store.sweep()
        except Exception:  # a store outage must not kill the sweeper; the next run retries
            sweeper.exception("sweep of expired history failed")
            continue
        if removed:
            sweeper.info("swept %d expired interactions", removed)


# ---------------------------------------------------------------------------- workers


@contextlib.contextmanager
def reserved_port(host: str, port: int) -> Iterator[int]:
    """Hold host:port with SO_REUSEPORT so workers can bind it too (port 0: pick one)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        sock.bind((host, port))
        yield sock.getsockname()[1]
    finally:
        sock.close()


class Supervisor:
    """Starts the workers, keeps them running, and stops them on a signal."""

    def __init__(
        self,
        config: ServeConfig,
        workers: int,
        port: int,
        ruleset: RuleSet | None,
        http_port: int = 0,
    ) -> None:
        self.config = config
        self.count = workers
        self.port = port
        self.http_port = http_port  # reserved like `port`; 0: no HTTP face
        self.ruleset = ruleset  # parsed by the parent, for the first workers only
        self.context = multiprocessing.get_context("fork")
        self.workers: list[multiprocessing.process.BaseProcess] = []
        self.stop = StopRequest()
        self.forwards = 0  # SIGHUPs received, forwarded by the main loop
        self._next_check = 0.0  # when the main loop next looks for dead workers

    def start_worker(
        self, ruleset: RuleSet | None = None
    ) -> tuple[multiprocessing.process.BaseProcess, Connection]:
        """A forked worker; it inherits `ruleset` (None: it reads the files itself)."""
        receive, send = self.context.Pipe(duplex=False)
        process = self.context.Process(
            target=_worker_main,
            args=(self.config, self.port, send, ruleset, self.http_port),
            daemon=False,
        )
        process.start()
        send.close()
        return process, receive

    def run(self) -> int:
        # Handlers first: a SIGTERM while the workers start stops them, not this process
        # alone (which would leave them serving).
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self.stop.handler)
        signal.signal(signal.SIGHUP, self._count_sighup)
        started = [self.start_worker(self.ruleset) for _ in range(self.count)]
        self.ruleset = None  # replacements read the files: the workers may have reloaded
        reports = []
        for process, receive in started:
            report = _await_ready(process, receive)
            if report is None:
                log.error("a worker failed to start; stopping")
                self.stop_all([p for p, _ in started])
                return 1
            reports.append(report)
        self.workers = [p for p, _ in started]
        if not self.stop.requested:
            _log_ready(self.config, reports[0], self.count)
        forwarded = 0
        while not self.stop.requested:  # polled: see StopRequest
            time.sleep(POLL_SECONDS)
            if self.forwards != forwarded:
                forwarded = self.forwards
                self.forward(signal.SIGHUP)
            if time.monotonic() < self._next_check:
                continue
            self._next_check = time.monotonic() + 0.5
            self.replace_dead()
        self.stop_all(self.workers)
        return 0

    def _count_sighup(self, signum: int, frame: object) -> None:
        self.forwards += 1  # a handler takes no lock (StopRequest): the main loop forwards

    def forward(self, signum: int) -> None:
        for process in self.workers:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signum)

    def replace_dead(self) -> None:
        for i, process in enumerate(self.workers):
            if process.is_alive():
                continue
            log.error("worker %s exited with %s; starting another", process.pid, process.exitcode)
            if self.config.metrics_port and process.pid is not None:
                from nba.server.metrics import worker_died

                worker_died(process.pid)  # its live gauges (in flight) no longer count
            time.sleep(RESTART_PAUSE_SECONDS)
            replacement, receive = self.start_worker()
            if _await_ready(replacement, receive) is not None:
                self.workers[i] = replacement

    def stop_all(self, processes: list[multiprocessing.process.BaseProcess]) -> None:
        log.info("stopping %d workers (%g s grace)", len(processes), self.config.grace)
        for process in processes:
            if process.pid is not None and process.is_alive():
                os.kill(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.grace + 10  # the grace, then closing
        for process in processes:
            process.join(timeout=max(0.0, deadline - time.monotonic()))
            if process.is_alive():
                log.error("worker %s did not stop in time; killing it", process.pid)
                process.kill()


def _await_ready(process: multiprocessing.process.BaseProcess, receive: Connection) -> Ready | None:
    """The worker's ready report, or None when it died first."""
    while process.is_alive():
        if receive.poll(0.2):
            try:
                report = receive.recv()
            except EOFError:
                return None
            return report if isinstance(report, Ready) else None
    return None


def _worker_main(
    config: ServeConfig, port: int, ready: Connection, ruleset: RuleSet | None, http_port: int
) -> None:
    # The fork copied the supervisor's handlers, which set the supervisor's event: until
    # serve_one installs its own, SIGTERM must simply end a worker that is starting.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent decides when to stop
    supervisor = os.getppid()
    _die_with_parent()
    if os.getppid() != supervisor:  # it died before the line above took effect
        return
    serve_one(config, port, reuse_port=True, ready=ready, ruleset=ruleset, http_port=http_port)


def _die_with_parent() -> None:
    """Have the kernel send SIGTERM to this process when its parent dies (Linux)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), "prctl(PR_SET_PDEATHSIG)")
    except (OSError, AttributeError) as exc:  # not Linux: workers may outlive a killed parent
        log.warning("workers will not stop if the supervisor is killed: %s", exc)


class PortInUseError(OSError):
    """Another server already listens on the port."""


def refuse_port_in_use(host: str, port: int, what: str = "gRPC") -> None:
    """PortInUseError when something holds host:port, even with SO_REUSEPORT.

    A socket without SO_REUSEPORT cannot bind a port another socket holds, with or
    without it; nba's own sockets all set it (so workers share the port), so without this
    check a second `nba serve` would quietly share the port with the first.
    """
    if port == 0:
        return
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        try:
            probe.bind((host, port))
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
            raise PortInUseError(
                exc.errno,
                f"{what} port {host}:{port} is already in use (another nba serve?); "
                "stop it or choose another port",
            ) from None


def serve(config: ServeConfig, workers: int, ruleset: RuleSet | None = None) -> int:
    """Serve with `workers` processes (1: in this process). Returns the exit status.

    `ruleset` is the set already parsed from `config.rules` (None: each worker reads it).
    Raises PortInUseError when a port is taken.
    """
    refuse_port_in_use(config.host, config.port)
    refuse_port_in_use(config.host, config.http_port, "HTTP")
    refuse_port_in_use(config.host, config.metrics_port, "metrics")
    with _metrics_served(config):
        if workers <= 1:
            serve_one(config, config.port, reuse_port=False, ready=None, ruleset=ruleset)
            return 0
        return _supervise(config, workers, ruleset)


@contextlib.contextmanager
def _metrics_served(config: ServeConfig) -> Iterator[None]:
    """/metrics on config.metrics_port for every process started inside (0: nothing)."""
    if not config.metrics_port:
        yield
        return
    from nba.server import metrics

    directory = metrics.enable()  # before any metric exists and before the workers fork
    try:
        port = metrics.serve_metrics(config.host, config.metrics_port)
    except OSError as exc:
        raise PortInUseError(
            exc.errno or errno.EADDRINUSE,
            f"metrics port {config.host}:{config.metrics_port}: {exc}",
        ) from None
    log.info("metrics on http://%s:%d/metrics", config.host, port)
    try:
        yield
    finally:
        metrics.clean_up(directory)


def _supervise(config: ServeConfig, workers: int, ruleset: RuleSet | None) -> int:
    with contextlib.ExitStack() as held:
        port = held.enter_context(reserved_port(config.host, config.port))
        http_port = (
            held.enter_context(reserved_port(config.host, config.http_port))
            if config.http_port
            else 0
        )
        return Supervisor(config, workers, port, ruleset, http_port).run()
