"""Hypothesis strategies for whole rule sets: schema, conditions as source text, YAML files.

The engine tests (`test_differential.py`, `test_compiler_fuzz.py`) need rule sets that
stress the compiler, not the bundled bank: a random profile schema, random well-typed
conditions over it (literals at numeric edges, tricky strings, every reference form,
nested logic), segments built on other segments, actions with engagement rules,
suppressions and weights. A rule set is generated as plain data (`RuleSetSource`), so the
fuzz tests can break it structurally before it becomes YAML text.

Ids may hold any number of underscores (`x_c_y`, `tags__0`): fact keys used to collide on
them. Windows are never `0d`, which the parser refuses. Number literals stay within
+-2**53: the loader refuses larger ones (not exact in both engines), so they belong to the
broken rule sets of test_compiler_fuzz.py.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import yaml
from hypothesis import strategies as st

from nba.authoring.strategies import AS_OF_SECONDS, OUTCOMES, literals
from nba.pipeline.validate import PROFILE_NUMBER_LIMIT
from nba.ruleset.conditions import OUTCOME_FUNCTIONS
from nba.ruleset.resolve import CountTerm, TouchpointTerm
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

# ---------------------------------------------------------------------------- names

# Underscores anywhere, doubled too: the shapes that once made two fact keys collide.
IDS = st.from_regex(r"\A[a-z][a-z0-9]{0,5}(_{1,2}[a-z0-9]{1,4}){0,2}\Z")
CHANNELS = ("web", "call_center", "email", "sms", "push")
DIRECTIONS = ("inbound", "outbound", "both")
ATTRIBUTE_TYPES = ("int", "number", "bool", "string", "enum", "set")
WINDOWS = ("1h", "90m", "1d", "7d", "30d", "90d", "365d")

# Strings that break naive quoting: quotes, backslashes, escapes, unicode, JSON syntax.
TRICKY_STRINGS = (
    "",
    " ",
    "O'Neil",
    'say "hi"',
    "back\\slash",
    "\\",
    '\\"',
    "tab\there",
    "line\nbreak",
    "café",
    "☃",
    "𝄞 clef",
    "\u00a0nbsp",
    "$and",
    '{"t": "f"}',
    "a,b",
    "\x00nul",
    "\x7fdel",
)
# Numbers at the edges of float formatting and of 32/53-bit integers.
EDGE_NUMBERS: tuple[int | float, ...] = (
    0,
    -0.0,
    1,
    -1,
    1e-7,
    -1e-7,
    2.5e-07,
    0.1,
    0.5,
    1.5,
    0.30000000000000004,
    1e-320,
    5e-324,
    1e15,
    9007199254740991.0,
    2**31 - 1,
    2**31,
    2**53,
    -(2**53),
    123456789,
)
MAX_EXACT = 2**53  # the largest literal magnitude the loader accepts


def texts(max_size: int = 8) -> st.SearchStrategy[str]:
    """Short text, tricky on purpose; no surrogates (Struct and YAML reject them)."""
    random = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=max_size)
    return st.one_of(st.sampled_from(TRICKY_STRINGS), random)


# ---------------------------------------------------------------------------- schema


@dataclass(frozen=True)
class Attribute:
    name: str
    type: str
    values: tuple[str, ...] = ()
    low: int | float | None = None
    high: int | float | None = None
    required: bool = False

    def spec(self, short: bool) -> Any:
        """The YAML value: `int` shorthand when nothing else is declared and `short`."""
        extra: dict[str, Any] = {}
        if self.values:
            extra["values"] = list(self.values)
        if self.low is not None:
            extra["min"] = self.low
        if self.high is not None:
            extra["max"] = self.high
        if self.required:
            extra["required"] = True
        return self.type if short and not extra else {"type": self.type, **extra}

    def holds(self, value: int | float) -> bool:
        return (self.low is None or value >= self.low) and (self.high is None or value <= self.high)


@dataclass(frozen=True)
class ActionDecl:
    id: str
    group: str
    purpose: str
    channels: tuple[str, ...]


@dataclass(frozen=True)
class Schema:
    attributes: tuple[Attribute, ...]
    stages: tuple[str, ...]
    channels: tuple[tuple[str, str], ...]  # (id, direction), in preference order
    actions: tuple[ActionDecl, ...]
    placements: tuple[str, ...]
    intents: tuple[str, ...]

    @property
    def channel_ids(self) -> tuple[str, ...]:
        return tuple(c for c, _ in self.channels)

    @property
    def groups(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(a.group for a in self.actions))


def _bounds(kind: str) -> st.SearchStrategy[tuple[Any, Any]]:
    if kind == "int":
        edge = st.one_of(st.none(), st.integers(-(2**40), 2**40), st.sampled_from([0, 18, 850]))
    else:
        edge = st.one_of(
            st.none(),
            st.sampled_from([0, 0.0, 1e-7, 1, 1e15]),  # within the validator's +-2**53
            st.floats(-1e12, 1e12, allow_nan=False, allow_infinity=False),
        )
    return st.tuples(edge, edge).map(_ordered)


def _ordered(bounds: tuple[Any, Any]) -> tuple[Any, Any]:
    """(low, high) ascending; equal bounds as one value, since sorting (0, -0.0) keeps
    that order and a strategy given min 0 and max -0.0 refuses them as inverted."""
    if None in bounds:
        return bounds
    low, high = sorted(bounds)
    return (low, low) if low == high else (low, high)


@st.composite
def attributes(draw: st.DrawFn, name: str, kind: str) -> Attribute:
    attr = Attribute(name, kind, required=draw(st.integers(0, 7)) == 0)
    if kind in ("enum", "set"):
        values = draw(st.lists(texts(10).filter(bool), min_size=1, max_size=4, unique=True))
        return replace(attr, values=tuple(v[:64] for v in dict.fromkeys(v[:64] for v in values)))
    if kind in ("int", "number"):
        low, high = draw(_bounds(kind))
        return replace(attr, low=low, high=high)
    return attr


@st.composite
def schemas(draw: st.DrawFn) -> Schema:
    names = draw(st.lists(IDS, min_size=2, max_size=9, unique=True))
    kinds = [*ATTRIBUTE_TYPES, *draw(st.lists(st.sampled_from(ATTRIBUTE_TYPES), max_size=3))]
    attrs = tuple(draw(attributes(n, k)) for n, k in zip(names, kinds, strict=False))
    stages = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    channel_ids = draw(st.lists(st.sampled_from(CHANNELS), min_size=1, max_size=3, unique=True))
    channels = tuple((c, draw(st.sampled_from(DIRECTIONS))) for c in channel_ids)
    groups = draw(st.lists(IDS, min_size=1, max_size=3, unique=True))
    action_ids = draw(st.lists(IDS, min_size=1, max_size=4, unique=True))
    actions = tuple(
        ActionDecl(
            a,
            draw(st.sampled_from(groups)),
            draw(st.sampled_from(("marketing", "service"))),
            tuple(draw(st.lists(st.sampled_from(channel_ids), min_size=1, unique=True))),
        )
        for a in action_ids
    )
    placements = tuple(draw(st.lists(texts(), max_size=2, unique=True)))
    intents = tuple(draw(st.lists(texts(), max_size=3, unique=True)))
    return Schema(attrs, tuple(stages), channels, actions, placements, intents)


# ---------------------------------------------------------------------------- literals


@st.composite
def render_number(draw: st.DrawFn, value: int | float) -> str:
    """`value` as condition text, in one of the forms that parse back to the same number."""
    if isinstance(value, int):
        forms = [str(value)]
        if abs(value) <= MAX_EXACT:
            forms.append(f"{value}.0")
        return draw(st.sampled_from(forms))
    fixed = format(Decimal(repr(value)), "f")
    if "." not in fixed:  # 1e+20 -> "100000000000000000000" would be an int literal
        fixed += ".0"
    forms = [repr(value), repr(value).upper(), f"{value:.17e}", fixed]
    return draw(st.sampled_from(forms))


def number_literals(attr: Attribute | None = None) -> st.SearchStrategy[int | float]:
    edges = list(EDGE_NUMBERS)
    if attr is not None:
        edges += [b + d for b in (attr.low, attr.high) if b is not None for d in (-1, 0, 1)]
    return st.one_of(
        st.sampled_from([e for e in edges if abs(e) <= MAX_EXACT]),
        st.integers(-MAX_EXACT, MAX_EXACT),
        st.floats(-MAX_EXACT, MAX_EXACT),
    )


@st.composite
def render_string(draw: st.DrawFn, value: str) -> str:
    """A quoted string literal of the condition language, escaping what it must."""
    quote = draw(st.sampled_from(['"', "'"]))
    other = "'" if quote == '"' else '"'
    escape_other = draw(st.booleans())  # `\'` inside "..." is legal and means `'`
    escape_tab = draw(st.booleans())
    out = []
    for ch in value:
        if ch in ("\\", quote) or (ch == other and escape_other):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t" and escape_tab:
            out.append("\\t")
        else:
            out.append(ch)
    return quote + "".join(out) + quote


# ---------------------------------------------------------------------------- conditions


@dataclass(frozen=True)
class Context:
    """What a condition may name where it is written."""

    schema: Schema
    segments: tuple[str, ...] = ()  # segments defined before this one (no cycles)
    this_action: str | None = None


SPACES = st.sampled_from([" ", " ", " ", "  ", "\t", "\u00a0"])  # `\s` is unicode in the lexer


@st.composite
def _list_of(draw: st.DrawFn, items: st.SearchStrategy[str]) -> str:
    rendered = draw(st.lists(items, min_size=1, max_size=3))
    return "[" + ", ".join(rendered) + "]"


@st.composite
def _number_leaf(draw: st.DrawFn, term: str, attr: Attribute | None) -> str:
    lit = render_number
    shape = draw(st.sampled_from(("cmp", "mirrored", "between", "in", "not in")))
    nums = number_literals(attr)
    if shape == "between":
        low, high = sorted([draw(nums), draw(nums)])
        return f"{term} between {draw(lit(low))} and {draw(lit(high))}"
    if shape in ("in", "not in"):
        return f"{term} {shape} {draw(_list_of(nums.flatmap(lit)))}"
    op = draw(st.sampled_from(("==", "!=", "<", "<=", ">", ">=")))
    value = draw(lit(draw(nums)))
    space = draw(SPACES)
    return f"{value}{space}{op}{space}{term}" if shape == "mirrored" else f"{term} {op} {value}"


@st.composite
def _string_leaf(draw: st.DrawFn, term: str, words: st.SearchStrategy[str]) -> str:
    shape = draw(st.sampled_from(("==", "!=", "in", "not in", "mirrored")))
    if shape in ("in", "not in"):
        return f"{term} {shape} {draw(_list_of(words.flatmap(render_string)))}"
    value = draw(words.flatmap(render_string))
    return f"{value} == {term}" if shape == "mirrored" else f"{term} {shape} {value}"


@st.composite
def _bool_leaf(draw: st.DrawFn, term: str) -> str:
    return draw(
        st.sampled_from(
            [term, f"not {term}", f"{term} == true", f"{term} == false", f"{term} != true"]
        )
    )


@st.composite
def _set_leaf(draw: st.DrawFn, attr: Attribute) -> str:
    value = draw(st.sampled_from(attr.values).flatmap(render_string))
    shape = draw(st.sampled_from(("in", "not in", "not (in)")))
    if shape == "not (in)":
        return f"not ({value} in profile.{attr.name})"
    return f"{value} {shape} profile.{attr.name}"


def profile_leaf(attr: Attribute) -> st.SearchStrategy[str]:
    term = f"profile.{attr.name}"
    if attr.type in ("int", "number"):
        return _number_leaf(term, attr)
    if attr.type == "bool":
        return _bool_leaf(term)
    if attr.type == "enum":
        return _string_leaf(term, st.sampled_from(attr.values))
    if attr.type == "set":
        return _set_leaf(attr)
    return _string_leaf(term, texts())


@st.composite
def count_term(draw: st.DrawFn, ctx: Context) -> str:
    schema = ctx.schema
    args = []
    if draw(st.booleans()):
        window = st.sampled_from(WINDOWS) | st.from_regex(r"\A[1-9][0-9]{0,3}[dhm]\Z")
        args.append(draw(window))
    scopes = ["any", "action", "group"] + (["this"] if ctx.this_action else [])
    scope = draw(st.sampled_from(scopes))
    if scope == "this":
        args.append("action=this")
    elif scope == "action":
        args.append(f'action="{draw(st.sampled_from([a.id for a in schema.actions]))}"')
    elif scope == "group":
        args.append(f'group="{draw(st.sampled_from(schema.groups))}"')
    if draw(st.booleans()):
        args.append(f'channel="{draw(st.sampled_from(schema.channel_ids))}"')
    return f"{draw(st.sampled_from(sorted(OUTCOME_FUNCTIONS)))}({', '.join(args)})"


@st.composite
def _count_leaf(draw: st.DrawFn, ctx: Context) -> str:
    term = draw(count_term(ctx))
    small = st.integers(-1, 4)
    shape = draw(st.sampled_from(("cmp", "cmp", "between", "in", "float")))
    if shape == "between":
        low, high = sorted([draw(small), draw(small)])
        return f"{term} between {low} and {high}"
    if shape == "in":
        return f"{term} in {draw(_list_of(small.map(str)))}"
    op = draw(st.sampled_from(("==", "!=", "<", "<=", ">", ">=")))
    value = draw(small)
    return f"{term} {op} {value}.0" if shape == "float" else f"{term} {op} {value}"


@st.composite
def _context_leaf(draw: st.DrawFn, ctx: Context) -> str:
    schema = ctx.schema
    kind = draw(st.sampled_from(("lifecycle", "channel", "placement", "intent")))
    if kind == "lifecycle":
        return draw(_string_leaf("lifecycle", st.sampled_from(schema.stages)))
    if kind == "channel":
        channels = st.sampled_from([*schema.channel_ids, "outbound"])  # "" is a load error
        return draw(_string_leaf("touchpoint.channel", channels))
    words = schema.placements if kind == "placement" else schema.intents
    pool = st.sampled_from(words) | texts() if words else texts()
    return draw(_string_leaf(f"touchpoint.{kind}", pool))


@st.composite
def leaves(draw: st.DrawFn, ctx: Context) -> str:
    options = ["profile", "profile", "profile", "context", "count"]
    if ctx.segments:
        options.append("segment")
    kind = draw(st.sampled_from(options))
    if kind == "profile":
        return draw(st.sampled_from(ctx.schema.attributes).flatmap(profile_leaf))
    if kind == "context":
        return draw(_context_leaf(ctx))
    if kind == "count":
        return draw(_count_leaf(ctx))
    return draw(_bool_leaf(f"segment.{draw(st.sampled_from(ctx.segments))}"))


@dataclass(frozen=True)
class Cond:
    """Condition text and its top operator, to know when parentheses can be left out."""

    text: str
    top: str  # leaf | not | and | or


def _wrap(item: Cond, parent: str, keep_parens: bool) -> str:
    # Leaving out parentheses only where precedence makes them redundant keeps the
    # meaning while giving the parser flat and nested shapes.
    tight = item.top in ("leaf", "not") or (parent == "or" and item.top == "and")
    return item.text if tight and not keep_parens else f"({item.text})"


@st.composite
def condition_trees(draw: st.DrawFn, ctx: Context, depth: int = 4) -> Cond:
    if depth <= 0 or draw(st.integers(0, 2)) == 0:
        if draw(st.integers(0, 40)) == 0:
            return Cond(draw(st.sampled_from(["true", "false"])), "leaf")
        return Cond(draw(leaves(ctx)), "leaf")
    kind = draw(st.sampled_from(("and", "or", "not")))
    if kind == "not":
        item = draw(condition_trees(ctx, depth - 1))
        text = "not " + _wrap(item, "not", item.top != "leaf" or draw(st.booleans()))
        return Cond(text, "not")
    items = draw(st.lists(condition_trees(ctx, depth - 1), min_size=2, max_size=3))
    joined = f" {kind} ".join(_wrap(i, kind, draw(st.integers(0, 3)) == 0) for i in items)
    return Cond(joined, kind)


def conditions(ctx: Context, depth: int = 4) -> st.SearchStrategy[str]:
    return condition_trees(ctx, depth).map(lambda c: c.text)


# ---------------------------------------------------------------------------- rule sets


@dataclass(frozen=True)
class RuleSetSource:
    """A generated rule set as data: sections split over files, and how to write YAML."""

    schema: Schema
    documents: tuple[tuple[str, dict[str, Any]], ...]  # (file name, sections)
    flow: bool = False
    unicode: bool = True

    def files(self) -> list[tuple[str, str]]:
        return [(name, self.dump(doc)) for name, doc in self.documents]

    def dump(self, doc: dict[str, Any]) -> str:
        return faithful_yaml(doc, flow=None if self.flow else False, unicode=self.unicode)


def faithful_yaml(value: Any, flow: bool | None, unicode: bool = True) -> str:
    """YAML text that reads back as `value`.

    PyYAML's emitter writes NEL (U+0085) raw with allow_unicode, and reads it back as a
    line break: such values are written with escapes instead.
    """
    for allow_unicode in dict.fromkeys((unicode, False)):
        text = yaml.safe_dump(
            value,
            sort_keys=False,
            allow_unicode=allow_unicode,
            default_flow_style=flow,
            width=10**6,  # no folding: a condition stays on one line
        )
        if yaml.safe_load(text) == value:
            break
    return text


@st.composite
def _engagement(draw: st.DrawFn, ctx: Context) -> Any:
    # Shallower than segments: an action's rules are also compiled as one conjunction.
    if draw(st.booleans()):
        return draw(conditions(ctx, depth=3))
    ids = draw(st.lists(IDS, min_size=1, max_size=2, unique=True))
    return [
        {"id": i, "when": draw(conditions(ctx, depth=2)), "reason": draw(texts(12))} for i in ids
    ]


@st.composite
def _action_entry(draw: st.DrawFn, decl: ActionDecl, ctx: Context) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": decl.id,
        "name": draw(texts(12)),
        "purpose": decl.purpose,
        "group": decl.group,
        "value": draw(st.sampled_from([1, 10, 0.5, 120, 1e-7])),
        "propensity": draw(st.sampled_from([1, 0.5, 0.05, 1e-7])),
        "treatments": {c: {"headline": draw(texts(12))} for c in decl.channels},
    }
    for stage in ("eligible", "applicable", "suitable"):
        if draw(st.integers(0, 2)) > 0:
            entry[stage] = draw(_engagement(replace(ctx, this_action=decl.id)))
    return entry


@st.composite
def _targets(draw: st.DrawFn, schema: Schema) -> dict[str, Any]:
    kind = draw(st.sampled_from(("actions", "groups", "purposes", "all")))
    if kind == "all":
        return {"all": True}
    pool = {
        "actions": [a.id for a in schema.actions],
        "groups": list(schema.groups),
        "purposes": ["marketing", "service"],
    }[kind]
    return {kind: draw(st.lists(st.sampled_from(pool), min_size=1, max_size=2, unique=True))}


@st.composite
def _rule_entry(draw: st.DrawFn, rule_id: str, ctx: Context) -> dict[str, Any]:
    entry: dict[str, Any] = {"id": rule_id, "when": draw(conditions(ctx, depth=3))}
    targets = draw(_targets(ctx.schema))
    if draw(st.booleans()):
        entry["suppress"] = targets
    else:
        entry["weight"] = {**targets, "factor": draw(st.sampled_from([0.5, 2, 3.0, 1e-7]))}
    entry["reason"] = draw(texts(12))
    return entry


DURATIONS = st.sampled_from(["1h", "90m", "1d", "7d", "30d"])
OUTCOME_NAMES = ("impression", "click", "accept", "dismiss", "reject", "complaint")


@st.composite
def policies(draw: st.DrawFn, schema: Schema) -> dict[str, Any]:
    """Contact policies: the engines share them, the loader checks their names."""
    channels = st.sampled_from(schema.channel_ids)
    cap = {
        "id": "cap1",
        "max": draw(st.integers(0, 3)),
        "within": draw(DURATIONS),
        "channel": draw(channels),
        "groups": [draw(st.sampled_from(schema.groups))],
        "outcomes": draw(st.lists(st.sampled_from(OUTCOME_NAMES), min_size=1, unique=True)),
        "each": draw(st.sampled_from(("customer", "action", "group"))),
    }
    cooldown = {
        "id": "cool1",
        "outcome": draw(st.sampled_from(OUTCOME_NAMES)),
        "count": draw(st.integers(1, 3)),
        "within": draw(DURATIONS),
        "pause": draw(DURATIONS),
    }
    return {
        "consent": {"stored": draw(st.booleans())},
        "caps": [cap],
        "cooldowns": [cooldown],
        "complaint_pause": {"pause": draw(DURATIONS), "purposes": ["marketing"]},
        "quiet_hours": [
            {"id": "nights", "channels": [draw(channels)], "start": "21:00", "end": "08:00"}
        ],
    }


@st.composite
def _sections(draw: st.DrawFn, schema: Schema) -> dict[str, Any]:
    short = draw(st.booleans())
    sections: dict[str, Any] = {
        "ruleset": {"name": draw(texts(10)), "time_zone": "Europe/London"},
        "lifecycle_stages": list(schema.stages),
        "profile": {a.name: a.spec(short) for a in schema.attributes},
        "channels": [{"id": c, "direction": d} for c, d in schema.channels],
    }
    segment_ids = draw(st.lists(IDS, max_size=4, unique=True))
    sections["segments"] = [
        {"id": s, "when": draw(conditions(Context(schema, tuple(segment_ids[:i]))))}
        for i, s in enumerate(segment_ids)
    ]
    ctx = Context(schema, tuple(segment_ids))
    sections["actions"] = [draw(_action_entry(a, ctx)) for a in schema.actions]
    rule_ids = draw(st.lists(IDS, max_size=3, unique=True))
    sections["rules"] = [draw(_rule_entry(r, ctx)) for r in rule_ids]
    sections["levers"] = [
        {"id": lever, "groups": [draw(st.sampled_from(schema.groups))], "factor": 1.3}
        for lever in draw(st.lists(IDS, max_size=2, unique=True))
    ]
    if draw(st.integers(0, 3)) == 0:
        sections["policies"] = draw(policies(schema))
    first = schema.actions[0]
    sections["fallbacks"] = [{"action": first.id, "channel": first.channels[0]}]
    sections["arbitration"] = {"max_results": draw(st.integers(1, 5)), "max_per_group": 0}
    return {k: v for k, v in sections.items() if v != []}


@st.composite
def _split(draw: st.DrawFn, sections: dict[str, Any]) -> tuple[tuple[str, dict[str, Any]], ...]:
    """Spread sections (and the entries of list sections) over one to three files."""
    count = draw(st.integers(1, 3))
    docs: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, value in sections.items():
        if isinstance(value, list) and name != "lifecycle_stages" and count > 1:
            for item in value:
                docs[draw(st.integers(0, count - 1))].setdefault(name, []).append(item)
        else:
            docs[draw(st.integers(0, count - 1))][name] = value
    return tuple((f"rules/part{i}.yaml", doc) for i, doc in enumerate(docs))


@st.composite
def rule_sets(draw: st.DrawFn) -> RuleSetSource:
    """A well-formed rule set: it must load (durable_rules may still find it too wide)."""
    schema = draw(schemas())
    documents = draw(_split(draw(_sections(schema))))
    return RuleSetSource(schema, documents, flow=draw(st.booleans()), unicode=draw(st.booleans()))


# ---------------------------------------------------------------------------- requests


def _near_number(attr: Attribute, near: set[Any]) -> st.SearchStrategy[int | float]:
    """Values at, just below and just above every literal the rules compare with."""
    edges: set[int | float] = set()
    for v in near:
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue
        edges |= {v, v - 1, v + 1, math.nextafter(v, -math.inf), math.nextafter(v, math.inf)}
    if attr.type == "int":
        ints = {int(e) for e in edges if float(e).is_integer() and abs(e) < MAX_EXACT}
        low = attr.low if attr.low is not None else -(2**40)
        high = attr.high if attr.high is not None else 2**40
        spread: st.SearchStrategy[Any] = st.integers(math.ceil(low), math.floor(high))
        candidates = sorted(v for v in ints if attr.holds(v))
    else:
        # A request may carry no number beyond the validator's limit (an attribute without
        # its own min / max): what lies beyond it is INVALID_ARGUMENT, not a decision.
        low = attr.low if attr.low is not None else -PROFILE_NUMBER_LIMIT
        high = attr.high if attr.high is not None else PROFILE_NUMBER_LIMIT
        spread = st.floats(low, high, allow_nan=False, allow_infinity=False)
        candidates = sorted(
            (v for v in edges if math.isfinite(v) and low <= v <= high and attr.holds(v)),
            key=lambda v: (v, str(v)),
        )
    return st.one_of(st.sampled_from(candidates), spread) if candidates else spread


def _profile_value(attr: Attribute, near: set[Any]) -> st.SearchStrategy[Any]:
    if attr.type in ("int", "number"):
        return _near_number(attr, near)
    if attr.type == "bool":
        return st.booleans()
    if attr.type == "enum":
        return st.sampled_from(attr.values)
    if attr.type == "set":
        return st.lists(st.sampled_from(attr.values), unique=True)
    words = sorted(v for v in near if isinstance(v, str))
    return st.sampled_from(words) | texts() if words else texts()


@st.composite
def customer_profiles(draw: st.DrawFn, schema: Schema, ruleset: RuleSet) -> dict[str, Any]:
    """A profile with some attributes missing (each optional one: one time in three)."""
    near = literals(ruleset)
    profile: dict[str, Any] = {}
    for attr in schema.attributes:
        if not attr.required and draw(st.integers(0, 2)) == 0:
            continue
        profile[attr.name] = draw(_profile_value(attr, near.get(f"p_{attr.name}", set())))
    return profile


def _window_ages(ruleset: RuleSet) -> list[int]:
    """Ages (seconds before as_of) on each window's edge: just in, on it, just out."""
    windows = {t.window_seconds for t in ruleset.terms.values() if isinstance(t, CountTerm)}
    return sorted({w + d for w in windows if w for d in (-1, 0, 1)} | {0, -1, -86400})


@st.composite
def interactions(draw: st.DrawFn, schema: Schema, ruleset: RuleSet) -> list[pb.Interaction]:
    actions = [a.id for a in schema.actions] + ["retired"]
    channels = [*schema.channel_ids, "", "kiosk"]
    ages = st.sampled_from(_window_ages(ruleset)) | st.integers(-86400, 400 * 86400)
    items = []
    for _ in range(draw(st.integers(0, 10))):
        item = pb.Interaction(
            action_id=draw(st.sampled_from(actions)),
            channel=draw(st.sampled_from(channels)),
            outcome=draw(st.sampled_from(OUTCOMES)),
        )
        item.at.seconds = AS_OF_SECONDS - draw(ages)
        item.at.nanos = draw(st.sampled_from([0, 0, 1, 500_000_000, 999_999_999]))
        items.append(item)
    return items


def _touchpoint_words(ruleset: RuleSet, name: str, schema_words: tuple[str, ...]) -> list[str]:
    found = literals(ruleset).get(TouchpointTerm(name).key, set())
    return sorted({str(v) for v in found} | set(schema_words) | {""})


@st.composite
def requests(draw: st.DrawFn, schema: Schema, ruleset: RuleSet) -> pb.DecideRequest:
    """A valid DecideRequest: any stage, touchpoint, partial profile, history near windows."""
    channels = list(schema.channel_ids)
    message = pb.DecideRequest(
        customer_id="c-1",
        lifecycle_stage=draw(st.sampled_from(schema.stages)),
        max_results=draw(st.integers(0, 4)),
        explain=draw(st.booleans()),
    )
    message.profile.update(draw(customer_profiles(schema, ruleset)))
    message.touchpoint.channel = draw(st.sampled_from([*channels, "outbound", ""]))
    placements = _touchpoint_words(ruleset, "placement", schema.placements)
    message.touchpoint.placement = draw(st.sampled_from(placements) | texts())
    intents = _touchpoint_words(ruleset, "intent", schema.intents)
    message.touchpoint.intent = draw(st.sampled_from(intents) | texts())
    message.interactions.extend(draw(interactions(schema, ruleset)))
    message.consent.update(draw(st.dictionaries(st.sampled_from(channels), st.booleans())))
    message.as_of.seconds = AS_OF_SECONDS
    message.as_of.nanos = draw(st.sampled_from([0, 0, 1, 250_000_000]))
    return message
