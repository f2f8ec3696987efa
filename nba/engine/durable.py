"""The one adapter between nba and durable_rules.

durable_rules 2.0.28 is unmaintained and has sharp edges (see README, "durable_rules").
This module is the only place that touches it, and it guards every edge we know of:

- Its `Host` class costs ~26 µs per fired rule (Python closures, whole state as JSON,
  timer threads that fail 1 request in 20k under threads). We drive the C functions of
  `durable_rules_engine` directly: assert, then drain actions, ~1 µs per fired rule.
- A fact that matches more than 64 condition branches at once fails with error 303.
  Rules are split into rulesets ("chunks") whose simultaneously matchable branches stay
  under BRANCH_BUDGET; a fact with more than 255 properties fails (302), so each chunk's
  fact carries only the properties its rules read, under PROPERTY_BUDGET.
- The JSON parser rejects exponents (`1e-05` is error 204): floats are written in
  fixed-point, in rule definitions and in facts.
- Unary `$not` silently matches nothing and `$in` does not parse: negation is pushed
  down to the leaves at compile time and membership becomes `$or` of equalities.
- A condition without a type test can match the engine's own state object and loop:
  every rule tests `t == "f"`.
- Deleting a state with undrained actions corrupts the heap (a crash later, elsewhere);
  a state never deleted leaks until MemoryError. Each chunk keeps ONE working-memory
  state: a request asserts its fact, drains every action, then retracts the fact. After
  any engine error the state is drained and replaced.
- A rule with `$or` fires once per matching branch: fired rules are deduplicated.
- The C code never releases the GIL and the working memory is shared: evaluation is
  serialised by a lock (threads would not run it in parallel anyway; use processes).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from decimal import Decimal
from operator import attrgetter
from typing import Any, TypeGuard

import durable_rules_engine as engine

from nba.engine import EngagedChunk
from nba.engine.facts import FactBuilder
from nba.errors import EngineError, RuleError, RuleSetError
from nba.pipeline.types import DecisionRequest
from nba.ruleset.conditions import NEGATED
from nba.ruleset.resolve import AllOf, AnyOf, Cmp, Const, Expr, Not, SegmentTerm
from nba.ruleset.ruleset import Rule, RuleSet
from nba.scoring.static import StaticScorer

log = logging.getLogger(__name__)

BRANCH_BUDGET = 48  # measured limit is 64 matching branches per fact; keep a margin
MAX_EXPRESSIONS = 31  # error 113 when a rule's expression sequence reaches 32 (measured)
PROPERTY_BUDGET = 240  # measured limit is 255 properties per fact, sid/id/t included
FACT_TYPE = "f"
# A rule no request fact matches (requests assert t="f"). Closing a chunk asserts one
# such fact first: deleting a state whose asserts never matched anything segfaults.
CLOSING_TYPE = "z"
CLOSING_RULE = {"all": [{"m": {"t": CLOSING_TYPE}}]}

_OPERATOR = {"!=": "$neq", "<": "$lt", "<=": "$lte", ">": "$gt", ">=": "$gte"}
_names = itertools.count()


# ---------------------------------------------------------------------------- JSON text


def json_value(value: Any) -> str:
    """JSON text durable_rules can parse: no exponents, ever."""
    kind = type(value)
    if kind is str:
        if value.isidentifier() or not value:  # nothing to escape: 10x cheaper than dumps
            return f'"{value}"'
        return json.dumps(value, ensure_ascii=False)
    if kind is int:
        return str(value)
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        text = repr(value)
        if "e" in text or "E" in text:
            text = format(Decimal(text), "f")
            if "." not in text:
                text += ".0"  # stay a double: the engine reads a bare integer as int64
        return text
    return json.dumps(value, ensure_ascii=False)


def json_text(obj: Any) -> str:
    """A rule definition as JSON text, with json_value for every scalar."""
    if isinstance(obj, dict):
        inner = ",".join(f"{json_value(str(k))}:{json_text(v)}" for k, v in obj.items())
        return "{" + inner + "}"
    if isinstance(obj, list | tuple):
        return "[" + ",".join(json_text(v) for v in obj) + "]"
    return json_value(obj)


# ---------------------------------------------------------------------------- compile


@dataclass(frozen=True, slots=True)
class _Atom:
    """One test durable_rules can express: `key op value`, or `key` is absent."""

    key: str
    op: str  # == != < <= > >= or "nex"
    value: Any = None


_Nnf = _Atom | tuple[str, tuple[Any, ...]] | bool  # ("and"|"or", items) or a constant


def to_nnf(expr: Expr, negate: bool = False) -> _Nnf:
    """Negation pushed to the leaves, keeping the rule: a test on a missing value is false.

    So `not (age >= 18)` is `age < 18 or age is missing`; for values that are always
    present (lifecycle, counts, segment flags) the missing branch is left out.
    """
    if isinstance(expr, Const):
        return expr.value != negate
    if isinstance(expr, Not):
        return to_nnf(expr.item, not negate)
    if isinstance(expr, AllOf | AnyOf):
        is_and = isinstance(expr, AllOf) != negate
        items = tuple(to_nnf(i, negate) for i in expr.items)
        return _simplify("and" if is_and else "or", items)
    assert isinstance(expr, Cmp)
    op = NEGATED[expr.op] if negate else expr.op
    atom = _Atom(expr.term.key, op, expr.value)
    if negate and expr.term.may_be_missing:
        return ("or", (atom, _Atom(expr.term.key, "nex")))
    return atom


def _factor_missing(items: tuple[_Nnf, ...]) -> tuple[_Nnf, ...] | None:
    """`(x != a or x missing) and (x != b or x missing)` is `x missing or (x != a and x != b)`.

    `x not in [...]` on an optional attribute produces the first form: one missing test
    per value. Factored, it takes far fewer of the engine's expressions and branches.
    """
    pairs = []
    for item in items:
        if not (isinstance(item, tuple) and item[0] == "or" and len(item[1]) == 2):
            return None
        test, missing = item[1]
        if not (isinstance(missing, _Atom) and missing.op == "nex" and isinstance(test, _Atom)):
            return None
        pairs.append((test, missing))
    if len({m.key for _, m in pairs} | {t.key for t, _ in pairs}) != 1 or len(pairs) < 2:
        return None
    return (("or", (pairs[0][1], ("and", tuple(t for t, _ in pairs)))),)


def _simplify(kind: str, items: tuple[_Nnf, ...]) -> _Nnf:
    if kind == "and" and (factored := _factor_missing(items)) is not None:
        items = factored
    neutral, absorbing = (True, False) if kind == "and" else (False, True)
    kept: list[_Nnf] = []
    for item in items:
        if item is absorbing:
            return absorbing
        if item is neutral:
            continue
        if isinstance(item, tuple) and item[0] == kind:
            kept.extend(item[1])  # flatten (a and (b and c))
        else:
            kept.append(item)
    if not kept:
        return neutral
    return kept[0] if len(kept) == 1 else (kind, tuple(kept))


def to_durable(node: _Nnf, names: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The durable_rules JSON form; `names` maps term keys to the fact's property names."""
    if isinstance(node, _Atom):
        name = names[node.key] if names is not None else node.key
        if node.op == "nex":
            return {"$nex": {name: 1}}
        if node.op == "==":
            return {name: node.value}
        return {_OPERATOR[node.op]: {name: node.value}}
    assert isinstance(node, tuple)
    kind, items = node
    return {f"${kind}": [to_durable(i, names) for i in items]}


def branches(node: _Nnf) -> int:
    """How many branches of a condition can match one fact at once (and so fire)."""
    if isinstance(node, _Atom | bool):
        return 1
    kind, items = node
    if kind == "and":
        total = 1
        for item in items:
            total *= branches(item)
        return total
    if _exclusive(items):
        return 1
    return sum(branches(i) for i in items)


def _exclusive(items: tuple[_Nnf, ...]) -> bool:
    """Alternatives on one key that no single value can satisfy twice."""
    if not all(isinstance(i, _Atom) for i in items):
        return False
    atoms = [i for i in items if isinstance(i, _Atom)]  # all of them, checked above
    if len({a.key for a in atoms}) != 1:
        return False
    equal = [a.value for a in atoms if a.op == "=="]
    absent = [a for a in atoms if a.op == "nex"]
    other = [a for a in atoms if a.op not in ("==", "nex")]
    distinct = len(set(map(repr, equal))) == len(equal)
    return distinct and len(absent) <= 1 and (not other or (len(other) == 1 and not equal))


def expressions(node: _Nnf) -> int:
    """How many entries of durable_rules' expression sequence a condition takes.

    Each `$and`/`$or` takes two (its start and its end); tests take none (measured: 13
    alternatives of two-test conjunctions compile, 14 fail with error 113). A rule may use
    at most MAX_EXPRESSIONS.
    """
    if isinstance(node, _Atom | bool):
        return 0
    return 2 + sum(expressions(i) for i in node[1])


def keys_of(node: _Nnf) -> set[str]:
    if isinstance(node, _Atom):
        return {node.key}
    if isinstance(node, bool):
        return set()
    return set().union(*(keys_of(i) for i in node[1]))


@dataclass(frozen=True, slots=True)
class CompiledRule:
    rule: Rule
    condition: dict[str, Any]  # the durable_rules JSON form
    branches: int
    keys: frozenset[str]
    expressions: int = 0
    also: tuple[Rule, ...] = ()  # other rules of the stratum with the very same condition

    @property
    def rules(self) -> tuple[Rule, ...]:
        return (self.rule, *self.also)


def compile_rule(rule: Rule, names: Mapping[str, str] | None = None) -> CompiledRule | None:
    """The durable form of one rule, or None when its condition can never hold."""
    nnf = to_nnf(rule.expr)
    if nnf is False:
        return None
    test: dict[str, Any] = {"t": FACT_TYPE}
    if nnf is True:
        return CompiledRule(rule, test, 1, frozenset(), 0)
    # The type test joins a top-level conjunction rather than wrapping it: two fewer entries.
    parts = [to_durable(i, names) for i in nnf[1]] if _is_and(nnf) else [to_durable(nnf, names)]
    size = expressions(nnf) if _is_and(nnf) else 2 + expressions(nnf)
    return CompiledRule(
        rule, {"$and": [test, *parts]}, branches(nnf), frozenset(keys_of(nnf)), size
    )


def _is_and(node: _Nnf) -> TypeGuard[tuple[str, tuple[Any, ...]]]:
    return isinstance(node, tuple) and node[0] == "and"


# ---------------------------------------------------------------------------- chunks


class Chunk:
    """One durable_rules ruleset holding some rules of one stratum, and its working state."""

    def __init__(self, rules: list[CompiledRule], label: str) -> None:
        self.rules = {f"r{c.rule.index}": c.rules for c in rules}
        self.keys = tuple(sorted(set().union(*(c.keys for c in rules))))
        definition = {
            name: {"all": [{"m": c.condition}]} for name, c in zip(self.rules, rules, strict=True)
        }
        definition["closing"] = CLOSING_RULE
        self.handle = engine.create_ruleset(f"{label}_{next(_names)}", json_text(definition))
        self._use_new_state()

    def _use_new_state(self) -> None:
        self.sid = f"w{next(_names)}"
        self._head = f'{{"sid":"{self.sid}","id":"f","t":"{FACT_TYPE}"'  # a fact, less its body

    def fire(self, body: str) -> list[Rule]:
        """Assert one fact (its properties as JSON text), collect fired rules, retract it."""
        fact = self._head + body + "}"
        handle = self.handle
        try:
            code, state = engine.assert_fact(handle, fact)
            if code == 1:  # matched no rule: nothing stored, nothing to retract
                return []
            if code != 0:
                raise EngineError(f"durable_rules refused a fact (code {code})")
            fired = self._drain(state)
            engine.retract_fact(handle, fact)
            self._drain(state)  # retraction queues nothing today; stay safe if it does
        except (engine.error, EngineError) as exc:
            self._reset()
            raise EngineError(f"durable_rules failed: {exc}") from exc
        rules = self.rules
        return [rule for name in dict.fromkeys(fired) for rule in rules[name]]

    def _drain(self, state: int) -> list[str]:
        """The names of the rules whose actions the engine queued, in its order."""
        fired: list[str] = []
        handle = self.handle
        result = engine.start_action_for_state(handle, state)
        while result is not None:
            messages = result[1] if type(result) is tuple else result
            fired.append(messages[2 : messages.index('"', 2)])  # '{"r12": {...}}'
            result = engine.complete_and_start_action(handle, state)
        return fired

    def _reset(self) -> None:
        """Abandon the working state after an engine error and start a fresh one.

        The old state may hold undrained actions, and deleting such a state corrupts the
        heap, so it is left in place: one leaked state per engine error, which is a bug
        to report anyway, is the safe trade.
        """
        log.error("durable_rules state %s abandoned after an engine error", self.sid)
        self._use_new_state()

    def close(self) -> None:
        """Free the ruleset: its working state first, then the ruleset itself.

        The ruleset's own free releases the state pool but not each state's internals, so
        the working state is deleted before it. Deleting a state is only safe once it has
        matched something (and is drained): a closing fact that the closing rule matches
        makes sure of that. An abandoned state is left alone (it may hold undrained
        actions); its internals leak, which is the safe trade after an engine error.
        """
        closing = f'{{"sid":"{self.sid}","id":"z","t":"{CLOSING_TYPE}"}}'
        code, state = engine.assert_fact(self.handle, closing)
        if code == 0:
            self._drain(state)
            engine.retract_fact(self.handle, closing)
            self._drain(state)
            engine.delete_state(self.handle, self.sid)
        engine.delete_ruleset(self.handle)


def _shared(compiled: list[CompiledRule]) -> list[CompiledRule]:
    """One durable rule per distinct condition: rules written alike fire once, together.

    Rule sets repeat conditions (`profile.age >= 18` gates many actions): the bank set's
    213 rules have 149 distinct conditions, and each firing costs ~1 us.
    """
    by_text: dict[str, CompiledRule] = {}
    for item in compiled:
        text = json_text(item.condition)
        first = by_text.get(text)
        if first is None:
            by_text[text] = item
        else:
            by_text[text] = replace(first, also=(*first.also, item.rule))
    return list(by_text.values())


def plan_chunks(compiled: list[CompiledRule]) -> list[list[CompiledRule]]:
    """Greedy split into chunks within the branch and property budgets, in rule order."""
    chunks: list[list[CompiledRule]] = []
    current: list[CompiledRule] = []
    used_branches = 0
    keys: set[str] = set()
    for item in compiled:
        fits = (
            used_branches + item.branches <= BRANCH_BUDGET
            and len(keys | item.keys) <= PROPERTY_BUDGET
        )
        if current and not fits:
            chunks.append(current)
            current, used_branches, keys = [], 0, set()
        current.append(item)
        used_branches += item.branches
        keys |= item.keys
    if current:
        chunks.append(current)
    return chunks


def _too_complex(compiled: Iterable[CompiledRule]) -> list[RuleError]:
    errors = []
    for item in compiled:
        if item.expressions > MAX_EXPRESSIONS:
            errors.append(
                RuleError(
                    "too-complex",
                    f"condition of rule '{item.rule.id}' needs {item.expressions} engine"
                    f" expressions; expected at most {MAX_EXPRESSIONS} (split it into several"
                    " rules, or use fewer alternatives per condition)",
                    item.rule.location,
                )
            )
        elif item.branches > BRANCH_BUDGET:
            errors.append(
                RuleError(
                    "too-complex",
                    f"condition of rule '{item.rule.id}' has {item.branches} alternative branches"
                    f" that can hold at once; expected at most {BRANCH_BUDGET}"
                    " (split it into several rules, or use `in [...]` on one attribute)",
                    item.rule.location,
                )
            )
        elif len(item.keys) > PROPERTY_BUDGET:
            errors.append(
                RuleError(
                    "too-complex",
                    f"condition of rule '{item.rule.id}' reads {len(item.keys)} values;"
                    f" expected at most {PROPERTY_BUDGET}",
                    item.rule.location,
                )
            )
    return errors


# ---------------------------------------------------------------------------- engine


class DurableEngine:
    """Evaluates a rule set on durable_rules: compiled once, then one fact per chunk.

    Two programs share the segment strata: the detailed one evaluates every engagement
    rule (for explanations); the fast one evaluates each action's engagement rules as a
    single conjunction, so a request fires one rule per qualifying action instead of one
    per rule (~1 µs each). An action whose conjunction is too large for one durable rule
    keeps its separate rules in the fast program and is marked engaged afterwards.
    """

    name = "durable_rules"

    def __init__(self, ruleset: RuleSet, facts: FactBuilder | None = None) -> None:
        self.ruleset = ruleset
        self.facts = facts or FactBuilder(ruleset)
        # Facts name properties k0, k1...: durable_rules parses and hashes every name of
        # every fact, and the readable term keys are 3-4x longer (20 us on a big chunk).
        names = {key: f"k{i}" for i, key in enumerate(sorted(ruleset.terms))}
        self._names = names
        self._prefix = {key: f',"{name}":' for key, name in names.items()}
        self._compiled: dict[int, CompiledRule | None] = {}
        self._split: dict[str, tuple[int, ...]] = {}  # fast program: actions kept as rules
        errors = _too_complex(c for r in ruleset.rules if (c := self._compile(r.index)))
        if errors:
            raise RuleSetError(errors)
        self._label = f"nba_{ruleset.version}"
        self._chunks: dict[tuple[int, ...], list[Chunk]] = {}
        self.detailed = [self._stratum(s) for s in ruleset.strata]
        self.fast = [self._stratum(self._fast_indices(s)) for s in ruleset.fast_strata]
        self._ranked_program()
        self.never = [r for r in ruleset.all_rules if self._compiled.get(r.index, 0) is None]
        self._defaults = _defaults(ruleset, self._prefix)
        # segment -> (its key, its fragment when it holds), for the segments rules read
        self._segment_true = {
            segment: (key, self._prefix[key] + "true")
            for segment in ruleset.segments
            if (key := SegmentTerm(segment).key) in self._prefix
        }
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Free every durable_rules ruleset of this engine (~1 MB per 40 rules).

        Only when no request can use the engine any more: handles are reused, so a late
        request on a closed engine could assert into another engine's ruleset.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
            for chunks in self._chunks.values():
                for chunk in chunks:
                    chunk.close()
            for chunk in self._ranked_chunks:
                chunk.close()

    def __del__(self) -> None:
        # Unreachable, so no request can be using it: free its rulesets. Tools and tests
        # build many engines; without this each would keep ~1 MB per chunk until exit.
        with contextlib.suppress(Exception):  # never raise from a finaliser (e.g. at exit)
            self.close()

    def _ranked_program(self) -> None:
        """The fast program laid out for top-k evaluation (see ranked()).

        Everything but the engaged rules runs first (segments, suppressions, weights);
        then the engaged rules, in chunks that each list their actions per (group,
        purpose): with the request's weights and suppressions known, and a scorer's
        bound per action, that bounds what each chunk can still add.
        """
        final = self._fast_indices(self.ruleset.fast_strata[-1]) if self.ruleset.fast_strata else ()
        rules = self.ruleset.all_rules
        engaged = [i for i in final if rules[i].kind == "engaged"]
        others = tuple(i for i in final if rules[i].kind != "engaged")
        # Likely winners first, by the static bound. This only decides which rules share a
        # chunk; top-k stays exact whatever the layout, since it bounds chunks per request
        # with the decider's own scorer.
        bound = StaticScorer(self.ruleset).upper_bound
        actions = self.ruleset.actions
        engaged.sort(key=lambda i: (-bound(actions[rules[i].action or ""]), i))
        self.before_ranked = [*self.fast[:-1], self._stratum(others)] if final else self.fast
        compiled = _shared([c for i in engaged if (c := self._compile(i)) is not None])
        self._ranked_chunks: list[Chunk] = []
        self.engaged_chunks: list[EngagedChunk] = []
        for part in plan_chunks(compiled):
            ids = {r.action or "" for item in part for r in item.rules}
            classes: dict[tuple[str, str], set[str]] = {}
            for action_id in ids:
                action = actions[action_id]
                classes.setdefault((action.group, str(action.purpose)), set()).add(action_id)
            self._ranked_chunks.append(Chunk(part, self._label))
            self.engaged_chunks.append(
                EngagedChunk({k: frozenset(v) for k, v in classes.items()}, frozenset(ids))
            )

    def _compile(self, index: int) -> CompiledRule | None:
        if index not in self._compiled:
            self._compiled[index] = compile_rule(self.ruleset.all_rules[index], self._names)
        return self._compiled[index]

    def _fast_indices(self, stratum: tuple[int, ...]) -> tuple[int, ...]:
        out: list[int] = []
        for index in stratum:
            rule = self.ruleset.all_rules[index]
            item = self._compile(index)
            if rule.kind == "engaged" and item is not None and _too_complex([item]):
                assert rule.action is not None
                parts = tuple(r.index for r in self.ruleset.engagement[rule.action])
                self._split[rule.action] = parts
                out.extend(parts)
            else:
                out.append(index)
        return tuple(out)

    def _stratum(self, indices: tuple[int, ...]) -> list[Chunk]:
        if indices not in self._chunks:
            compiled = _shared([c for i in indices if (c := self._compile(i)) is not None])
            self._chunks[indices] = [Chunk(part, self._label) for part in plan_chunks(compiled)]
        return self._chunks[indices]

    @property
    def chunk_count(self) -> int:
        return sum(len(chunks) for chunks in self._chunks.values())

    def fire(self, request: DecisionRequest, detailed: bool = True) -> list[Rule]:
        """Every rule whose condition holds, segments first (engaged rules unless detailed)."""
        props = self.facts.build(request)
        fired = self.fire_props(props, self.detailed if detailed else self.fast)
        if not detailed and self._split:
            self._mark_split(fired)
        return fired

    def _mark_split(self, fired: list[Rule]) -> None:
        """Replace the separate rules of a split action by its "engaged" rule, when all hold.

        The fast program's contract is one "engaged" rule per qualifying action; its parts
        were only a way to evaluate a conjunction too large for one durable rule.
        """
        fired_ids = {r.index for r in fired}
        parts = {i for indices in self._split.values() for i in indices}
        engaged = [
            self.ruleset.engaged[action]
            for action, indices in self._split.items()
            if all(i in fired_ids for i in indices)
        ]
        fired[:] = [r for r in fired if r.index not in parts] + engaged

    def ranked(self, request: DecisionRequest) -> _DurableRun:
        """The fast program, its engaged chunks fired by the caller (top-k, see protocol)."""
        return _DurableRun(self, self._fragments(self.facts.build(request)))

    def fire_props(self, props: dict[str, Any], program: list[list[Chunk]]) -> list[Rule]:
        fragments = self._fragments(props)
        with self._lock:
            self._check_open()
            return self._run(program, fragments)

    def _fragments(self, props: dict[str, Any]) -> dict[str, str]:
        """JSON fragments for every key any chunk reads: the defaults, then this request's."""
        fragments = self._defaults.copy()
        prefix = self._prefix
        for key, value in props.items():
            fragments[key] = prefix[key] + json_value(value)
        return fragments

    def _check_open(self) -> None:
        if self._closed:
            raise EngineError("this rule engine was closed (its rule set was replaced)")

    @staticmethod
    def _body(chunk: Chunk, fragments: dict[str, str]) -> str:
        return "".join(map(fragments.__getitem__, chunk.keys))

    def _run(self, program: list[list[Chunk]], fragments: dict[str, str]) -> list[Rule]:
        """Strata in order; a stratum's segments become facts for the next ones."""
        fired: list[Rule] = []
        segment_true, body = self._segment_true, self._body
        for stratum in program:
            in_stratum: list[Rule] = []
            for chunk in stratum:
                in_stratum += chunk.fire(body(chunk, fragments))
            if not in_stratum:
                continue
            in_stratum.sort(key=attrgetter("index"))  # rule order, as the reference gives it
            fired += in_stratum
            for rule in in_stratum:
                if rule.segment is not None and rule.segment in segment_true:
                    key, fragment = segment_true[rule.segment]
                    fragments[key] = fragment
        return fired


class _DurableRun:
    """A RankedRun on the durable engine: holds the engine's lock from entry to exit.

    A class rather than a generator context manager: it is on every decision's path.
    """

    __slots__ = ("_engine", "_fragments", "fired")

    def __init__(self, engine: DurableEngine, fragments: dict[str, str]) -> None:
        self._engine = engine
        self._fragments = fragments
        self.fired: list[Rule] = []

    def __enter__(self) -> _DurableRun:
        engine = self._engine
        engine._lock.acquire()
        try:
            engine._check_open()
            self.fired = engine._run(engine.before_ranked, self._fragments)
            if engine._split:  # split actions' parts all run before the chunks
                engine._mark_split(self.fired)
        except BaseException:
            engine._lock.release()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._engine._lock.release()

    def fire_chunk(self, index: int) -> None:
        chunk = self._engine._ranked_chunks[index]
        self.fired.extend(chunk.fire(DurableEngine._body(chunk, self._fragments)))


def _defaults(ruleset: RuleSet, prefix: Mapping[str, str]) -> dict[str, str]:
    """The fragment of every key when a request has no value for it.

    Counts read 0 and segment flags false; a missing profile attribute is left out of
    the fact (""), which is what makes a test on it false.
    """
    defaults = {}
    for key, term in ruleset.terms.items():
        if isinstance(term, SegmentTerm):
            defaults[key] = prefix[key] + "false"
        elif not term.may_be_missing and term.value_type == "number":
            defaults[key] = prefix[key] + "0"
        else:
            defaults[key] = ""
    return defaults
