"""Hypothesis-generated rule files, well-formed and broken, through the loader and compiler.

A rule author only ever sees `RuleSetError`: every problem, each at file:line:column with
what was expected. So for any text at all, the loader either returns a rule set that
durable_rules compiles, or raises RuleSetError whose errors all point inside the given
files; nothing else escapes (no traceback, no other exception). The broken files are
mutations of well-formed ones: characters deleted, duplicated, swapped, truncated lines,
wrong indentation, misspelt keys, wrong types, damaged conditions, duplicate ids and
references to names that do not exist.

The regression tests at the end pin the bugs these properties found (deep nesting, YAML
values that cannot be built, unlocated or vague errors, errors at the wrong place): each
failed before its fix.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, currently_in_test_context, given, settings
from hypothesis import event as hypothesis_event
from hypothesis import strategies as st

from nba.engine.durable import DurableEngine
from nba.errors import RuleError, RuleSetError
from nba.ruleset.conditions import OUTCOME_FUNCTIONS, ConditionSyntaxError, parse
from nba.ruleset.loader import load_documents
from tests.rule_strategies import RuleSetSource, rule_sets

SETTINGS = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
MARK = "zzmark"  # a name no generated rule set uses: the error must point at its line

EXPECTED = re.compile(r"\bexpected\b")


# ---------------------------------------------------------------------------- checks


def event(text: str) -> None:
    """A statistic for --hypothesis-show-statistics; the regressions below run outside."""
    if currently_in_test_context():
        hypothesis_event(text)


# YAML's line breaks (str.splitlines also breaks at \x1c-\x1e, \x0b and \x0c, which YAML
# and editors keep inside a line, so it would misplace columns after such a character).
YAML_LINE_BREAK = re.compile("\r\n|[\n\r\x85\u2028\u2029]")


def yaml_lines(text: str) -> list[str]:
    """The lines of a file as YAML numbers them, without a last empty one (as splitlines)."""
    lines = YAML_LINE_BREAK.split(text)
    return lines[:-1] if lines and lines[-1] == "" else lines


def line_count(text: str) -> int:
    """Lines an error may point at: YAML marks the line after a final newline, too."""
    return len(yaml_lines(text)) + 1


def check_errors(errors: list[RuleError], files: list[tuple[str, str]]) -> None:
    """Every error is located inside the given files and says what was wrong."""
    texts = dict(files)
    assert errors, "RuleSetError without errors"
    for error in errors:
        assert error.message.strip(), error
        assert error.location is not None, f"unlocated: {error}"
        where = error.location
        assert where.file in texts, f"{error} names a file that was not given"
        assert 1 <= where.line <= line_count(texts[where.file]), f"{error}: line out of range"
        assert where.column >= 1, f"{error}: column out of range"
        lines = yaml_lines(texts[where.file])
        if where.line <= len(lines):  # at most just past the end of its line
            assert where.column <= len(lines[where.line - 1]) + 1, f"{error}: column past end"
        assert says_what_was_expected(error), f"vague: {error}"


def says_what_was_expected(error: RuleError) -> bool:
    # A word of its own: "unexpected character" says what was found, not what was expected.
    return bool(EXPECTED.search(error.message) or error.hint)


def load_or_errors(files: list[tuple[str, str]]) -> bool:
    """Load (and compile) the files; True when they load. Raises on anything but errors."""
    try:
        ruleset = load_documents(files)
    except RuleSetError as exc:
        check_errors(exc.errors, files)
        return False
    try:
        DurableEngine(ruleset)
    except RuleSetError as exc:
        assert {e.code for e in exc.errors} == {"too-complex"}, exc.report()
        check_errors(exc.errors, files)
    return True


# ---------------------------------------------------------------------------- (a) well-formed


@SETTINGS
@given(rule_sets())
def test_well_formed_rule_sets_load_and_compile(source: RuleSetSource) -> None:
    files = source.files()
    ruleset = load_documents(files)  # well-formed: any RuleSetError is a bug (or ours)
    assert set(ruleset.files) == {name for name, _ in files}
    try:
        DurableEngine(ruleset)
    except RuleSetError as exc:  # a condition too wide: refused, located, explained
        assert {e.code for e in exc.errors} == {"too-complex"}
        check_errors(exc.errors, files)
        event("too complex")


# ---------------------------------------------------------------------------- (b) broken files

Docs = list[tuple[str, dict[str, Any]]]


def condition_paths(docs: Docs) -> list[tuple[int, tuple[Any, ...]]]:
    """(document index, path) of every condition string in the documents."""
    found = []
    for d, (_, doc) in enumerate(docs):
        for section in ("segments", "rules"):
            found += [(d, (section, i, "when")) for i in range(len(doc.get(section, [])))]
        for i, action in enumerate(doc.get("actions", [])):
            for stage in ("eligible", "applicable", "suitable"):
                value = action.get(stage)
                if isinstance(value, str):
                    found.append((d, ("actions", i, stage)))
                elif isinstance(value, list):
                    found += [(d, ("actions", i, stage, j, "when")) for j in range(len(value))]
    return found


def all_paths(node: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path into a document (mapping keys and list indexes)."""
    out = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            out += all_paths(value, (*path, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += all_paths(value, (*path, i))
    return out


def get(node: Any, path: tuple[Any, ...]) -> Any:
    for part in path:
        node = node[part]
    return node


def put(node: Any, path: tuple[Any, ...], value: Any) -> None:
    get(node, path[:-1])[path[-1]] = value


# Additions to a condition that name something undeclared; each must be an error at MARK.
UNKNOWN_NAMES = (
    f" and segment.{MARK}",
    f" and profile.{MARK} == 1",
    f' or impressions(group="{MARK}") > 0',
    f' or clicks(7d, action="{MARK}") > 0',
    f' or accepts(channel="{MARK}") > 0',
    f' and lifecycle == "{MARK}"',
    f' and touchpoint.channel != "{MARK}"',
    f" and {MARK}.x",
    f" and {MARK}(7d) > 1",
)
# Damage that must be a syntax error somewhere in the condition.
SYNTAX_DAMAGE = (
    " and (",
    "(",
    ")",
    ' and "unterminated',
    " and impressions(7x) > 0",
    " and impressions(30d, 30d) > 0",
    " and dismissals(action=) > 0",
    " and profile = 1",
    " and and",
    " between 1",
    " in []",
    " #",
)


@st.composite
def broken_references(draw: st.DrawFn, docs: Docs) -> Docs:
    """A reference to an undeclared segment, attribute, action, group, channel or stage."""
    conditions = condition_paths(docs)
    kind = draw(st.sampled_from(["condition", "target", "fallback", "treatment", "cap"]))
    if kind == "condition" and conditions:
        d, path = draw(st.sampled_from(conditions))
        text = get(docs[d][1], path)
        put(docs[d][1], path, f"({text}){draw(st.sampled_from(UNKNOWN_NAMES))}")
        return docs
    d = draw(st.integers(0, len(docs) - 1))
    doc = docs[d][1]
    if kind == "target":
        rule = {"id": MARK, "when": "true", "suppress": {"groups": [MARK]}}
        doc.setdefault("rules", []).append(rule)
    elif kind == "fallback":
        doc.setdefault("fallbacks", []).append({"action": MARK})
    elif kind == "treatment":
        action = draw(st.sampled_from([a for _, other in docs for a in other.get("actions", [])]))
        action["treatments"][MARK] = {"headline": "h"}
    else:  # into the one policies section there may be: a second one is another error
        holder = next((other for _, other in docs if "policies" in other), doc)
        policies = holder.setdefault("policies", {})
        policies["caps"] = [*policies.get("caps", []), {"id": MARK, "max": 1, "within": "1d"}]
        policies["caps"][-1]["channel"] = MARK
    return docs


@st.composite
def damaged_conditions(draw: st.DrawFn, docs: Docs) -> Docs:
    paths = condition_paths(docs)
    if not paths:  # a rule set without conditions: damage a new one
        docs[0][1].setdefault("segments", []).append({"id": MARK, "when": "true"})
        paths = condition_paths(docs)
    d, path = draw(st.sampled_from(paths))
    text = get(docs[d][1], path)
    damage = draw(st.sampled_from(SYNTAX_DAMAGE))
    put(docs[d][1], path, damage + text if damage == "(" else text + damage)
    return docs


@st.composite
def duplicate_ids(draw: st.DrawFn, docs: Docs) -> Docs:
    """An entry copied into the same or another file: two entries with one id."""
    entries = [
        (section, item)
        for _, doc in docs
        for section in ("channels", "segments", "actions", "rules", "levers")
        for item in doc.get(section, [])
    ]
    section, item = draw(st.sampled_from(entries))
    target = draw(st.integers(0, len(docs) - 1))
    docs[target][1].setdefault(section, []).append(copy.deepcopy(item))
    return docs


WRONG_VALUES = (None, 3, -1, 1.5, True, "", "x y", [], {}, ["a"], {"a": 1}, "7x", "0d")


@st.composite
def wrong_types(draw: st.DrawFn, docs: Docs) -> Docs:
    d = draw(st.integers(0, len(docs) - 1))
    paths = [p for p in all_paths(docs[d][1]) if p]
    if paths:
        put(docs[d][1], draw(st.sampled_from(paths)), draw(st.sampled_from(WRONG_VALUES)))
    return docs


@st.composite
def misspelt_keys(draw: st.DrawFn, docs: Docs) -> Docs:
    d = draw(st.integers(0, len(docs) - 1))
    keyed = [p for p in all_paths(docs[d][1]) if p and isinstance(p[-1], str)]
    if keyed:
        path = draw(st.sampled_from(keyed))
        parent = get(docs[d][1], path[:-1])
        key = path[-1]
        typo = draw(st.sampled_from([key[:-1], key + "s", key[1:] + key[0], key.upper()]))
        if typo and typo not in parent:
            parent[typo] = parent.pop(key)
    return docs


@st.composite
def missing_sections(draw: st.DrawFn, docs: Docs) -> Docs:
    section = draw(st.sampled_from(["channels", "actions", "lifecycle_stages", "profile"]))
    for _, doc in docs:
        doc.pop(section, None)
    return docs


# Structured mutations, and whether the result must be refused.
STRUCTURED: dict[str, tuple[Callable[[Docs], st.SearchStrategy[Docs]], bool]] = {
    "broken reference": (broken_references, True),
    "damaged condition": (damaged_conditions, True),
    "duplicate id": (duplicate_ids, True),
    "wrong type": (wrong_types, False),
    "misspelt key": (misspelt_keys, False),
    "missing section": (missing_sections, False),  # `profile` may go unused
}


@SETTINGS
@given(rule_sets(), st.sampled_from(sorted(STRUCTURED)), st.data())
def test_broken_rule_sets_are_refused_with_located_errors(
    source: RuleSetSource, kind: str, data: st.DataObject
) -> None:
    mutate, must_fail = STRUCTURED[kind]
    docs = data.draw(mutate(copy.deepcopy(list(source.documents))), kind)
    files = [(name, source.dump(doc)) for name, doc in docs]
    event(kind)
    try:
        load_documents(files)
    except RuleSetError as exc:
        check_errors(exc.errors, files)
        if kind == "broken reference":
            assert_points_at_mark(exc.errors, files)
        return
    assert not must_fail, f"{kind} was accepted"


def assert_points_at_mark(errors: list[RuleError], files: list[tuple[str, str]]) -> None:
    """Some error is on the line of the undeclared name, and names it (or a near one)."""
    texts = {name: yaml_lines(text) for name, text in files}
    lines = []
    for error in errors:
        if error.location is None or error.location.line > len(texts[error.location.file]):
            continue
        lines.append(texts[error.location.file][error.location.line - 1])
    assert any(MARK in line for line in lines), [str(e) for e in errors]


# Characters that mean something to YAML or to the condition language.
SIGNIFICANT = ":-[]{}#&*!|>'\"%@`,?()\\\t\n =<"


@st.composite
def text_mutations(draw: st.DrawFn, text: str) -> str:
    """One edit of the kind a hurried author makes, anywhere in the file."""
    if not text:
        return draw(st.text(max_size=5))
    kind = draw(st.sampled_from(["delete", "dup", "swap", "insert", "truncate", "indent", "line"]))
    i = draw(st.integers(0, len(text) - 1))
    if kind == "delete":
        return text[:i] + text[i + 1 :]
    if kind == "dup":
        return text[: i + 1] + text[i:]
    if kind == "swap" and i + 1 < len(text):
        return text[:i] + text[i + 1] + text[i] + text[i + 2 :]
    if kind == "insert":
        char = draw(st.sampled_from(SIGNIFICANT) | st.characters(codec="utf-8"))
        return text[:i] + char + text[i:]
    if kind == "truncate":
        return text[:i]
    lines = text.split("\n")
    j = draw(st.integers(0, len(lines) - 1))
    if kind == "indent":
        lines[j] = draw(st.sampled_from([" ", "  ", "\t"])) + lines[j]
    else:
        action = draw(st.sampled_from(["drop", "dup", "dedent"]))
        if action == "drop":
            del lines[j]
        elif action == "dup":
            lines.insert(j, lines[j])
        else:
            lines[j] = lines[j].lstrip()
    return "\n".join(lines)


@SETTINGS
@given(rule_sets(), st.data())
def test_typos_in_rule_files_never_escape_as_exceptions(
    source: RuleSetSource, data: st.DataObject
) -> None:
    files = source.files()
    for _ in range(data.draw(st.integers(1, 3), "edits")):
        k = data.draw(st.integers(0, len(files) - 1))
        name, text = files[k]
        files[k] = (name, data.draw(text_mutations(text)))
    event("loaded" if load_or_errors(files) else "refused")


# ---------------------------------------------------------------------------- (c) the parser


def check_parse(text: str) -> None:
    try:
        parse(text)
    except ConditionSyntaxError as exc:
        assert 0 <= exc.offset <= len(text), (exc.offset, len(text))
        assert exc.message


@settings(max_examples=1000, deadline=None)
@given(st.text())
def test_the_parser_raises_only_located_syntax_errors(text: str) -> None:
    check_parse(text)


TOKENS = (
    *("and", "or", "not", "in", "between", "true", "false", "this"),
    *("profile", "segment", "lifecycle", "touchpoint", ".", "x", "(", ")", "[", "]", ","),
    *("==", "!=", "<", "<=", ">", ">=", "=", "1", "-2.5", "1e-7", ".5", "1.", "7d", "0d"),
    *('"s"', "'s'", '"a\\"b"', '"\\q"', '"', "'", "\\", "action", "group", "channel"),
    *OUTCOME_FUNCTIONS,
)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=25), st.sampled_from([" ", "", "\n"]))
def test_token_soup_raises_only_located_syntax_errors(tokens: list[str], sep: str) -> None:
    """Near-miss conditions built from real tokens: deeper into the grammar than st.text."""
    check_parse(sep.join(tokens))


# ---------------------------------------------------------------------------- regressions

GOOD = """\
lifecycle_stages: [active]
profile: {n: number, tags: {type: set, values: [a]}}
channels: [{id: web, direction: inbound}]
actions: [{id: a1, purpose: marketing, group: g1, treatments: {web: {}}}]
"""


def load_errors(text: str) -> list[RuleError]:
    """The errors of one file `r.yaml`; fails when it loads or raises anything else."""
    with pytest.raises(RuleSetError) as caught:
        load_documents([("r.yaml", text)])
    check_errors(caught.value.errors, [("r.yaml", text)])
    return caught.value.errors


@pytest.mark.parametrize(
    "condition",
    ["profile.n < 1e999", "impressions() < 1e999", "profile.n > -1e999"],
)
def test_infinite_literals_are_refused(condition: str) -> None:
    """Were: OverflowError from the loader; "inf" in the JSON (durable_rules error 202)."""
    (error,) = load_errors(GOOD + f"segments: [{{id: s, when: '{condition}'}}]\n")
    assert error.location is not None and error.location.line == 5


def test_deeply_nested_conditions_are_a_located_error() -> None:
    condition = "(" * 400 + "true" + ")" * 400  # 800 characters, well under max_length
    load_errors(GOOD + f"segments: [{{id: s, when: '{condition}'}}]\n")


def test_the_parser_survives_deep_nesting() -> None:
    check_parse("(" * 2000)


@pytest.mark.parametrize(
    "line",
    [
        "ruleset: {description: !foo bar}",  # ConstructorError: unknown tag
        "ruleset: {description: !!int abc}",  # ValueError
        "ruleset: {description: !!timestamp abc}",  # AttributeError
        "ruleset: {description: &x [*x]}",  # RecursionError: an alias cycle
    ],
)
def test_yaml_values_that_cannot_be_built_are_located_errors(line: str) -> None:
    load_errors(GOOD + line + "\n")


def test_a_missing_section_error_has_a_location() -> None:
    for error in load_errors("lifecycle_stages: [active]\n"):
        assert error.location is not None, error


def test_a_set_test_needs_a_profile_attribute() -> None:
    (error,) = load_errors(GOOD + "segments: [{id: s, when: '\"a\" in segment.tags'}]\n")
    assert error.code == "type"


@pytest.mark.parametrize(
    "text",
    [
        GOOD + "segments: [{id: s, when: 'profile.n > 1 # note'}]\n",
        GOOD.replace("[active]", "[active, active]"),
        GOOD.replace("{}}}]", "{}}, eligible: [{id: r, when: 'true'}, {id: r, when: 'true'}]}]"),
        GOOD + "policies: {cooldowns: [{id: c, outcome: dismiss, within: 1d, pause: 1d},"
        " {id: c, outcome: dismiss, within: 1d, pause: 1d}]}\n",
        GOOD + 'segments: [{id: s, when: \'clicks(action="a1", action="a1") > 0\'}]\n',
        GOOD + 'segments: [{id: s, when: \'clicks(action="a1", group="g1") > 0\'}]\n',
        GOOD.replace("{n: number,", "{N: number,"),
        GOOD + "rules: [{id: r, when: 'true'}]\n",
    ],
)
def test_messages_say_what_was_expected(text: str) -> None:
    for error in load_errors(text):
        assert says_what_was_expected(error), error


def test_an_unknown_treatment_channel_points_at_its_key() -> None:
    text = GOOD + "  - id: a2\n    purpose: service\n    group: g1\n    treatments:\n"
    text = text.replace("treatments: {web: {}}}]\n", "treatments: {web: {}}}\n")
    text = text.replace("actions: [", "actions:\n  - ").replace("\n  - {id: a1", "\n  - {id: a1")
    text += f"      {MARK}:\n        headline: h\n"
    (error,) = load_errors(text)
    assert error.location is not None
    assert MARK in yaml_lines(text)[error.location.line - 1], error


def test_a_bad_lifecycle_stage_is_located_at_the_stage() -> None:
    text = GOOD.replace("lifecycle_stages: [active]", "lifecycle_stages:\n  - active\n  - Lapsed")
    (error,) = load_errors(text)
    assert str(error.location) == "r.yaml:3:5"
    assert error.message.startswith("lifecycle_stages[1]")


@pytest.mark.parametrize(
    "text",
    [
        GOOD.replace("group: g1, ", ""),  # Field required
        GOOD.replace("purpose: marketing", "purpose: 3"),  # Input should be ...
        GOOD + "arbitration: {max_results: many}\n",  # Input should be a valid integer
    ],
)
def test_schema_messages_say_what_was_expected(text: str) -> None:
    for error in load_errors(text):
        assert says_what_was_expected(error), error


def test_a_control_character_is_located_where_it_is() -> None:
    """PyYAML's ReaderError is not a MarkedYAMLError: it has .position, not a mark."""
    (error,) = load_errors(GOOD + "ruleset: {description: bad \x88 byte}\n")
    assert str(error.location) == "r.yaml:5:28"  # 27 characters come before it
    assert "<unicode string>" not in error.message


@pytest.mark.parametrize("line_break", ["\r", "\x85", "\u2028"])
def test_a_control_character_after_any_yaml_line_break_is_located(line_break: str) -> None:
    """Regression (found by the typo fuzzer): the location of an unreadable character
    counted only \\n as a line break, while YAML also breaks lines at a lone \\r, NEL
    and U+2028; and libyaml gives its position in UTF-8 bytes, not characters. The error
    pointed past the end of a line."""
    (error,) = load_errors(GOOD + f"ruleset:{line_break} {{description: x\x1e}}\n")
    assert str(error.location) == "r.yaml:6:17"  # after " {description: x", on line 6
    assert "U+001E" in error.message


def test_a_date_like_value_is_just_text() -> None:
    """Regression: `2001-02-30` was built as a date by PyYAML and raised ValueError."""
    ruleset = load_documents([("r.yaml", GOOD + "ruleset: {description: 2001-02-30}\n")])
    assert ruleset.meta.description == "2001-02-30"
