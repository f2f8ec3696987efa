"""CPU instructions per decision, counted by valgrind's callgrind.

    python -m bench.instructions [--calls 200,1200] [--history 20] [--explain [on|off]]
        [--learning [mean|thompson|context]] [--experiments]

Why instructions: absolute times on the shared 2-core VM this runs on move by ±30%
between runs, so a 5% gain or loss is invisible in microseconds. The number of
instructions a decision executes does not depend on the neighbours: it repeats to
~0.1%, which makes a before/after comparison of a change readable.

Method: the same workload script runs under `valgrind --tool=callgrind --cache-sim=no`
twice, with A and B decisions; (total_B - total_A) / (B - A) is the cost of one
decision, interpreter start-up, imports, rule-set loading and the warm-up cancelling
out. The child is made deterministic: PYTHONHASHSEED=0, seeded requests, and
`gc.collect(); gc.freeze()` after loading as `nba/reload.py` does (gc otherwise left as
production has it). Workloads: the bundled rule set over the example requests with 20
synthetic interactions each, explain off (the target path) and explain on; calls go
round-robin over the requests after one warm-up pass over each.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import importlib.util
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import REPO, RULES_DIR, Target, command_line, machine, show, table
from bench.workload import example_requests

DEFAULT_CALLS = (200, 1200)
QUICK_CALLS = (100, 600)
HISTORY = 20
# Where Decider lives, newest layout first; the loader stays in nba.ruleset.loader.
_LAYOUTS = (
    ("nba", "nba"),
    ("nba.pipeline.decider", "nba.ruleset.loader"),
    ("nba.decide", "nba.ruleset.loader"),
)
_TOTAL = re.compile(r"^(?:summary|totals):\s*(\d+)", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Workload:
    label: str
    explain: bool
    learning: str = "off"  # off: static scores; mean or thompson: adaptive (--learning)


WORKLOADS = {
    "off": Workload("+{h} interactions, explain off (target)", False),
    "on": Workload("+{h} interactions, explain on", True),
    "mean": Workload("+{h} interactions, learning (posterior mean)", False, "mean"),
    "thompson": Workload("+{h} interactions, learning (Thompson sampling)", False, "thompson"),
    "segment": Workload("+{h} interactions, Thompson, a Beta per segment", False, "segment"),
    "bayes": Workload("+{h} interactions, Thompson, naive Bayes on 3 predictors", False, "bayes"),
    "experiments": Workload(
        "+{h} interactions, a hold-out and two experiments", False, "experiments"
    ),
}
# --experiments: a universal control (static) and two experiments in their own layers,
# arms changing a lever and a weight: every decision hashes three times and routes.
EXPERIMENTS = """
universal_control: {share: 0.05, salt: uc, treatment: static}
experiments:
  - id: deposit
    salt: d
    control: champion
    arms:
      - {id: champion, share: 0.5}
      - {id: challenger, share: 0.5, levers: {q4_deposit_push: 2}}
  - id: growth
    salt: g
    control: champion
    arms:
      - {id: champion, share: 0.5}
      - {id: challenger, share: 0.5, weights: {growing_cross_sell: 2}}
"""
# learning.context for the contextual workloads (--learning context), and the bins their
# evidence is put in (every bin of the first predictor, the segment model's one feature).
CONTEXTS = {
    "segment": "  context: {segments: [affluent, digital_native, student_customer]}\n",
    "bayes": (
        "  context:\n    predictors:\n      - {attribute: age, bins: [25, 40, 60]}\n"
        "      - {attribute: employment}\n      - {segment: affluent}\n"
    ),
}


# ---------------------------------------------------------------------------- child


def _ours(name: str) -> bool:
    """Whether module `name` and its parents come from this checkout, checked before import.

    The venv's editable install maps `nba.*` names this checkout lacks onto another
    checkout's files: probing `nba.pipeline.decider` here must not import those.
    """
    parts = name.split(".")
    for i in range(1, len(parts) + 1):
        spec = importlib.util.find_spec(".".join(parts[:i]))
        if spec is None or not Path(spec.origin or "/").resolve().is_relative_to(REPO):
            return False
    return True


def _decider_and_loader() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """(Decider, load_ruleset) from whichever package layout this checkout has."""
    for decider_module, loader_module in _LAYOUTS:
        if not (_ours(decider_module) and _ours(loader_module)):
            continue
        decider = getattr(importlib.import_module(decider_module), "Decider", None)
        loader = getattr(importlib.import_module(loader_module), "load_ruleset", None)
        if decider is not None and loader is not None:
            return decider, loader
    raise SystemExit("no Decider/load_ruleset found in nba, nba.pipeline.decider, nba.decide")


def _check_origin() -> None:
    """Every nba module loaded so far is this checkout's (not the editable install's)."""
    for name, module in list(sys.modules.items()):
        file = getattr(module, "__file__", None)
        ours = file is None or Path(file).resolve().is_relative_to(REPO)
        if (name == "nba" or name.startswith("nba.")) and not ours:
            raise SystemExit(f"{name} imported from {file}, not from {REPO}")


def child(calls: int, history: int, explain: bool, learning: str = "off") -> None:
    """The workload callgrind counts: load, warm up once per request, decide `calls` times."""
    decider_class, load_ruleset = _decider_and_loader()
    ruleset = load_ruleset(RULES_DIR)
    if learning == "experiments":
        ruleset = _with_experiments(ruleset)
    if learning in ("off", "experiments"):
        decider = decider_class(ruleset, "durable")
    else:
        ruleset, model = _learning(ruleset, learning)
        decider = decider_class(ruleset, "durable", model=model)
    requests = example_requests(ruleset, history=history, explain=explain)
    gc.collect()
    gc.freeze()
    for msg in requests:
        decider.decide(msg)
    _check_origin()
    count = len(requests)
    for i in range(calls):
        decider.decide(requests[i % count])


def _with_experiments(ruleset: Any) -> Any:
    from nba.ruleset.loader import load_documents

    texts = [(p, (RULES_DIR / p).read_text()) for p in ruleset.files]
    return load_documents([*texts, ("experiments.yaml", EXPERIMENTS)])


def _learning(ruleset: Any, exploration: str) -> tuple[Any, Any]:
    """The bundled rules learning (with `exploration`), and a model with evidence for every
    learning action on every channel: 200 impressions and 10 clicks each."""
    from nba.pipeline.types import Interaction
    from nba.ruleset.loader import load_documents
    from nba.scoring.adaptive import ModelCache
    from nba.scoring.evidence import context_increments, increments
    from nba.store import open_store

    if exploration != "mean":
        texts = [(p, (RULES_DIR / p).read_text()) for p in ruleset.files]
        new = "exploration: thompson\n" + CONTEXTS.get(exploration, "")
        swapped = [(p, t.replace('exploration: "off"\n', new)) for p, t in texts]
        ruleset = load_documents(swapped)
    store = open_store("memory://", retention_seconds=86400)
    now = time.time()
    bins = _evidence_bins(ruleset)
    for action_id, how in ruleset.learning.items():
        for channel in ruleset.actions[action_id].channels:
            for outcome, n in ((1, 200), (2, 10)):
                item = Interaction(action_id, channel, outcome, now - 3600)
                added = increments(how, item) | context_increments(how, item, bins)
                store.add_to_counters({k: v * n for k, v in added.items()})
    model = ModelCache(store, refresh_seconds=3600)
    model.follow(ruleset)
    return ruleset, model


def _evidence_bins(ruleset: Any) -> list[tuple[str, str]]:
    """Bins of the context to put evidence in: each bin of every predictor."""
    context = ruleset.learning_context
    if context is None:
        return []
    if context.segments:
        return [(context.segment_feature, s) for s in context.segments]
    return [(p.feature, str(b)) for p in context.predictors for b in range(len(p.bin_labels))]


# ---------------------------------------------------------------------------- parent


def count(calls: int, history: int, workload: Workload, out_dir: Path) -> int:
    """Total instructions of one child run under callgrind."""
    explain = workload.explain
    out = out_dir / f"callgrind.{calls}.{int(explain)}.{workload.learning}.out"
    cmd = [
        "valgrind",
        "--tool=callgrind",
        "--cache-sim=no",
        f"--callgrind-out-file={out}",
        sys.executable,
        "-m",
        "bench.instructions",
        "--child",
        str(calls),
        "--history",
        str(history),
        *(["--explain", "on"] if explain else []),
        *(["--learning", workload.learning] if workload.learning != "off" else []),
    ]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(REPO)}
    done = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"callgrind run failed ({done.returncode}):\n{done.stderr[-3000:]}")
    match = _TOTAL.search(out.read_text())
    if match is None:
        raise SystemExit(f"no summary/totals line in {out}")
    return int(match.group(1))


def run(
    calls: tuple[int, int] = DEFAULT_CALLS,
    history: int = HISTORY,
    workloads: Sequence[str] = ("off", "on"),
    jobs: int = 2,
) -> list[Target]:
    """Measure and print the table; returns no targets (there is none on instructions)."""
    a, b = calls
    runs = [(w, n) for w in workloads for n in (a, b)]
    with (
        tempfile.TemporaryDirectory(prefix="nba-callgrind-") as tmp,
        ThreadPoolExecutor(max(1, jobs)) as pool,
    ):
        totals = list(pool.map(lambda r: count(r[1], history, WORKLOADS[r[0]], Path(tmp)), runs))
    by_run = dict(zip(runs, totals, strict=True))
    rows = [
        [
            WORKLOADS[w].label.format(h=history),
            a,
            b,
            f"{by_run[w, a]:,}",
            f"{by_run[w, b]:,}",
            f"{(by_run[w, b] - by_run[w, a]) / (b - a):,.0f}",
        ]
        for w in workloads
    ]
    headers = ["workload (bundled rules, examples)", "calls A", "calls B"]
    headers += ["instructions A", "instructions B", "instructions per decision"]
    show(table(headers, rows, "Instructions per decision (callgrind, (B - A) / (calls B - A))"))
    return []


def _calls(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected A,B (two integers), got {text!r}") from None
    if not 0 <= a < b:
        raise argparse.ArgumentTypeError(f"expected 0 <= A < B, got {text!r}")
    return a, b


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--calls",
        type=_calls,
        default=DEFAULT_CALLS,
        help="decisions in the two runs, A,B (default: 200,1200)",
    )
    parser.add_argument("--history", type=int, default=HISTORY, help="interactions added")
    parser.add_argument(
        "--explain",
        nargs="?",
        const="on",
        default="both",
        choices=("both", "off", "on"),
        help="workloads: both (default), off (target only) or on (--explain alone)",
    )
    parser.add_argument(
        "--learning",
        nargs="?",
        const="both",
        default="off",
        choices=("off", "both", "mean", "thompson", "context", "segment", "bayes", "experiments"),
        help="also count the adaptive scorer: posterior mean, Thompson sampling, or both;"
        " context: Thompson with a Beta per segment and with naive Bayes",
    )
    parser.add_argument(
        "--experiments", action="store_true", help="also count a decision in experiment arms"
    )
    parser.add_argument("--jobs", type=int, default=2, help="callgrind runs at a time")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        child(args.child, args.history, args.explain == "on", args.learning)
        return
    started = time.monotonic()
    workloads: tuple[str, ...] = ("off", "on") if args.explain == "both" else (args.explain,)
    if args.learning != "off":
        workloads += {"both": ("mean", "thompson"), "context": ("segment", "bayes")}.get(
            args.learning, (args.learning,)
        )
    if args.experiments:
        workloads += ("experiments",)
    run(args.calls, args.history, workloads, args.jobs)
    show(f"\nmachine: {machine()}")
    show(f"command: {command_line()}")
    show(f"took {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    main()
