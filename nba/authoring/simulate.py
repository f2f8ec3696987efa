"""Decisions over a whole customer base: what would these rules do to our customers?

`simulate` decides every customer of a JSON-lines file (see nba.authoring.customers) and counts
what they were offered: top actions and channels overall, per lifecycle stage and per
segment, and how often nothing or only a fallback came back. Given a second rules
directory it decides every customer on both and counts what changed, which is the
question before shipping a rule edit ("who stops getting the cashback card?").

Each rule set decides on what it declares: profile attributes and consent channels a set
does not declare are dropped from the request before that set validates it, and counted
("312 customers had profile.tenure dropped on the base rules"). Without that, a new set that
adds an attribute makes the base set reject every customer generated for the new one, and
the comparison reads "0.0% changed". Requests still invalid on a set (a newly required
attribute, an unknown stage) are counted per set, and a customer whose request one set
decides and the other rejects is a changed decision: it is what shipping the set would do.

Why a pool of processes: durable_rules is neither picklable nor thread-parallel (each
engine takes one lock), so every worker process loads and compiles the rule set(s) once,
in its initializer, and then decides chunks of customers. Workers get the raw JSON lines
(parsing costs about as much as deciding, so it runs in parallel too) and send back one
small tuple per customer; all counting happens in the parent as chunks stream back
(imap_unordered), which is also what drives a live progress bar. Workers are started
by a fork server: forking the parent itself is unsafe once it runs threads (a progress
bar does), and spawning would re-import everything for each worker.
"""

from __future__ import annotations

import math
import multiprocessing as mp
import os
import signal
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from nba.authoring.customers import CustomerFileError, parse_line
from nba.errors import NbaError, RequestError
from nba.pipeline.decider import Decider
from nba.ruleset.loader import load_ruleset
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

NONE = "(none)"  # the "action" of a customer who got no recommendation
INVALID = "(invalid request)"  # the "action" of a customer whose request a rule set rejects
NO_SEGMENT = "(no segment)"
STARTUP_TIMEOUT = 300.0  # seconds for every worker to load and compile the rules
MAX_CHUNK = 250  # customers per task: big enough to amortise IPC, small for a live bar

Progress = Callable[[int, int], None]
Picks = tuple[tuple[str, str], ...]  # ranked (action id, channel)
# One customer on one rule set: (picks, fallback?, segments), or why the request is invalid.
Outcome = tuple[Picks, bool, tuple[str, ...]] | str
Dropped = tuple[str, ...]  # request keys a rule set does not declare, removed before deciding
# line number, lifecycle stage, then per rule set: its outcome and the keys it dropped
Row = tuple[int, str, tuple[tuple[Outcome, Dropped], ...]]
Chunk = list[tuple[int, str]]  # (line number, JSON text)
# rows, a line that is not a request (line, why), the worker's CPU seconds on the chunk
ChunkResult = tuple[list[Row], tuple[int, str] | None, float]


class SimulationError(NbaError, RuntimeError):
    """The simulation could not run: a worker failed to start or to decide."""


# ---------------------------------------------------------------------------- workers


@dataclass(slots=True)
class _WorkerState:
    deciders: list[Decider]
    error: str | None = None


_state: _WorkerState | None = None  # one per worker process, set by the initializer


def _init_worker(rules: Sequence[tuple[str, str]], ready: Any) -> None:
    """Load and compile each (directory, version) once for this process's lifetime.

    Errors are kept, not raised: a Pool replaces a worker whose initializer fails, forever.
    The first task then reports the error. A rule set that changed on disk since the
    parent loaded it is an error too: the report names the parent's version. Ctrl-C is
    the parent's to handle (it stops the pool), not every worker's to print.
    """
    global _state
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        deciders = []
        for directory, version in rules:
            ruleset = load_ruleset(directory, display_root=directory)
            if ruleset.version != version:
                raise SimulationError(f"{directory} changed while the workers started")
            deciders.append(Decider(ruleset))
        _state = _WorkerState(deciders)
    except Exception as exc:
        _state = _WorkerState([], f"{type(exc).__name__}: {exc}")
    ready.release()


def _decide_chunk(chunk: Chunk) -> ChunkResult:
    """Decide each line of a chunk on every rule set; stop at a line that is not a request."""
    if _state is None or _state.error is not None:
        reason = _state.error if _state is not None else "worker not initialised"
        raise SimulationError(f"a worker could not load the rules: {reason}")
    cpu = time.process_time()
    rows: list[Row] = []
    for line, text in chunk:
        try:
            message = parse_line(text)
        except ValueError as exc:
            return rows, (line, str(exc)), time.process_time() - cpu
        message.explain = False  # same picks and segments (a property test), cheaper program
        try:
            outcomes = tuple(_outcome(d, message) for d in _state.deciders)
        except Exception as exc:  # an engine failure is a bug; say which customer hit it
            raise SimulationError(f"line {line}: {type(exc).__name__}: {exc}") from None
        rows.append((line, message.lifecycle_stage, outcomes))
    return rows, None, time.process_time() - cpu


def _outcome(decider: Decider, message: pb.DecideRequest) -> tuple[Outcome, Dropped]:
    """The decision on what this set declares, as a compact tuple, and the keys dropped.

    The Decision is cheaper than a DecideResponse.
    """
    message, dropped = declared_only(
        message, decider.validator.attributes, decider.validator.channels
    )
    try:
        request = decider.validator.validate(message, time.time())
    except RequestError as exc:
        return str(exc), dropped
    decision = decider.decide_request(request)
    picks = tuple((p.action.id, p.channel) for p in decision.picks)
    fallback = bool(decision.picks) and decision.picks[0].fallback
    return (picks, fallback, tuple(decision.segments)), dropped


def declared_only(
    message: pb.DecideRequest, attributes: Collection[str], channels: Collection[str]
) -> tuple[pb.DecideRequest, Dropped]:
    """The request without profile attributes and consent channels the set does not declare.

    The message itself when it has none (the common case costs two scans of its keys);
    otherwise a trimmed copy, so that the other rule set still sees every key.
    """
    profile = [k for k in message.profile.fields if k not in attributes]
    consent = [k for k in message.consent if k not in channels]
    if not profile and not consent:
        return message, ()
    trimmed = pb.DecideRequest()
    trimmed.CopyFrom(message)
    for key in profile:
        del trimmed.profile.fields[key]
    for key in consent:
        del trimmed.consent[key]
    names = [f"profile.{k}" for k in sorted(profile)] + [f'consent["{k}"]' for k in sorted(consent)]
    return trimmed, tuple(names)


def _read_chunks(lines: Iterable[str], size: int) -> Iterator[Chunk]:
    chunk: Chunk = []
    for number, text in enumerate(lines, start=1):
        if not text.strip():
            continue
        chunk.append((number, text))
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


@contextmanager
def _in_process(rulesets: Sequence[RuleSet], chunks: Iterator[Chunk]) -> Iterator[Iterator[Any]]:
    """One worker: decide here, with no process to start and nothing to pickle."""
    global _state
    previous = _state
    _state = _WorkerState([Decider(r) for r in rulesets])
    try:
        yield (_decide_chunk(c) for c in chunks)
    finally:
        for decider in _state.deciders:
            decider.close()
        _state = previous


@contextmanager
def _in_pool(
    rules: Sequence[tuple[str, str]], chunks: Iterator[Chunk], workers: int
) -> Iterator[Iterator[Any]]:
    """A pool whose workers are all loaded before the first result is awaited."""
    ctx = _context()
    ready = ctx.Semaphore(0)
    pool = ctx.Pool(workers, initializer=_init_worker, initargs=(list(rules), ready))
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        for _ in range(workers):
            if not ready.acquire(timeout=max(0.0, deadline - time.monotonic())):
                raise SimulationError(f"workers did not load the rules in {STARTUP_TIMEOUT:.0f} s")
        yield pool.imap_unordered(_decide_chunk, chunks)
    except BaseException:
        pool.terminate()
        raise
    else:
        pool.close()
    finally:
        pool.join()


def _context() -> Any:
    """A fork server where there is one (safe with threads, cheap per worker), else spawn."""
    if "forkserver" in mp.get_all_start_methods():
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload([__name__])
        return ctx
    return mp.get_context("spawn")


# ---------------------------------------------------------------------------- counting


def _share(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def _ranked(counts: Counter[str]) -> dict[str, int]:
    """Most common first, ties by name: stable output for diffs and tests."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(slots=True)
class Breakdown:
    """What one group of customers (all, a stage, a segment) was offered first."""

    customers: int = 0
    no_recommendation: int = 0
    fallback: int = 0
    top_actions: Counter[str] = field(default_factory=Counter)
    top_channels: Counter[str] = field(default_factory=Counter)

    def add(self, picks: Picks, fallback: bool) -> None:
        self.customers += 1
        if not picks:
            self.no_recommendation += 1
            return
        self.fallback += fallback
        action, channel = picks[0]
        self.top_actions[action] += 1
        self.top_channels[channel] += 1

    def as_dict(self) -> dict[str, Any]:
        return {
            "customers": self.customers,
            "no_recommendation": self.no_recommendation,
            "fallback": self.fallback,
            "top_actions": _ranked(self.top_actions),
            "top_channels": _ranked(self.top_channels),
        }


@dataclass(slots=True)
class RuleSetResult:
    """Every customer's decision on one rule set, counted."""

    rules_dir: str
    version: str
    stages: tuple[str, ...]
    overall: Breakdown = field(default_factory=Breakdown)
    offered: Counter[str] = field(default_factory=Counter)  # recommended at any rank
    invalid: int = 0
    invalid_examples: list[str] = field(default_factory=list)  # "line N: field: why"
    dropped: int = 0  # customers with keys this set does not declare (removed, then decided)
    dropped_keys: Counter[str] = field(default_factory=Counter)  # "profile.x": customers
    by_stage: dict[str, Breakdown] = field(default_factory=dict)
    by_segment: dict[str, Breakdown] = field(default_factory=dict)

    @classmethod
    def of(cls, rules_dir: str, ruleset: RuleSet) -> RuleSetResult:
        return cls(rules_dir, ruleset.version, tuple(ruleset.stages))

    def add(self, line: int, stage: str, outcome: Outcome, dropped: Dropped = ()) -> None:
        if dropped:
            self.dropped += 1
            self.dropped_keys.update(dropped)
        if isinstance(outcome, str):
            self.invalid += 1
            if len(self.invalid_examples) < 5:
                self.invalid_examples.append(f"line {line}: {outcome}")
            return
        picks, fallback, segments = outcome
        self.overall.add(picks, fallback)
        self.offered.update({action for action, _ in picks})
        self.by_stage.setdefault(stage, Breakdown()).add(picks, fallback)
        for segment in segments or (NO_SEGMENT,):
            self.by_segment.setdefault(segment, Breakdown()).add(picks, fallback)

    def stage_rows(self) -> list[tuple[str, Breakdown]]:
        """In the rule set's lifecycle order."""
        return [(s, self.by_stage[s]) for s in self.stages if s in self.by_stage]

    def segment_rows(self) -> list[tuple[str, Breakdown]]:
        """Largest segment first."""
        return sorted(self.by_segment.items(), key=lambda kv: (-kv[1].customers, kv[0]))

    def as_dict(self) -> dict[str, Any]:
        return {
            "rules": self.rules_dir,
            "version": self.version,
            **self.overall.as_dict(),
            "recommended_at_any_rank": _ranked(self.offered),
            "invalid": self.invalid,
            "invalid_examples": self.invalid_examples,
            "dropped_undeclared_keys": {
                "customers": self.dropped,
                "keys": _ranked(self.dropped_keys),
            },
            "by_stage": {s: b.as_dict() for s, b in self.stage_rows()},
            "by_segment": {s: b.as_dict() for s, b in self.segment_rows()},
        }


def _top_of(outcome: Outcome) -> tuple[str, str]:
    """(action, channel) first in the outcome, NONE for no recommendation, INVALID for none."""
    if isinstance(outcome, str):
        return INVALID, INVALID
    picks = outcome[0]
    return picks[0] if picks else (NONE, NONE)


@dataclass(slots=True)
class Changes:
    """How decisions differ between the base rules (`--rules`) and the `against` rules.

    Counted over every customer. A decision "changed" when the ranked list of (action,
    channel) differs, one is a fallback and the other is not, or one set decides the request
    and the other rejects it (INVALID in the transitions): a client would see that change
    as INVALID_ARGUMENT. A request both sets reject is unchanged.
    """

    compared: int = 0
    changed: int = 0
    top_action_changed: int = 0
    top_channel_changed: int = 0
    lost_recommendation: int = 0  # had at least one, now none (valid on both)
    gained_recommendation: int = 0
    invalid_in_base: int = 0
    invalid_in_against: int = 0
    invalid_only_in_base: int = 0  # decided by `against` only
    invalid_only_in_against: int = 0  # decided by the base only
    top_actions: Counter[tuple[str, str]] = field(default_factory=Counter)  # (from, to)
    top_channels: Counter[tuple[str, str]] = field(default_factory=Counter)
    changed_by_stage: Counter[str] = field(default_factory=Counter)
    compared_by_stage: Counter[str] = field(default_factory=Counter)

    def add(self, stage: str, base: Outcome, other: Outcome) -> None:
        self.compared += 1
        self.compared_by_stage[stage] += 1
        base_invalid, other_invalid = isinstance(base, str), isinstance(other, str)
        self.invalid_in_base += base_invalid
        self.invalid_in_against += other_invalid
        self.invalid_only_in_base += base_invalid and not other_invalid
        self.invalid_only_in_against += other_invalid and not base_invalid
        if base_invalid and other_invalid:
            return
        if not isinstance(base, str) and not isinstance(other, str):
            (picks, fallback, _), (new_picks, new_fallback, _) = base, other
            if picks == new_picks and fallback == new_fallback:
                return
            self.lost_recommendation += bool(picks) and not new_picks
            self.gained_recommendation += bool(new_picks) and not picks
        self.changed += 1
        self.changed_by_stage[stage] += 1
        top, new_top = _top_of(base), _top_of(other)
        if top[0] != new_top[0]:
            self.top_action_changed += 1
            self.top_actions[top[0], new_top[0]] += 1
        if top[1] != new_top[1]:
            self.top_channel_changed += 1
            self.top_channels[top[1], new_top[1]] += 1

    def as_dict(self, stages: Sequence[str]) -> dict[str, Any]:
        def transitions(counts: Counter[tuple[str, str]]) -> list[dict[str, Any]]:
            ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
            return [{"from": a, "to": b, "customers": n} for (a, b), n in ranked]

        return {
            "compared": self.compared,
            "changed": self.changed,
            "changed_share": round(_share(self.changed, self.compared), 4),
            "top_action_changed": self.top_action_changed,
            "top_channel_changed": self.top_channel_changed,
            "lost_recommendation": self.lost_recommendation,
            "gained_recommendation": self.gained_recommendation,
            "invalid_in_base": self.invalid_in_base,
            "invalid_in_against": self.invalid_in_against,
            "invalid_only_in_base": self.invalid_only_in_base,
            "invalid_only_in_against": self.invalid_only_in_against,
            "top_action_transitions": transitions(self.top_actions),
            "top_channel_transitions": transitions(self.top_channels),
            "changed_by_stage": {
                s: {"customers": self.compared_by_stage[s], "changed": self.changed_by_stage[s]}
                for s in stages
                if self.compared_by_stage[s]
            },
        }


@dataclass(slots=True)
class SimulationReport:
    customers_path: str
    customers: int  # lines decided (valid or not)
    workers: int
    startup_seconds: float  # starting workers, loading and compiling the rules
    decide_seconds: float  # from every worker ready to the last decision counted
    worker_cpu_seconds: float  # CPU the workers spent deciding: the cost on an idle machine
    base: RuleSetResult
    against: RuleSetResult | None = None
    changes: Changes | None = None

    @property
    def decisions(self) -> int:
        return self.customers * (2 if self.against is not None else 1)

    @property
    def decisions_per_second(self) -> float:
        return self.decisions / self.decide_seconds if self.decide_seconds > 0 else 0.0

    @property
    def cpu_per_decision(self) -> float:
        return self.worker_cpu_seconds / self.decisions if self.decisions else 0.0

    def add(self, row: Row) -> None:
        line, stage, per_set = row
        self.customers += 1
        self.base.add(line, stage, *per_set[0])
        if self.against is not None and self.changes is not None:
            self.against.add(line, stage, *per_set[1])
            self.changes.add(stage, per_set[0][0], per_set[1][0])

    def as_dict(self) -> dict[str, Any]:
        """For --format json: plain counts, most common first."""
        out: dict[str, Any] = {
            "customers_file": self.customers_path,
            "customers": self.customers,
            "workers": self.workers,
            "decisions": self.decisions,
            "startup_seconds": round(self.startup_seconds, 3),
            "decide_seconds": round(self.decide_seconds, 3),
            "decisions_per_second": round(self.decisions_per_second, 1),
            "worker_cpu_seconds": round(self.worker_cpu_seconds, 3),
            "cpu_microseconds_per_decision": round(self.cpu_per_decision * 1e6, 1),
            "base": self.base.as_dict(),  # the --rules set; changes are from it to `against`
        }
        if self.against is not None and self.changes is not None:
            out["against"] = self.against.as_dict()
            out["changes"] = self.changes.as_dict(self.base.stages)
        return out


# ---------------------------------------------------------------------------- simulate


def count_customers(path: str | Path) -> int:
    """Non-blank lines: the total a progress bar counts to."""
    try:
        with open(path, encoding="utf-8") as lines:
            return sum(1 for text in lines if text.strip())
    except UnicodeDecodeError as exc:
        raise CustomerFileError(path, 0, f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise CustomerFileError(path, 0, exc.strerror or str(exc)) from None


def chunk_size(total: int, workers: int) -> int:
    """About 16 chunks per worker (a smooth bar, even load), at most MAX_CHUNK customers."""
    return max(1, min(MAX_CHUNK, math.ceil(total / (workers * 16))))


def simulate(
    rules_dir: str | Path,
    customers_path: str | Path,
    against_dir: str | Path | None = None,
    workers: int | None = None,
    progress: Progress | None = None,
) -> SimulationReport:
    """Decide every customer in a JSON-lines file on the rules (and on `against_dir`).

    workers: processes to decide in (None: one per core; 1: in this process).
    progress(done, total) is called once before deciding and after every chunk.
    Raises RuleSetError for broken rules, CustomerFileError (`path:line: why`) for a line
    that is not a DecideRequest, SimulationError when workers fail. A request that is
    well-formed but invalid for a rule set (unknown stage, attribute) is counted, not fatal.
    """
    started = time.perf_counter()
    dirs = [str(rules_dir)] + ([str(against_dir)] if against_dir is not None else [])
    rulesets = [load_ruleset(d, display_root=d) for d in dirs]
    total = count_customers(customers_path)
    wanted = max(1, workers if workers is not None else os.cpu_count() or 1)
    size = chunk_size(total, wanted)
    used = max(1, min(wanted, math.ceil(total / size)))
    report = SimulationReport(
        str(customers_path), 0, used, 0.0, 0.0, 0.0, RuleSetResult.of(dirs[0], rulesets[0])
    )
    if against_dir is not None:
        report.against = RuleSetResult.of(dirs[1], rulesets[1])
        report.changes = Changes()
    if progress is not None:
        progress(0, total)
    with open(customers_path, encoding="utf-8") as lines:
        chunks = _read_chunks(lines, size)
        if used == 1:
            runner = _in_process(rulesets, chunks)
        else:
            versions = [(d, r.version) for d, r in zip(dirs, rulesets, strict=True)]
            runner = _in_pool(versions, chunks, used)
        with runner as results:
            ready = time.perf_counter()
            for rows, bad_line, cpu in results:
                report.worker_cpu_seconds += cpu
                for row in rows:
                    report.add(row)
                if bad_line is not None:
                    raise CustomerFileError(customers_path, *bad_line)
                if progress is not None:
                    progress(report.customers, total)
            finished = time.perf_counter()
    report.startup_seconds = ready - started
    report.decide_seconds = finished - ready
    return report


# ---------------------------------------------------------------------------- render


def _pct(part: int, whole: int) -> str:
    return f"{100 * _share(part, whole):.1f}%"


def _top(counts: Counter[str], whole: int, n: int = 3) -> str:
    """'a 41%, b 9%, c 5%': the few most common, as shares of the group."""
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} {100 * _share(v, whole):.0f}%" for k, v in ranked)


def _table(title: str, *columns: str, text: Collection[str] = ()) -> Table:
    """Names (the first column, and `text`) on the left, numbers on the right."""
    table = Table(title=title, title_justify="left", title_style="bold", header_style="bold")
    for i, column in enumerate(columns):
        table.add_column(column, justify="left" if i == 0 or column in text else "right")
    return table


def render(report: SimulationReport, console: Console, top: int = 10) -> None:
    """Readable tables: outcomes, top actions and channels, stages, segments, changes."""
    base = report.base
    role = "the base rules " if report.against is not None else ""
    console.print(
        f"[bold]{report.customers:,} customers[/] from {report.customers_path} on "
        f"{role}{base.rules_dir} (version {base.version})\n"
        f"{report.workers} worker{'s' if report.workers != 1 else ''}: "
        f"{report.decisions:,} decisions in {report.decide_seconds:.1f} s "
        f"([bold]{report.decisions_per_second:,.0f} decisions/s[/]), "
        f"startup {report.startup_seconds:.1f} s, "
        f"{report.cpu_per_decision * 1e6:,.0f} µs of worker CPU per decision"
    )
    _render_result(base, console, top)
    if report.against is not None and report.changes is not None:
        console.print()
        console.rule(f"against {report.against.rules_dir}")
        _render_changes(report, console, top)


def _render_result(result: RuleSetResult, console: Console, top: int) -> None:
    overall = result.overall
    whole = overall.customers + result.invalid
    outcomes = _table("Outcomes", "outcome", "customers", "%")
    recommended = overall.customers - overall.no_recommendation
    for label, count in (
        ("recommendation", recommended),
        ("  of which a fallback", overall.fallback),
        ("no recommendation", overall.no_recommendation),
        ("invalid request", result.invalid),
    ):
        outcomes.add_row(label, f"{count:,}", _pct(count, whole))
    console.print(outcomes)
    for example in result.invalid_examples:
        console.print(f"  invalid: {example}", markup=False)
    _render_dropped(result, console)
    _render_actions(result, console, top)
    _render_breakdowns(result.stage_rows(), "By lifecycle stage", "stage", console, top)
    _render_breakdowns(
        result.segment_rows(),
        "By segment (a customer may be in several)",
        "segment",
        console,
        top,
    )


def _render_dropped(result: RuleSetResult, console: Console) -> None:
    if not result.dropped:
        return
    keys = ", ".join(f"{k} ({n:,})" for k, n in _ranked(result.dropped_keys).items())
    console.print(
        f"{result.dropped:,} customers had keys {result.rules_dir} does not declare,"
        f" dropped before deciding: {keys}",
        markup=False,
    )


def _render_actions(result: RuleSetResult, console: Console, top: int) -> None:
    overall = result.overall
    ranked = sorted(overall.top_actions.items(), key=lambda kv: (-kv[1], kv[0]))
    actions = _table(
        f"Top action ({min(top, len(ranked))} of {len(ranked)})",
        "action",
        "first",
        "%",
        "at any rank",
        "% ",
    )
    for action, count in ranked[:top]:
        offered = result.offered[action]
        actions.add_row(
            action,
            f"{count:,}",
            _pct(count, overall.customers),
            f"{offered:,}",
            _pct(offered, overall.customers),
        )
    channels = _table("Top channel", "channel", "customers", "%")
    for channel, count in sorted(overall.top_channels.items(), key=lambda kv: -kv[1])[:top]:
        channels.add_row(channel, f"{count:,}", _pct(count, overall.customers))
    console.print(actions)
    console.print(channels)


def _render_breakdowns(
    rows: list[tuple[str, Breakdown]], title: str, label: str, console: Console, top: int
) -> None:
    if not rows:
        return
    shown = rows[: max(top, 1) * 2]
    table = _table(
        title if len(shown) == len(rows) else f"{title}, largest {len(shown)} of {len(rows)}",
        label,
        "customers",
        "no rec",
        "fallback",
        "top actions",
        "top channels",
        text=("top actions", "top channels"),
    )
    for name, b in shown:
        table.add_row(
            name,
            f"{b.customers:,}",
            _pct(b.no_recommendation, b.customers),
            _pct(b.fallback, b.customers),
            _top(b.top_actions, b.customers),
            _top(b.top_channels, b.customers, 2),
        )
    console.print(table)


def _render_changes(report: SimulationReport, console: Console, top: int) -> None:
    changes, base, other = report.changes, report.base, report.against
    assert changes is not None and other is not None
    whole = changes.compared
    console.print(
        f"{other.rules_dir} (version {other.version}) against the base {base.rules_dir}"
        f" (version {base.version}): [bold]{changes.changed:,} of {whole:,} customers"
        f" ({_pct(changes.changed, whole)})[/] get a different decision\n"
        f"top action changed for {changes.top_action_changed:,} "
        f"({_pct(changes.top_action_changed, whole)}), top channel for "
        f"{changes.top_channel_changed:,} ({_pct(changes.top_channel_changed, whole)}); "
        f"lost every recommendation {changes.lost_recommendation:,}, "
        f"gained one {changes.gained_recommendation:,}"
    )
    console.print(
        f"invalid requests: {changes.invalid_in_base:,} on the base {base.rules_dir},"
        f" {changes.invalid_in_against:,} on {other.rules_dir}"
        f" (rejected by the base only: {changes.invalid_only_in_base:,};"
        f" by {other.rules_dir} only: {changes.invalid_only_in_against:,})",
        markup=False,
    )
    for example in other.invalid_examples:
        console.print(f"  invalid on {other.rules_dir}: {example}", markup=False)
    _render_dropped(other, console)
    for title, counts in (
        ("Top action changes", changes.top_actions),
        ("Top channel changes", changes.top_channels),
    ):
        if not counts:
            continue
        ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        table = _table(
            f"{title} ({min(top, len(ranked))} of {len(ranked)})",
            *("from", "to", "customers", "%"),
            text=("to",),
        )
        for (before, after), count in ranked[:top]:
            table.add_row(before, after, f"{count:,}", _pct(count, whole))
        console.print(table)
    if changes.changed:
        by_stage = _table(
            "Changed decisions by lifecycle stage", "stage", "customers", "changed", "%"
        )
        for stage in report.base.stages:
            n = changes.compared_by_stage[stage]
            if n:
                changed = changes.changed_by_stage[stage]
                by_stage.add_row(stage, f"{n:,}", f"{changed:,}", _pct(changed, n))
        console.print(by_stage)
