"""The solver under the static checks: conditions in NNF, value sets, and a search.

How conditions are reasoned about. Each condition is put in negation normal form, with
segments replaced by their definitions (a segment is exactly its condition, evaluated on the
same facts, so this is exact). A literal is a comparison of one term with a value, or its
negation. Following the engine, a comparison on a profile attribute the request did not send
is false and its negation true: `not (x > 5)` holds when x is missing, `x != 5` does not. Each
term has a domain: numbers are unions of intervals (open or closed ends) within the schema's
min/max, whole for int attributes and counts (counts are >= 0); strings are finite sets
(enum values, lifecycle stages, declared channels plus "outbound" for touchpoint.channel) or
"anything but these"; booleans; plus whether the term may be missing (optional profile
attributes; all the membership flags of one set attribute are missing together). A
conjunction is impossible when some term's domain becomes empty. A disjunction is explored
branch by branch (the DNF, enumerated lazily, pruned as soon as a branch is impossible, with
unit propagation); the search gives up after MAX_ALTERNATIVES branches and then reports
nothing. Different terms are treated as independent (e.g. `dismissals(7d)` and
`dismissals(30d)`), which can only make a condition look satisfiable when it is not, never
the reverse: every finding rests on "impossible", so none is a false alarm from that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from nba.ruleset.conditions import NEGATED
from nba.ruleset.model import AttributeSpec, AttributeType
from nba.ruleset.resolve import (
    BOOL,
    NUMBER,
    AllOf,
    AnyOf,
    Cmp,
    Const,
    CountTerm,
    Expr,
    LifecycleTerm,
    Not,
    ProfileTerm,
    SegmentTerm,
    SetTerm,
    Term,
    TouchpointTerm,
)
from nba.ruleset.ruleset import Rule, RuleSet

MAX_ALTERNATIVES = 256
"""Branches one question may explore before the search gives up (and reports nothing)."""

OUTBOUND = "outbound"
CHANNEL = TouchpointTerm("channel")
PLACEMENT = TouchpointTerm("placement")


# ---------------------------------------------------------------------------- literals


@dataclass(frozen=True, slots=True)
class Lit:
    """`term op value`, or with `negated` its negation (which a missing attribute meets)."""

    term: Term
    op: str
    value: bool | int | float | str
    negated: bool = False
    via: str = ""  # the segment whose definition this literal comes from

    def __str__(self) -> str:
        term, op, value = self.term, self.op, self.value
        plain_flag = term.value_type == BOOL and op == "==" and value is True
        text = str(term) if plain_flag else str(Cmp(op, term, value))
        if self.negated:
            text = (
                f"not {text}" if plain_flag and not isinstance(term, SetTerm) else f"not ({text})"
            )
        return text


@dataclass(frozen=True, slots=True)
class All:
    items: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Any_:  # noqa: N801 - "Any" would shadow typing's name for readers
    items: tuple[Node, ...]


Node = Lit | All | Any_ | bool


def conj(items: Iterable[Node]) -> Node:
    """A conjunction, flattened; True and False absorbed."""
    return _flatten(items, All, neutral=True)


def disj(items: Iterable[Node]) -> Node:
    """A disjunction, flattened; True and False absorbed."""
    return _flatten(items, Any_, neutral=False)


def _flatten(items: Iterable[Node], kind: type[All] | type[Any_], neutral: bool) -> Node:
    flat: list[Node] = []
    for item in items:
        if item is (not neutral):
            return not neutral  # False in a conjunction, True in a disjunction
        if item is neutral:
            continue
        if isinstance(item, All | Any_) and isinstance(item, kind):
            flat.extend(item.items)
        else:
            flat.append(item)
    return neutral if not flat else flat[0] if len(flat) == 1 else kind(tuple(flat))


class Normalizer:
    """Resolved conditions to negation normal form, with segments inlined."""

    def __init__(self, segments: Mapping[str, Expr]) -> None:
        self.segments = segments
        self.cache: dict[tuple[str, bool], Node] = {}

    def node(self, expr: Expr, positive: bool = True, via: str = "") -> Node:
        if isinstance(expr, Const):
            return expr.value == positive
        if isinstance(expr, Not):
            return self.node(expr.item, not positive, via)
        if isinstance(expr, AllOf | AnyOf):
            items = (self.node(i, positive, via) for i in expr.items)
            return conj(items) if isinstance(expr, AllOf) == positive else disj(items)
        if isinstance(expr.term, SegmentTerm):
            holds = expr.value if expr.op == "==" else not expr.value
            return self.segment(expr.term.segment, holds == positive)
        return Lit(expr.term, expr.op, expr.value, not positive, via)

    def segment(self, name: str, positive: bool) -> Node:
        key = (name, positive)
        if key not in self.cache:
            self.cache[key] = self.node(self.segments[name], positive, name)
        return self.cache[key]


# ---------------------------------------------------------------------------- value sets

Span = tuple[float, bool, float, bool]  # low, low included, high, high included


@dataclass(frozen=True, slots=True)
class Numbers:
    spans: tuple[Span, ...]
    whole: bool = False  # only integers

    @staticmethod
    def of(op: str, v: float) -> Numbers:
        inf = math.inf
        spans: dict[str, tuple[Span, ...]] = {
            "==": ((v, True, v, True),),
            "!=": ((-inf, False, v, False), (v, False, inf, False)),
            "<": ((-inf, False, v, False),),
            "<=": ((-inf, False, v, True),),
            ">": ((v, False, inf, False),),
            ">=": ((v, True, inf, False),),
        }
        return Numbers(spans[op])

    def meet(self, other: Numbers) -> Numbers:
        spans = tuple(s for a in self.spans for b in other.spans if (s := _overlap(a, b)))
        return Numbers(spans, self.whole or other.whole)

    def empty(self) -> bool:
        return not any(_has_value(s, self.whole) for s in self.spans)


def _overlap(a: Span, b: Span) -> Span | None:
    low, low_in = max((a[0], not a[1]), (b[0], not b[1]))  # at equal ends, open wins
    high, high_in = min((a[2], a[3]), (b[2], b[3]))
    low_in = not low_in
    if low < high or (low == high and low_in and high_in):
        return (low, low_in, high, high_in)
    return None


def _has_value(span: Span, whole: bool) -> bool:
    low, low_in, high, high_in = span
    if not whole or math.isinf(low) or math.isinf(high):
        return True
    first = math.ceil(low)
    if first == low and not low_in:
        first += 1
    return first < high or (first == high and high_in)


@dataclass(frozen=True, slots=True)
class Strings:
    include: frozenset[str] | None  # None: any string ...
    exclude: frozenset[str] = frozenset()  # ... but these

    @staticmethod
    def of(op: str, v: str) -> Strings:
        return Strings(frozenset([v])) if op == "==" else Strings(None, frozenset([v]))

    def meet(self, other: Strings) -> Strings:
        if self.include is None and other.include is None:
            return Strings(None, self.exclude | other.exclude)
        sets = [s for s in (self.include, other.include) if s is not None]
        include = frozenset.intersection(*sets) - self.exclude - other.exclude
        return Strings(include)

    def empty(self) -> bool:
        return self.include is not None and not self.include


@dataclass(frozen=True, slots=True)
class Bools:
    values: frozenset[bool] = frozenset([True, False])

    @staticmethod
    def of(op: str, v: bool) -> Bools:
        return Bools(frozenset([v if op == "==" else not v]))

    def meet(self, other: Bools) -> Bools:
        return Bools(self.values & other.values)

    def empty(self) -> bool:
        return not self.values


Values = Numbers | Strings | Bools


def literal_values(lit: Lit) -> Values:
    """The values of its term that meet the literal when the term is present."""
    op = NEGATED[lit.op] if lit.negated else lit.op
    if lit.term.value_type == NUMBER:
        assert isinstance(lit.value, int | float)
        return Numbers.of(op, lit.value)
    if lit.term.value_type == BOOL:
        assert isinstance(lit.value, bool)
        return Bools.of(op, lit.value)
    assert isinstance(lit.value, str)
    return Strings.of(op, lit.value)


def _meet(a: Values, b: Values) -> Values:
    return a.meet(b)  # type: ignore[arg-type]  # a term's literals share one kind


# ---------------------------------------------------------------------------- domains


class Schema:
    """What the rule set declares each term may be: the domain a literal narrows."""

    def __init__(self, ruleset: RuleSet) -> None:
        self.attributes = ruleset.attributes
        self.stages = frozenset(ruleset.stages)
        self.channels = frozenset([*ruleset.channels, OUTBOUND])  # "" becomes "outbound"

    def values(self, term: Term, declared: bool = True) -> Values:
        """The term's possible values; with `declared` False, its type's alone."""
        if term.value_type == BOOL:
            return Bools()
        if term.value_type == NUMBER:
            return (
                self._numbers(term) if declared else Numbers(((-math.inf, False, math.inf, False),))
            )
        if not declared:
            return Strings(None)
        if isinstance(term, ProfileTerm) and term.values:
            return Strings(frozenset(term.values))
        if isinstance(term, LifecycleTerm):
            return Strings(self.stages)
        if isinstance(term, TouchpointTerm) and term.field == "channel":
            return Strings(self.channels)
        return Strings(None)

    def _numbers(self, term: Term) -> Numbers:
        if isinstance(term, CountTerm):
            return Numbers(((0, True, math.inf, False),), whole=True)
        assert isinstance(term, ProfileTerm)
        spec = self.attributes[term.attr]
        low = -math.inf if spec.min is None else spec.min
        high = math.inf if spec.max is None else spec.max
        span = (low, spec.min is not None, high, spec.max is not None)
        return Numbers((span,), whole=spec.type == AttributeType.INT)

    def may_be_missing(self, term: Term, declared: bool = True) -> bool:
        if not isinstance(term, ProfileTerm | SetTerm):
            return False
        return not (declared and self.attributes[term.attr].required)

    def describe(self, term: Term) -> str:
        """What the schema says about a term, for messages."""
        if isinstance(term, ProfileTerm | SetTerm):
            return f"profile.{term.attr} is declared {_spec_text(self.attributes[term.attr])}"
        if isinstance(term, LifecycleTerm):
            return f"lifecycle is one of the declared stages ({quoted(sorted(self.stages))})"
        if isinstance(term, TouchpointTerm) and term.field == "channel":
            return (
                'touchpoint.channel is a declared channel or "outbound"'
                ' (an unset channel is "outbound", never "")'
            )
        if isinstance(term, CountTerm):
            return "a count is a whole number, 0 or more"
        return f"{term} is {term.value_type}"  # pragma: no cover - other terms are unbounded


def group_of(term: Term) -> str:
    """Terms that are missing together: all membership flags of one set attribute."""
    if isinstance(term, ProfileTerm | SetTerm):
        return f"profile:{term.attr}"
    return term.key


def _spec_text(spec: AttributeSpec) -> str:
    parts = [str(spec.type)]
    if spec.values and spec.type == AttributeType.ENUM:
        parts.append(f"one of {quoted(spec.values)}")
    if spec.min is not None:
        parts.append(f"min {spec.min}")
    if spec.max is not None:
        parts.append(f"max {spec.max}")
    parts.append("required" if spec.required else "optional")
    return "{" + ", ".join(parts) + "}"


def quoted(values: Iterable[str]) -> str:
    return ", ".join(f'"{v}"' for v in values)


# ---------------------------------------------------------------------------- the solver


@dataclass(frozen=True, slots=True)
class Conflict:
    """Why one branch is impossible: literals on one term that leave it no value."""

    term: Term | None  # None: the condition is literally `false`
    lits: tuple[Lit, ...]


@dataclass(slots=True)
class Store:
    """The constraints of one branch: each term's remaining values and literals."""

    values: dict[str, Values] = field(default_factory=dict)
    missing: dict[str, bool] = field(default_factory=dict)  # group -> may still be missing
    members: dict[str, tuple[str, ...]] = field(default_factory=dict)  # group -> term keys
    lits: dict[str, tuple[Lit, ...]] = field(default_factory=dict)

    def copy(self) -> Store:
        return Store(dict(self.values), dict(self.missing), dict(self.members), dict(self.lits))

    def add(self, lit: Lit, schema: Schema) -> Conflict | None:
        term, key, group = lit.term, lit.term.key, group_of(lit.term)
        if key not in self.values:
            self.values[key] = schema.values(term)
            self.members[group] = (*self.members.get(group, ()), key)
            self.missing.setdefault(group, schema.may_be_missing(term))
        self.values[key] = _meet(self.values[key], literal_values(lit))
        self.lits[key] = (*self.lits.get(key, ()), lit)
        if not lit.negated:
            self.missing[group] = False  # a comparison holds only on a value that was sent
        if self.missing[group]:
            return None
        empty = next((k for k in self.members[group] if self.values[k].empty()), None)
        return None if empty is None else Conflict(self.lits[empty][0].term, self.lits[empty])


class _GiveUp(Exception):  # noqa: N818 - a signal inside the search, never seen outside
    pass


@dataclass(frozen=True, slots=True)
class Verdict:
    state: str  # sat | unsat | unknown
    conflicts: tuple[Conflict, ...] = ()

    @property
    def unsat(self) -> bool:
        return self.state == "unsat"


class Solver:
    """Is a conjunction of NNF conditions satisfiable? Lazy DNF with pruning."""

    def __init__(self, schema: Schema, budget: int = MAX_ALTERNATIVES) -> None:
        self.schema = schema
        self.budget = budget
        self.steps = 0
        self.conflicts: list[Conflict] = []
        self.gave_up = 0  # questions abandoned over the budget (reported as nothing)

    def solve(self, nodes: Sequence[Node]) -> Verdict:
        self.steps, self.conflicts = 0, []
        try:
            found = self._search(Store(), list(reversed(nodes)), [])
        except _GiveUp:
            self.gave_up += 1
            return Verdict("unknown")
        if found:
            return Verdict("sat")
        return Verdict("unsat", tuple(dict.fromkeys(self.conflicts)))

    def _search(self, store: Store, pending: list[Node], choices: list[tuple[Node, ...]]) -> bool:
        while True:
            if not self._propagate(store, pending, choices):
                return False
            units: list[Node] = []
            open_choices: list[tuple[Node, ...]] = []
            for choice in choices:
                viable = tuple(item for item in choice if self._viable(store, item))
                if not viable:
                    return False
                if len(viable) == 1:
                    units.append(viable[0])
                else:
                    open_choices.append(viable)
            choices = open_choices
            if not units:
                break
            pending = units
        if not choices:
            return True
        choice = min(choices, key=len)
        others = [c for c in choices if c is not choice]
        for item in choice:
            self.steps += 1
            if self.steps > self.budget:
                raise _GiveUp
            if self._search(store.copy(), [item], list(others)):
                return True
        return False

    def _propagate(
        self, store: Store, pending: list[Node], choices: list[tuple[Node, ...]]
    ) -> bool:
        """Add every literal and conjunction to the store; set disjunctions aside."""
        while pending:
            node = pending.pop()
            if node is True:
                continue
            if node is False:
                self.conflicts.append(Conflict(None, ()))
                return False
            if isinstance(node, All):
                pending.extend(reversed(node.items))  # a stack: keep the written order
            elif isinstance(node, Any_):
                choices.append(node.items)
            elif isinstance(node, Lit):
                conflict = store.add(node, self.schema)
                if conflict is not None:
                    self.conflicts.append(conflict)
                    return False
        return True

    def _viable(self, store: Store, item: Node) -> bool:
        """A cheap look-ahead: do the item's own literals fit the store?"""
        if isinstance(item, bool):
            return item
        lits = [item] if isinstance(item, Lit) else []
        if isinstance(item, All):
            lits = [i for i in item.items if isinstance(i, Lit)]
        if not lits:
            return True
        trial = store.copy()
        for lit in lits:
            conflict = trial.add(lit, self.schema)
            if conflict is not None:
                self.conflicts.append(conflict)
                return False
        return True


# ---------------------------------------------------------------------------- explanations


def explain(conflict: Conflict, schema: Schema) -> str:
    """`profile.age < 18 and profile.age > 65 cannot both hold`, or why the schema forbids."""
    if conflict.term is None:
        return "it is literally false"
    lits = list(dict.fromkeys(conflict.lits))
    loose = minimal_conflict(lits, schema, declared=False)
    if loose is not None:
        return f"{_joined(loose)} {_cannot(len(loose))}"
    tight = minimal_conflict(lits, schema, declared=True) or lits
    return f"{_joined(tight)} {_cannot(len(tight))}: {schema.describe(conflict.term)}"


def minimal_conflict(lits: list[Lit], schema: Schema, declared: bool) -> list[Lit] | None:
    """A smallest-by-greedy subset of literals (on one term) that is still impossible."""
    if not _impossible(lits, schema, declared):
        return None
    kept = list(lits)
    for lit in lits:
        trial = [x for x in kept if x is not lit]
        if trial and _impossible(trial, schema, declared):
            kept = trial
    return kept


def _impossible(lits: list[Lit], schema: Schema, declared: bool) -> bool:
    term = lits[0].term
    values = schema.values(term, declared)
    missing = schema.may_be_missing(term, declared)
    for lit in lits:
        values = _meet(values, literal_values(lit))
        missing = missing and lit.negated
    return not missing and values.empty()


def _joined(lits: list[Lit]) -> str:
    return " and ".join(
        f"`{lit}`" + (f" (in segment.{lit.via})" if lit.via else "") for lit in lits
    )


def _cannot(count: int) -> str:
    return {1: "can never hold", 2: "cannot both hold"}.get(count, "cannot all hold")


def why_impossible(verdict: Verdict, schema: Schema, limit: int = 3) -> str:
    reasons = list(dict.fromkeys(explain(c, schema) for c in verdict.conflicts))
    if len(reasons) <= 1:
        return reasons[0] if reasons else "its parts contradict each other"
    shown = "; ".join(f"({i}) {r}" for i, r in enumerate(reasons[:limit], 1))
    more = f"; and {len(reasons) - limit} more" if len(reasons) > limit else ""
    return f"none of its alternatives can hold: {shown}{more}"


def names(ids: Iterable[str], limit: int = 8) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def rule_name(rule: Rule) -> str:
    if rule.kind == "segment":
        return f"segment '{rule.segment}'"
    if rule.kind == "suppress":
        return f"suppression '{rule.id}'"
    if rule.kind == "weight":
        return f"weight rule '{rule.id}'"
    return f"rule '{rule.id}'"


def canonical(expr: Expr) -> object:
    """A structural normal form: nested and/or flattened, operands sorted, `not not` gone."""
    if isinstance(expr, Not):
        inner = canonical(expr.item)
        if isinstance(inner, tuple) and inner and inner[0] == "not":
            return inner[1]
        return ("not", inner)
    if isinstance(expr, AllOf | AnyOf):
        tag = "and" if isinstance(expr, AllOf) else "or"
        items: set[object] = set()
        for item in expr.items:
            form = canonical(item)
            if isinstance(form, tuple) and form and form[0] == tag:
                items.update(form[1])
            else:
                items.add(form)
        if len(items) == 1:
            return items.pop()
        return (tag, frozenset(items))
    if isinstance(expr, Const):
        return ("const", expr.value)
    return ("cmp", expr.op, expr.term, expr.value)
