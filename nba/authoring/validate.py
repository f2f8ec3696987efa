"""Static checks of a loaded rule set: the problems no single rule shows on its own.

The loader already rejects unknown names, type errors and segment cycles, one condition at
a time. `check(ruleset)` reasons about the whole set and returns what it finds, sorted by
location, each with a fixed code, the file:line:column of the rule concerned, what is wrong
and what was expected (and, in the message, where the other rule involved is):

Conditions
  never-true               error    a rule's condition can never hold (`age < 18 and age > 65`,
                                    a value outside the declared min/max, a count below 0, ...)
  always-true              warning  an engagement rule, weight rule or segment holds for every
                                    request (`age >= 18` when the schema says min 18, required)
  always-true-suppression  error    a suppression holds for every request: its targets can
                                    never be recommended, not even as a fallback
Actions
  unreachable-action       error    an action can never be recommended: its engagement rules
                                    contradict each other, suppressions together cover every
                                    case where it is eligible, or it is eligible only on
                                    touchpoints it has no treatment for
  eligible-and-suppressed  error    whenever an action is eligible, one suppression of it holds
  fallback-suppressed      error    a fallback's action is suppressed at every touchpoint the
                                    fallback serves, so the fallback is never given
Redundancy
  duplicate-rule           warning  two rules with the same effect and equivalent conditions
  shadowed-rule            warning  a rule that never changes a decision because another rule
                                    with the same effect holds whenever it does
  duplicate-segment        warning  two segments that hold for exactly the same requests
Weights and targets
  no-op-weight             warning  a weight rule or lever with factor 1 (changes no score)
  weight-never-applies     warning  a weight rule that never holds when any action it targets
                                    can be recommended
  empty-targets            warning  a suppression, weight rule or lever that targets no action
Unused
  unused-segment           warning  a segment no rule uses (still listed in explain output)
  unused-attribute         warning  a profile attribute no rule uses (still validated)
Policies
  cap-blocks-all           warning  a cap with `max: 0`: every action it covers is blocked there
  cap-covers-nothing       warning  a cap no recommendable action/channel falls under
  cooldown-covers-nothing  warning  a cooldown for a purpose no action has
  quiet-hours-empty        warning  quiet hours with start == end cover no minute at all
  quiet-hours-no-effect    warning  quiet hours on inbound-only channels (never restrained)

Errors are what is certainly broken: something that can never happen, or an action that can
never be shown. Warnings are what has no effect or is redundant: harmless to serve, but the
author most likely meant something else.

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
the reverse: every finding below rests on "impossible", so none is a false alarm from that.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from nba.errors import Location, RuleError, Severity
from nba.ruleset.conditions import NEGATED
from nba.ruleset.model import AttributeSpec, AttributeType, Direction
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
from nba.ruleset.ruleset import Action, Fallback, Rule, RuleSet

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
        flat.extend(item.items if isinstance(item, kind) else [item])
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
            return f"lifecycle is one of the declared stages ({_quoted(sorted(self.stages))})"
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
        parts.append(f"one of {_quoted(spec.values)}")
    if spec.min is not None:
        parts.append(f"min {spec.min}")
    if spec.max is not None:
        parts.append(f"max {spec.max}")
    parts.append("required" if spec.required else "optional")
    return "{" + ", ".join(parts) + "}"


def _quoted(values: Iterable[str]) -> str:
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
    loose = _minimal(lits, schema, declared=False)
    if loose is not None:
        return f"{_joined(loose)} {_cannot(len(loose))}"
    tight = _minimal(lits, schema, declared=True) or lits
    return f"{_joined(tight)} {_cannot(len(tight))}: {schema.describe(conflict.term)}"


def _minimal(lits: list[Lit], schema: Schema, declared: bool) -> list[Lit] | None:
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


def _why(verdict: Verdict, schema: Schema, limit: int = 3) -> str:
    reasons = list(dict.fromkeys(explain(c, schema) for c in verdict.conflicts))
    if len(reasons) <= 1:
        return reasons[0] if reasons else "its parts contradict each other"
    shown = "; ".join(f"({i}) {r}" for i, r in enumerate(reasons[:limit], 1))
    more = f"; and {len(reasons) - limit} more" if len(reasons) > limit else ""
    return f"none of its alternatives can hold: {shown}{more}"


def _names(ids: Iterable[str], limit: int = 8) -> str:
    ids = sorted(ids)
    shown = ", ".join(ids[:limit])
    return shown + (f" and {len(ids) - limit} more" if len(ids) > limit else "")


def _rule_name(rule: Rule) -> str:
    if rule.kind == "segment":
        return f"segment '{rule.segment}'"
    if rule.kind == "suppress":
        return f"suppression '{rule.id}'"
    if rule.kind == "weight":
        return f"weight rule '{rule.id}'"
    return f"rule '{rule.id}'"


# ---------------------------------------------------------------------------- the checks


def check(ruleset: RuleSet) -> list[RuleError]:
    """Warnings and errors of a loaded rule set, sorted by location."""
    return Checker(ruleset).run()


class Checker:
    def __init__(self, ruleset: RuleSet) -> None:
        self.rs = ruleset
        self.schema = Schema(ruleset)
        self.solver = Solver(self.schema)
        segments = {r.segment: r.expr for r in ruleset.rules if r.segment is not None}
        self.normalizer = Normalizer(segments)
        self.found: list[RuleError] = []
        self.status: dict[int, str] = {}  # rule index -> "never" | "always"
        self.reach: dict[str, Node] = {}  # action id -> when it can be recommended
        self.suppressions = [r for r in ruleset.rules if r.kind == "suppress"]

    def run(self) -> list[RuleError]:
        self.conditions()
        for action in self.rs.actions.values():
            self.action(action)
        for fallback in self.rs.fallbacks:
            self.fallback(fallback)
        self.redundancy()
        self.weights()
        self.unused()
        self.policies()
        return sorted(self.found, key=RuleError.sort_key)

    # -- plumbing
    def report(self, code: str, message: str, at: Location | None, error: bool) -> None:
        severity = Severity.ERROR if error else Severity.WARNING
        self.found.append(RuleError(code, message, at, severity=severity))

    def cond(self, rule: Rule, positive: bool = True) -> Node:
        return self.normalizer.node(rule.expr, positive)

    def verdict(self, *nodes: Node) -> Verdict:
        return self.solver.solve(nodes)

    def never(self, *nodes: Node) -> bool:
        return self.verdict(*nodes).unsat

    def implies(self, a: Rule, b: Rule) -> bool:
        return self.never(self.cond(a), self.cond(b, False))

    def equivalent(self, a: Rule, b: Rule) -> bool:
        if canonical(a.expr) == canonical(b.expr):
            return True
        return self.implies(a, b) and self.implies(b, a)

    def live(self, rules: Iterable[Rule]) -> list[Rule]:
        """Rules that neither never nor always hold (those are reported on their own)."""
        return [r for r in rules if r.index not in self.status]

    # -- conditions that can never be, or are always, true
    def conditions(self) -> None:
        for rule in self.rs.rules:
            verdict = self.verdict(self.cond(rule))
            if verdict.unsat:
                self.status[rule.index] = "never"
                self.never_true(rule, verdict)
                continue
            negation = self.verdict(self.cond(rule, False))
            if negation.unsat:
                self.status[rule.index] = "always"
                self.always_true(rule, negation)

    def never_true(self, rule: Rule, verdict: Verdict) -> None:
        why = _why(verdict, self.schema)
        consequence = {
            "segment": ", so every rule that needs it is dead too",
            "suppress": ", so it never suppresses anything",
            "weight": f", so its factor {rule.factor:g} never applies",
        }.get(rule.kind, f", so action '{rule.action}' can never be recommended")
        self.report(
            "never-true",
            f"{_rule_name(rule)} can never be true: {why}{consequence};"
            " expected a condition some request can meet (fix the bounds or operators,"
            " or remove the rule)",
            rule.location,
            error=True,
        )

    def always_true(self, rule: Rule, negation: Verdict) -> None:
        schema_notes = [
            self.schema.describe(c.term)
            for c in negation.conflicts
            if c.term is not None and _minimal(list(c.lits), self.schema, False) is None
        ]
        because = f" because {schema_notes[0]}" if schema_notes else " (a tautology)"
        if rule.kind == "suppress":
            self.report(
                "always-true-suppression",
                f"suppression '{rule.id}' is always true{because}, so it suppresses"
                f" {_names(rule.targets)} in every decision and they can never be recommended;"
                " expected a condition that holds only for some requests",
                rule.location,
                error=True,
            )
            return
        if isinstance(rule.expr, Const):
            return  # written `true` on purpose: nothing to tell the author
        effect = {
            "segment": "every request is in it",
            "weight": f"its factor {rule.factor:g} applies to every decision (a lever does that)",
        }.get(rule.kind, "it never excludes anything")
        self.report(
            "always-true",
            f"{_rule_name(rule)} is always true{because}: {effect};"
            " expected a condition that can be false (remove it, or tighten it)",
            rule.location,
            error=False,
        )

    # -- actions that can never be recommended
    def action(self, action: Action) -> None:
        rules = self.rs.engagement.get(action.id, ())
        if any(self.status.get(r.index) == "never" for r in rules):
            return  # never-true already says the action is dead
        engaged = conj(self.cond(r) for r in rules)
        verdict = self.verdict(engaged)
        if verdict.unsat:
            self.contradictory_engagement(action, rules, verdict)
            return
        suppressions = [s for s in self.suppressions if action.id in s.targets]
        if any(self.status.get(s.index) == "always" for s in suppressions):
            return  # always-true-suppression already names it
        suppressions = self.live(suppressions)
        if self.suppressed_when_eligible(action, rules, engaged, suppressions):
            return
        unsuppressed = conj([engaged, *(self.cond(s, False) for s in suppressions)])
        if self.never(unsuppressed):
            self.suppressed_together(action, engaged, suppressions)
            return
        reachable = conj([unsuppressed, self.channel_ok(action)])
        if self.never(reachable):
            self.no_channel(action, unsuppressed)
            return
        self.reach[action.id] = reachable

    def channel_ok(self, action: Action) -> Node:
        """The touchpoints that can carry the action: its own channels, or outbound."""
        channels = list(action.channels)
        if any(self.rs.channels[c].direction != Direction.INBOUND for c in channels):
            channels.append(OUTBOUND)
        return disj(Lit(CHANNEL, "==", c) for c in channels)

    def contradictory_engagement(
        self, action: Action, rules: Sequence[Rule], verdict: Verdict
    ) -> None:
        for i, later in enumerate(rules):
            for earlier in rules[:i]:
                pair = self.verdict(self.cond(earlier), self.cond(later))
                if pair.unsat:
                    self.report(
                        "unreachable-action",
                        f"rule '{later.id}' can never hold together with rule '{earlier.id}'"
                        f" at {earlier.location}: {_why(pair, self.schema)}, so action"
                        f" '{action.id}' can never be recommended{self._fallback_note(action)};"
                        " expected engagement rules a customer can meet together",
                        later.location,
                        error=not self._is_fallback(action),
                    )
                    return
        self.report(
            "unreachable-action",
            f"the engagement rules of action '{action.id}' can never all hold together:"
            f" {_why(verdict, self.schema)}, so it can never be recommended"
            f"{self._fallback_note(action)}; expected rules a customer can meet together",
            action.location,
            error=not self._is_fallback(action),
        )

    def _is_fallback(self, action: Action) -> bool:
        return any(f.action == action.id for f in self.rs.fallbacks)

    def _fallback_note(self, action: Action) -> str:
        return " (it is still given as a fallback)" if self._is_fallback(action) else ""

    def suppressed_when_eligible(
        self, action: Action, rules: Sequence[Rule], engaged: Node, suppressions: list[Rule]
    ) -> bool:
        for suppression in suppressions:
            if not self.never(engaged, self.cond(suppression, False)):
                continue
            culprit = next(
                (r for r in rules if self.never(self.cond(r), self.cond(suppression, False))),
                None,
            )
            which = f"its rule '{culprit.id}'" if culprit else "its engagement rules"
            self.report(
                "eligible-and-suppressed",
                f"action '{action.id}' can never be recommended: whenever {which} hold"
                f"{'s' if culprit else ''}, suppression '{suppression.id}' at"
                f" {suppression.location} holds too and suppresses it; expected the"
                " suppression to cover only some of the cases where it is eligible",
                culprit.location if culprit else action.location,
                error=True,
            )
            return True
        return False

    def suppressed_together(self, action: Action, engaged: Node, suppressions: list[Rule]) -> None:
        involved = [s for s in suppressions if not self.never(engaged, self.cond(s))]
        listing = ", ".join(f"'{s.id}' at {s.location}" for s in involved)
        self.report(
            "unreachable-action",
            f"action '{action.id}' can never be recommended: whenever its engagement rules"
            f" hold, one of the suppressions {listing} holds; expected some eligible case"
            " that no suppression covers",
            action.location,
            error=True,
        )

    def no_channel(self, action: Action, unsuppressed: Node) -> None:
        allowed = [
            c
            for c in [*self.rs.channels, OUTBOUND]
            if not self.never(unsuppressed, Lit(CHANNEL, "==", c))
        ]
        outbound = (
            " (an outbound decision needs a treatment on an outbound channel)"
            if OUTBOUND in allowed
            else ""
        )
        self.report(
            "unreachable-action",
            f"action '{action.id}' can never be recommended: its rules hold only when"
            f" touchpoint.channel is {_quoted(allowed)}, but it has treatments only for"
            f" {_quoted(action.channels)}{outbound}; expected a treatment for a channel its"
            " rules allow",
            action.location,
            error=True,
        )

    def fallback(self, fallback: Fallback) -> None:
        where = [Lit(CHANNEL, "==", fallback.channel)] if fallback.channel else []
        if fallback.placement is not None:
            where.append(Lit(PLACEMENT, "==", fallback.placement))
        touchpoint = conj(where)
        suppressions = [s for s in self.suppressions if fallback.action in s.targets]
        if any(self.status.get(s.index) == "always" for s in suppressions):
            return  # always-true-suppression names the action already
        suppressions = self.live(suppressions)
        if not suppressions:
            return
        single = next(
            (s for s in suppressions if self.never(touchpoint, self.cond(s, False))), None
        )
        if single is not None:
            culprits = f"suppression '{single.id}' at {single.location} always holds"
        elif self.never(touchpoint, *(self.cond(s, False) for s in suppressions)):
            culprits = (
                "one of the suppressions "
                + ", ".join(f"'{s.id}' at {s.location}" for s in suppressions)
                + " always holds"
            )
        else:
            return
        served = f"touchpoint.channel {fallback.channel}" if fallback.channel else "any touchpoint"
        self.report(
            "fallback-suppressed",
            f"fallback action '{fallback.action}' for {served} is never given: {culprits}"
            " there and suppresses it; expected a fallback action no suppression covers",
            fallback.location,
            error=True,
        )

    # -- duplicated and shadowed rules
    def redundancy(self) -> None:
        live = self.live(self.rs.rules)
        self.suppression_redundancy([r for r in live if r.kind == "suppress"])
        self.weight_duplicates([r for r in live if r.kind == "weight"])
        for action_id in self.rs.actions:
            self.engagement_redundancy(self.live(self.rs.engagement.get(action_id, ())))
        self.segment_duplicates([r for r in live if r.kind == "segment"])

    def suppression_redundancy(self, rules: list[Rule]) -> None:
        for rule in rules:
            for other in rules:
                if other is rule or not rule.targets <= other.targets:
                    continue
                if not self.implies(rule, other):
                    continue
                same = rule.targets == other.targets and self.implies(other, rule)
                if same and other.location < rule.location:
                    self.duplicate(rule, other)
                    break
                if not same:
                    more = "" if rule.targets == other.targets else " (and more)"
                    self.report(
                        "shadowed-rule",
                        f"suppression '{rule.id}' is shadowed by suppression '{other.id}' at"
                        f" {other.location}: whenever it holds, '{other.id}' holds too and"
                        f" suppresses the same actions{more}, so it never changes a decision;"
                        f" expected a condition '{other.id}' does not already cover (or remove"
                        " it)",
                        rule.location,
                        error=False,
                    )
                    break

    def weight_duplicates(self, rules: list[Rule]) -> None:
        for i, rule in enumerate(rules):
            for other in rules[:i]:
                if (rule.targets, rule.factor) != (other.targets, other.factor):
                    continue
                if self.equivalent(rule, other):
                    self.duplicate(*sorted((rule, other), key=lambda r: r.location, reverse=True))
                    break

    def engagement_redundancy(self, rules: list[Rule]) -> None:
        reported: set[int] = set()
        for i, rule in enumerate(rules):
            for other in rules[:i]:
                if self.equivalent(rule, other):
                    self.duplicate(rule, other)
                    reported.add(rule.index)
                    break
        for rule in rules:
            implied_by = next(
                (
                    o
                    for o in rules
                    if o is not rule and rule.index not in reported and self.implies(o, rule)
                ),
                None,
            )
            if implied_by is not None and not self.implies(rule, implied_by):
                self.report(
                    "shadowed-rule",
                    f"rule '{rule.id}' is implied by rule '{implied_by.id}' at"
                    f" {implied_by.location}: whenever '{implied_by.id}' holds it holds too,"
                    f" so it never excludes action '{rule.action}' on its own; expected a"
                    " condition that adds something (or remove it)",
                    rule.location,
                    error=False,
                )

    def duplicate(self, rule: Rule, other: Rule) -> None:
        twice = ""
        if rule.kind == "weight":
            twice = f", so both fire and the factor applies twice ({rule.factor**2:g} in all)"
        self.report(
            "duplicate-rule",
            f"{_rule_name(rule)} duplicates {_rule_name(other)} at {other.location}: equivalent"
            f" conditions and the same effect{twice}; expected each rule once (remove one)",
            rule.location,
            error=False,
        )

    def segment_duplicates(self, rules: list[Rule]) -> None:
        for i, rule in enumerate(rules):
            for other in rules[:i]:
                if self.equivalent(rule, other):
                    self.report(
                        "duplicate-segment",
                        f"segment '{rule.segment}' is equivalent to segment '{other.segment}'"
                        f" at {other.location}: they hold for exactly the same requests;"
                        " expected one segment per meaning (use one of them)",
                        rule.location,
                        error=False,
                    )
                    break

    # -- weights, levers and their targets
    def weights(self) -> None:
        for rule in self.rs.rules:
            if rule.kind in ("suppress", "weight") and not rule.targets:
                self.empty_targets(_rule_name(rule), rule.location)
            if rule.kind != "weight":
                continue
            if rule.factor == 1:
                self.report(
                    "no-op-weight",
                    f"weight rule '{rule.id}' has factor 1, which changes no score; expected a"
                    " factor above 1 (boost) or below 1 (damp), or remove the rule",
                    rule.location,
                    error=False,
                )
            elif rule.index not in self.status and rule.targets:
                self.weight_applies(rule)
        for lever in self.rs.levers:
            if not lever.targets:
                self.empty_targets(f"lever '{lever.id}'", lever.location)
            if lever.factor == 1:
                self.report(
                    "no-op-weight",
                    f"lever '{lever.id}' has factor 1, which changes no score; expected a"
                    " factor above 1 (push) or below 1 (slow down), or remove the lever",
                    lever.location,
                    error=False,
                )

    def weight_applies(self, rule: Rule) -> None:
        reachable = [a for a in sorted(rule.targets) if a in self.reach]
        condition = self.cond(rule)
        if not reachable or any(not self.never(self.reach[a], condition) for a in reachable):
            return
        self.report(
            "weight-never-applies",
            f"weight rule '{rule.id}' never changes a recommendation: whenever it holds, none"
            f" of the actions it targets ({_names(rule.targets)}) can be recommended; expected"
            " a condition that overlaps when some target is eligible (or other targets)",
            rule.location,
            error=False,
        )

    def empty_targets(self, what: str, at: Location) -> None:
        self.report(
            "empty-targets",
            f"{what} targets no action: no action matches its actions, groups or purposes;"
            " expected targets at least one action has",
            at,
            error=False,
        )

    # -- unused segments and attributes
    def unused(self) -> None:
        used_by: dict[str, set[str]] = {s: set() for s in self.rs.segments}
        attributes: set[str] = set()
        for rule in self.rs.rules:
            for term in _terms(rule.expr):
                if isinstance(term, SegmentTerm) and term.segment != rule.segment:
                    used_by[term.segment].add(rule.segment or "")
                elif isinstance(term, ProfileTerm | SetTerm):
                    attributes.add(term.attr)
        alive = _alive_segments(used_by)
        for name, segment in self.rs.segments.items():
            if name in alive:
                continue
            users = sorted(used_by[name])
            how = (
                f"it is used only by segment {_quoted(users)}, which nothing uses either"
                if users
                else f"no rule or segment refers to segment.{name}"
            )
            self.report(
                "unused-segment",
                f"segment '{name}' is never used: {how}; expected a rule that uses it, or"
                " remove it (it is still listed in explain output's segments)",
                segment.location,
                error=False,
            )
        unused = [a for a in self.rs.attributes if a not in attributes]
        places = self.rs.attribute_locations
        for attr in unused:
            spec = self.rs.attributes[attr]
            note = " and every request must still send it" if spec.required else ""
            self.report(
                "unused-attribute",
                f"profile attribute '{attr}' is declared but no rule uses it{note}; expected a"
                " rule that uses it, or remove it from the profile schema",
                places.get(attr),
                error=False,
            )

    # -- contact policies
    def policies(self) -> None:
        policies = self.rs.policies
        for cap in policies.caps:
            covered = {
                a.id: [c for c in a.channels if cap.applies(a, c)] for a in self.rs.actions.values()
            }
            covered = {a: cs for a, cs in covered.items() if cs}
            if not covered:
                self.report(
                    "cap-covers-nothing",
                    f"cap '{cap.id}' covers no action: none matches its channel, purpose and"
                    " groups, so it never limits anything; expected filters some action meets",
                    cap.location,
                    error=False,
                )
            elif cap.max == 0:
                self.cap_blocks_all(cap.id, cap.location, covered)
        purposes = {a.purpose for a in self.rs.actions.values()}
        for cooldown in policies.cooldowns:
            if cooldown.purpose is not None and cooldown.purpose not in purposes:
                self.report(
                    "cooldown-covers-nothing",
                    f"cooldown '{cooldown.id}' is for purpose '{cooldown.purpose}', which no"
                    " action has, so it never pauses anything; expected a purpose some action"
                    " has",
                    cooldown.location,
                    error=False,
                )
        for quiet in policies.quiet_hours:
            self.quiet_hours(
                quiet.id, quiet.location, quiet.start_minute, quiet.end_minute, quiet.channels
            )

    def cap_blocks_all(self, cap_id: str, at: Location, covered: dict[str, list[str]]) -> None:
        dead = [a for a, cs in covered.items() if set(cs) == set(self.rs.actions[a].channels)]
        listing = "; ".join(f"{a} on {', '.join(cs)}" for a, cs in sorted(covered.items())[:8])
        more = f" and {len(covered) - 8} more" if len(covered) > 8 else ""
        never = (
            f"; {_names(dead)} can never be recommended at all (every channel they have is capped)"
            if dead
            else ""
        )
        self.report(
            "cap-blocks-all",
            f"cap '{cap_id}' has max 0, so it blocks everything it covers in every decision:"
            f" {listing}{more}{never}; expected a max of at least 1 (or remove the treatments"
            " or the cap)",
            at,
            error=False,
        )

    def quiet_hours(
        self, quiet_id: str, at: Location, start: int, end: int, channels: frozenset[str]
    ) -> None:
        if start == end:
            self.report(
                "quiet-hours-empty",
                f"quiet hours '{quiet_id}' start and end at the same time, which covers no"
                " minute at all (it never applies); expected a start and an end that differ"
                ' (e.g. "21:00" to "08:00")',
                at,
                error=False,
            )
            return
        inbound = sorted(
            c
            for c in channels
            if c in self.rs.channels and self.rs.channels[c].direction == Direction.INBOUND
        )
        if inbound:
            self.report(
                "quiet-hours-no-effect",
                f"quiet hours '{quiet_id}' name inbound-only channel(s) {_quoted(inbound)}:"
                " quiet hours restrain only contacts we start, so they never apply there;"
                " expected outbound or both-way channels",
                at,
                error=False,
            )


def _alive_segments(used_by: Mapping[str, set[str]]) -> set[str]:
    """Segments a non-segment rule uses, directly or through other used segments."""
    alive = {s for s, users in used_by.items() if "" in users}
    changed = True
    while changed:
        grown = {s for s, users in used_by.items() if users & alive}
        changed = not grown <= alive
        alive |= grown
    return alive


def _terms(expr: Expr) -> Iterator[Term]:
    if isinstance(expr, Cmp):
        yield expr.term
    elif isinstance(expr, Not):
        yield from _terms(expr.item)
    elif isinstance(expr, AllOf | AnyOf):
        for item in expr.items:
            yield from _terms(item)


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
