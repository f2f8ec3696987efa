"""Name resolution and type checking of parsed conditions.

The parser knows syntax only. Here every name is looked up in the rule set's declared
schema (a misspelt one gets a suggestion), every literal is checked against the type of
what it is compared with, and the tree is rewritten into a small resolved form:

    Cmp(op, term, value)   a term compared with a literal
    Not / AllOf / AnyOf    logic
    Const                  true / false

Terms are the leaves both evaluators read: a profile attribute, a set attribute's
membership flag, lifecycle, a touchpoint field, a segment flag, a history count. Each
term has a `key`: its property name in the facts asserted into durable_rules.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nba.errors import NbaError, did_you_mean
from nba.ruleset import conditions as c
from nba.ruleset.durations import format_duration
from nba.ruleset.model import AttributeSpec, AttributeType

# ---------------------------------------------------------------------------- terms

NUMBER, BOOL, STRING = "number", "bool", "string"


@dataclass(frozen=True, slots=True)
class ProfileTerm:
    attr: str
    value_type: str  # number | bool | string
    values: tuple[str, ...] = ()  # declared enum values, for checks and suggestions

    @property
    def key(self) -> str:
        return f"p:{self.attr}"

    may_be_missing = True

    def __str__(self) -> str:
        return f"profile.{self.attr}"


@dataclass(frozen=True, slots=True)
class SetTerm:
    """Whether a set attribute holds one value: `"mortgage" in profile.products`."""

    attr: str
    value: str
    index: int  # position in the declared values: keeps property names plain
    value_type = BOOL
    may_be_missing = True

    @property
    def key(self) -> str:
        return f"ps:{self.attr}:{self.index}"

    def __str__(self) -> str:
        return f'"{self.value}" in profile.{self.attr}'


@dataclass(frozen=True, slots=True)
class LifecycleTerm:
    value_type = STRING
    may_be_missing = False
    key = "lc"

    def __str__(self) -> str:
        return "lifecycle"


@dataclass(frozen=True, slots=True)
class TouchpointTerm:
    field: str  # channel | placement | intent
    value_type = STRING
    may_be_missing = False

    @property
    def key(self) -> str:
        return f"t:{self.field}"

    def __str__(self) -> str:
        return f"touchpoint.{self.field}"


@dataclass(frozen=True, slots=True)
class SegmentTerm:
    segment: str
    value_type = BOOL
    may_be_missing = False

    @property
    def key(self) -> str:
        return f"s:{self.segment}"

    def __str__(self) -> str:
        return f"segment.{self.segment}"


@dataclass(frozen=True, slots=True)
class CountTerm:
    """How many interactions with `outcome` in the window, optionally scoped."""

    outcome: str  # IMPRESSION, CLICK, ACCEPT, DISMISS, REJECT, COMPLAINT
    window_seconds: int | None
    action: str | None
    group: str | None
    channel: str | None
    value_type = NUMBER
    may_be_missing = False

    @property
    def key(self) -> str:
        # ":" never occurs in ids, so no two different counts can share a key.
        window = "all" if self.window_seconds is None else str(self.window_seconds)
        scope = (self.action or "", self.group or "", self.channel or "")
        return ":".join(("h", self.outcome, window, *scope))

    def __str__(self) -> str:
        name = {v: k for k, v in c.OUTCOME_FUNCTIONS.items()}[self.outcome]
        args = [format_duration(self.window_seconds)] if self.window_seconds else []
        for tag, value in (
            ("action", self.action),
            ("group", self.group),
            ("channel", self.channel),
        ):
            if value:
                args.append(f'{tag}="{value}"')
        return f"{name}({', '.join(args)})"


Term = ProfileTerm | SetTerm | LifecycleTerm | TouchpointTerm | SegmentTerm | CountTerm

# ---------------------------------------------------------------------------- resolved nodes


@dataclass(frozen=True, slots=True)
class Cmp:
    op: str
    term: Term
    value: bool | int | float | str

    def __str__(self) -> str:
        value = f'"{self.value}"' if isinstance(self.value, str) else str(self.value).lower()
        if isinstance(self.value, int | float) and not isinstance(self.value, bool):
            value = repr(self.value)
        return f"{self.term} {self.op} {value}"


@dataclass(frozen=True, slots=True)
class Not:
    item: Expr

    def __str__(self) -> str:
        return f"not ({self.item})"


@dataclass(frozen=True, slots=True)
class AllOf:
    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return " and ".join(f"({i})" for i in self.items)


@dataclass(frozen=True, slots=True)
class AnyOf:
    items: tuple[Expr, ...]

    def __str__(self) -> str:
        return " or ".join(f"({i})" for i in self.items)


@dataclass(frozen=True, slots=True)
class Const:
    value: bool

    def __str__(self) -> str:
        return str(self.value).lower()


Expr = Cmp | Not | AllOf | AnyOf | Const


def comparisons(expr: Expr) -> list[Cmp]:
    """Every comparison in a condition, in order."""
    if isinstance(expr, Cmp):
        return [expr]
    if isinstance(expr, Not):
        return comparisons(expr.item)
    if isinstance(expr, AllOf | AnyOf):
        return [c for item in expr.items for c in comparisons(item)]
    return []


def terms_of(expr: Expr) -> list[Term]:
    if isinstance(expr, Cmp):
        return [expr.term]
    if isinstance(expr, Not):
        return terms_of(expr.item)
    if isinstance(expr, AllOf | AnyOf):
        return [t for item in expr.items for t in terms_of(item)]
    return []


# ---------------------------------------------------------------------------- scope


@dataclass(frozen=True)
class Scope:
    """Everything a condition may name, from the whole rule set."""

    attributes: Mapping[str, AttributeSpec]
    stages: tuple[str, ...]
    channels: tuple[str, ...]
    segments: frozenset[str]
    actions: frozenset[str]
    groups: frozenset[str]
    broken: frozenset[str] = frozenset()  # declared but invalid names: already reported
    lenient: bool = False  # a file did not parse: any unknown name may be defined there
    this_action: str | None = None  # set inside an action's engagement rules
    referenced_segments: set[str] = field(default_factory=set)


class BrokenReference(Exception):  # noqa: N818 - a signal, not an error to show
    """A name whose own definition is broken (and reported): skip the condition quietly."""


class ConditionTypeError(NbaError, ValueError):
    """A condition that parses but names something unknown or mixes types."""

    def __init__(self, message: str, span: c.Span, expected: str = "", hint: str = "") -> None:
        self.message = message
        self.span = span
        self.expected = expected
        self.hint = hint
        super().__init__(message)


ROOTS = ("profile", "lifecycle", "touchpoint", "segment")
# The engine compares numbers as int64 or double: beyond 2**53 neither is exact for all.
MAX_EXACT = 2**53
TOUCHPOINT_FIELDS = ("channel", "placement", "intent")
_ORDERING = ("<", "<=", ">", ">=")


class ConditionCheckError(NbaError, ValueError):
    """Every type error of one condition (each leaf is checked, not just the first)."""

    def __init__(self, errors: list[ConditionTypeError]) -> None:
        self.errors = errors
        super().__init__("; ".join(e.message for e in errors))


def resolve(node: c.Node, scope: Scope) -> Expr:
    """Resolve names and check types; raises ConditionCheckError listing every problem."""
    resolver = _Resolver(scope)
    expr = resolver.node(node)
    if resolver.errors:
        raise ConditionCheckError(resolver.errors)
    return expr


class _Resolver:
    def __init__(self, scope: Scope) -> None:
        self.scope = scope
        self.errors: list[ConditionTypeError] = []

    def node(self, node: c.Node) -> Expr:
        if isinstance(node, c.Truthy | c.In | c.Compare):
            try:
                return self.leaf(node)
            except ConditionTypeError as exc:
                self.errors.append(exc)
                return Const(False)  # placeholder; the condition is rejected anyway
        return self.logic(node)

    def leaf(self, node: c.Truthy | c.In | c.Compare) -> Expr:
        if isinstance(node, c.Truthy):
            return self.truthy(node)
        if isinstance(node, c.In):
            return self.membership(node)
        return self.compare(node)

    def logic(self, node: c.Node) -> Expr:
        if isinstance(node, c.And):
            return AllOf(tuple(self.node(i) for i in node.items))
        if isinstance(node, c.Or):
            return AnyOf(tuple(self.node(i) for i in node.items))
        if isinstance(node, c.Not):
            return Not(self.node(node.item))
        if isinstance(node, c.Literal):
            if isinstance(node.value, bool):
                return Const(node.value)
            self.errors.append(
                ConditionTypeError(
                    f"{node.value!r} is not a condition", node.span, "true/false or a comparison"
                )
            )
            return Const(False)
        raise AssertionError(f"unexpected node {node!r}")  # pragma: no cover

    # -- leaves
    def truthy(self, node: c.Truthy) -> Expr:
        if isinstance(node.operand, c.Literal):
            return self.node(node.operand)
        term = self.term(node.operand)
        if term.value_type != BOOL:
            raise ConditionTypeError(
                f"{term} is not true/false on its own",
                node.span,
                f"a comparison such as `{term} == ...`",
            )
        return Cmp("==", term, True)

    def compare(self, node: c.Compare) -> Expr:
        left, right, op = node.left, node.right, node.op
        if isinstance(left, c.Literal) and not isinstance(right, c.Literal):
            left, right, op = right, left, c.MIRRORED[op]
        if isinstance(left, c.Literal):
            raise ConditionTypeError(
                "comparing two values", node.span, "a name such as profile.age on one side"
            )
        if not isinstance(right, c.Literal):
            raise ConditionTypeError(
                "comparing two names is not supported", right.span, "a literal value"
            )
        term = self.term(left)
        if op in _ORDERING and term.value_type != NUMBER:
            raise ConditionTypeError(
                f"'{op}' orders numbers, but {term} is {_a(term.value_type)}",
                node.span,
                "== or !=",
            )
        return Cmp(op, term, self.literal(term, right))

    def membership(self, node: c.In) -> Expr:
        if isinstance(node.container, c.Ref):
            return self.set_membership(node, node.container)
        if isinstance(node.item, c.Literal):
            raise ConditionTypeError(
                "'in [...]' needs a name on its left", node.item.span, "e.g. lifecycle in [...]"
            )
        term = self.term(node.item)
        values = tuple(self.literal(term, lit) for lit in node.container)
        return AnyOf(tuple(Cmp("==", term, v) for v in dict.fromkeys(values)))

    def set_membership(self, node: c.In, container: c.Ref) -> Expr:
        if container.parts[0] != "profile":
            raise ConditionTypeError(
                f"'{container.dotted}' is not a set", container.span, "profile.<set attribute>"
            )
        attr = self.profile_attribute(container)
        spec = self.scope.attributes[attr]
        if spec.type != AttributeType.SET:
            raise ConditionTypeError(
                f"profile.{attr} is not a set",
                container.span,
                "a list [...] or a set attribute",
            )
        item = node.item
        if not isinstance(item, c.Literal) or not isinstance(item.value, str):
            raise ConditionTypeError(
                "a set holds quoted values", item.span, f'e.g. "{spec.values[0]}"'
            )
        if item.value not in spec.values:
            raise ConditionTypeError(
                f"'{item.value}' is not a value of profile.{attr}",
                item.span,
                f"one of {_listing(spec.values)}",
                did_you_mean(item.value, spec.values),
            )
        return Cmp("==", SetTerm(attr, item.value, spec.values.index(item.value)), True)

    # -- terms and literals
    def term(self, operand: c.Operand) -> Term:
        if isinstance(operand, c.Count):
            return self.count(operand)
        assert isinstance(operand, c.Ref)
        root, rest = operand.parts[0], operand.parts[1:]
        if root == "profile":
            attr = self.profile_attribute(operand)
            spec = self.scope.attributes[attr]
            if spec.type == AttributeType.SET:
                raise ConditionTypeError(
                    f"profile.{attr} is a set", operand.span, f'"value" in profile.{attr}'
                )
            return ProfileTerm(attr, _value_type(spec), spec.values)
        if root == "lifecycle":
            self.no_more(operand, 1)
            return LifecycleTerm()
        if root == "touchpoint":
            name = self.member(operand, TOUCHPOINT_FIELDS, "touchpoint field")
            return TouchpointTerm(name)
        if root == "segment":
            name = self.member(operand, sorted(self.scope.segments), "segment")
            self.scope.referenced_segments.add(name)
            return SegmentTerm(name)
        hint = did_you_mean(root, ROOTS)
        if root in self.scope.attributes and not rest:
            hint = f"did you mean 'profile.{root}'?"
        raise ConditionTypeError(
            f"unknown name '{operand.dotted}'",
            operand.span,
            "profile.<attribute>, lifecycle, touchpoint.<field> or segment.<id>",
            hint,
        )

    def profile_attribute(self, ref: c.Ref) -> str:
        return self.member(ref, sorted(self.scope.attributes), "profile attribute")

    def member(self, ref: c.Ref, known: list[str] | tuple[str, ...], what: str) -> str:
        if len(ref.parts) < 2:
            raise ConditionTypeError(
                f"'{ref.parts[0]}' needs a {what} after a dot",
                ref.span,
                f"{ref.parts[0]}.<{what.split()[-1]}>",
            )
        self.no_more(ref, 2)
        name = ref.parts[1]
        if name not in known and (name in self.scope.broken or self.scope.lenient):
            raise BrokenReference(name)
        if name not in known:
            raise ConditionTypeError(
                f"unknown {what} '{name}'",
                ref.span,
                f"a declared {what}",
                did_you_mean(name, known),
            )
        return name

    def no_more(self, ref: c.Ref, size: int) -> None:
        if len(ref.parts) > size:
            raise ConditionTypeError(
                f"'{ref.dotted}' has too many parts",
                ref.span,
                ".".join(ref.parts[:size]),
            )

    def count(self, node: c.Count) -> CountTerm:
        action = node.action
        if action == c.THIS:
            if self.scope.this_action is None:
                raise ConditionTypeError(
                    "action=this is only meaningful in an action's own rules",
                    node.span,
                    'action="<id>"',
                )
            action = self.scope.this_action
        elif action is not None:
            self.known(action, self.scope.actions, "action", node.span)
        if node.group is not None:
            self.known(node.group, self.scope.groups, "group", node.span)
        if node.channel is not None:
            self.known(node.channel, self.scope.channels, "channel", node.span)
        return CountTerm(node.outcome, node.window_seconds, action, node.group, node.channel)

    def known(
        self, name: str, known: frozenset[str] | tuple[str, ...], what: str, span: c.Span
    ) -> None:
        if name not in known and (name in self.scope.broken or self.scope.lenient):
            raise BrokenReference(name)
        if name not in known:
            raise ConditionTypeError(
                f"unknown {what} '{name}'",
                span,
                f"a declared {what}",
                did_you_mean(name, known),
            )

    def literal(self, term: Term, lit: c.Literal) -> bool | int | float | str:
        value = lit.value
        want = term.value_type
        if want == NUMBER:
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ConditionTypeError(
                    f"{term} is a number, but {value!r} is {_a(_type_of(value))}",
                    lit.span,
                    "a number",
                )
            if abs(value) > MAX_EXACT:
                raise ConditionTypeError(
                    f"{value!r} is too large to compare exactly",
                    lit.span,
                    f"a number between -{MAX_EXACT} and {MAX_EXACT}",
                )
            if isinstance(term, CountTerm) and (value != int(value)):
                raise ConditionTypeError(
                    f"{term} counts whole interactions", lit.span, "a whole number"
                )
            return value
        if want == BOOL:
            if not isinstance(value, bool):
                raise ConditionTypeError(
                    f"{term} is true or false, but {value!r} is {_a(_type_of(value))}",
                    lit.span,
                    "true or false",
                )
            return value
        if not isinstance(value, str):
            raise ConditionTypeError(
                f"{term} is text, but {value!r} is {_a(_type_of(value))}",
                lit.span,
                "a quoted string",
            )
        allowed = self.allowed_strings(term)
        if allowed is not None and value not in allowed:
            raise ConditionTypeError(
                f"'{value}' is not a possible value of {term}",
                lit.span,
                f"one of {_listing(allowed)}",
                did_you_mean(value, allowed),
            )
        return value

    def allowed_strings(self, term: Term) -> tuple[str, ...] | None:
        if isinstance(term, ProfileTerm) and term.values:
            return term.values
        if isinstance(term, LifecycleTerm):
            return self.scope.stages
        if isinstance(term, TouchpointTerm) and term.field == "channel":
            return (*self.scope.channels, "outbound")  # an unset channel means "outbound"
        return None


def _value_type(spec: AttributeSpec) -> str:
    if spec.type in (AttributeType.INT, AttributeType.NUMBER):
        return NUMBER
    if spec.type == AttributeType.BOOL:
        return BOOL
    return STRING


def _type_of(value: object) -> str:
    if isinstance(value, bool):
        return BOOL
    if isinstance(value, int | float):
        return NUMBER
    return STRING


def _a(type_name: str) -> str:
    return {"number": "a number", "bool": "true/false", "string": "text"}[type_name]


def _listing(values: tuple[str, ...] | list[str]) -> str:
    shown = ", ".join(f'"{v}"' for v in values[:8])
    return shown + (", ..." if len(values) > 8 else "")
