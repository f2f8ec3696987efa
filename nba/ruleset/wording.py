"""A resolved condition rendered in plain words, for people who never read the rule files.

    accepts(action=this) == 0                -> has not accepted this offer
    rejections(90d, action=this) == 0        -> has not rejected this offer in the last 90 days
    not ("checking" in profile.products)     -> does not have checking in products
    lifecycle in ["prospect", "onboarding"]  -> is in the prospect or onboarding stage
    profile.monthly_income >= 1500           -> monthly income is at least 1,500

The subject is the customer ("has", "is in"), or the attribute named ("age is ..."). A
call-center agent reads these when a rule author wrote no `because:` sentence, so they must
never fall back to raw syntax. Negation is pushed to the leaves (De Morgan) and stays
truthful about missing attributes: `not (profile.days_past_due > 0)` also holds when the
value is unknown, so it reads "days past due is not more than 0", never "is at most 0".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from nba.ruleset.resolve import (
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
    TouchpointTerm,
)

# An ordering as words, and its opposite (the negation of a count, never missing, is exact).
ORDER_WORDS = {
    ">=": "at least",
    ">": "more than",
    "<=": "at most",
    "<": "less than",
    "==": "",
    "!=": "not",
}
OPPOSITE = {"==": "!=", "!=": "==", "<": ">=", ">=": "<", ">": "<=", "<=": ">"}
# What a customer did, per history function: "has {verb} this offer".
OUTCOME_VERBS = {
    "IMPRESSION": "been shown",
    "CLICK": "clicked",
    "ACCEPT": "accepted",
    "DISMISS": "dismissed",
    "REJECT": "rejected",
    "COMPLAINT": "complained about",
}
TOUCHPOINT_NAMES = {"channel": "contact channel", "placement": "placement", "intent": "intent"}


@dataclass(frozen=True)
class Vocabulary:
    """What the words of a rule set may borrow: segments' `because:`, actions' names."""

    segment_because: Mapping[str, str] = field(default_factory=dict)
    action_names: Mapping[str, str] = field(default_factory=dict)


def describe(
    expr: Expr, vocabulary: Vocabulary = Vocabulary(), this_action: str | None = None
) -> str:
    """The condition as one line of plain words (`this_action`: whose rule it is)."""
    return _Words(vocabulary, this_action).phrase(expr, negated=False)


def humanize(name: str) -> str:
    """An id as words: `monthly_income` -> `monthly income`."""
    return name.replace("_", " ")


def number(value: float) -> str:
    """1500 -> 1,500; 0.5 -> 0.5; no exponent forms."""
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,}"


def span(seconds: int) -> str:
    """86400 -> day; 7776000 -> 90 days; 43200 -> 12 hours."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if seconds % size == 0:
            n = seconds // size
            return unit if n == 1 else f"{n} {unit}s"
    return f"{seconds} seconds"


class _Words:
    def __init__(self, vocabulary: Vocabulary, this_action: str | None) -> None:
        self.vocabulary = vocabulary
        self.this_action = this_action

    def phrase(self, expr: Expr, negated: bool) -> str:
        if isinstance(expr, Not):
            return self.phrase(expr.item, not negated)
        if isinstance(expr, Const):
            return "always" if expr.value != negated else "never"
        if isinstance(expr, AllOf | AnyOf):
            return self.logic(expr, negated)
        return self.comparison(expr, negated)

    def logic(self, expr: AllOf | AnyOf, negated: bool) -> str:
        grouped = self.one_of(expr, negated) or self.between(expr, negated)
        if grouped is not None:
            return grouped
        conjunction = isinstance(expr, AllOf) != negated  # De Morgan: not (a or b) = both not
        parts = [self.nested(item, negated, conjunction) for item in expr.items]
        if len(parts) == 1:
            return parts[0]
        joiner = " and " if conjunction else " or "
        return ", ".join(parts[:-1]) + joiner + parts[-1]

    def nested(self, item: Expr, negated: bool, conjunction: bool) -> str:
        """An `or` inside an `and` reads "either a or b"; an `and` inside an `or`, "both"."""
        text = self.phrase(item, negated)
        while isinstance(item, Not):
            item, negated = item.item, not negated
        if not isinstance(item, AllOf | AnyOf) or self.one_of(item, negated) is not None:
            return text
        if len(item.items) < 2 or (isinstance(item, AllOf) != negated) == conjunction:
            return text
        if conjunction:
            return f"either {text}"
        return f"both {text}" if len(item.items) == 2 else f"all of: {text}"

    def between(self, expr: AllOf | AnyOf, negated: bool) -> str | None:
        """`x between a and b` (parsed as `x >= a and x <= b`) as one phrase, or None."""
        if not isinstance(expr, AllOf) or len(expr.items) != 2:
            return None
        low, high = expr.items
        if not (isinstance(low, Cmp) and isinstance(high, Cmp)) or low.term != high.term:
            return None
        if (low.op, high.op) != (">=", "<=") or not isinstance(low.term, ProfileTerm):
            return None
        if not isinstance(low.value, int | float) or not isinstance(high.value, int | float):
            return None
        name, a, b = humanize(low.term.attr), number(low.value), number(high.value)
        if negated:
            return f"{name} is not between {a} and {b}"
        return f"{name} is between {a} and {b}"

    def one_of(self, expr: AllOf | AnyOf, negated: bool) -> str | None:
        """`x in [a, b]` (an AnyOf of equalities on one term) as one phrase, or None."""
        if not isinstance(expr, AnyOf) or not expr.items:
            return None
        items = expr.items
        if not all(isinstance(i, Cmp) and i.op == "==" for i in items):
            return None
        terms = {i.term for i in items if isinstance(i, Cmp)}
        if len(terms) != 1 or len(items) < 2:
            return None
        term = next(iter(terms))
        values = [self.value(term, i.value) for i in items if isinstance(i, Cmp)]
        listed = ", ".join(values[:-1]) + " or " + values[-1]
        if isinstance(term, LifecycleTerm):
            return f"is {'not ' if negated else ''}in the {listed} stage"
        subject = self.subject(term)
        if subject is None:
            return None
        return f"{subject} is {'not ' if negated else ''}{listed}"

    def comparison(self, cmp: Cmp, negated: bool) -> str:
        term = cmp.term
        if isinstance(term, CountTerm):
            return self.count(term, OPPOSITE[cmp.op] if negated else cmp.op, cmp.value)
        if isinstance(term, SetTerm):
            holds = (cmp.value is True) == (cmp.op == "==") != negated
            have = "has" if holds else "does not have"
            return f"{have} {humanize(term.value)} in {humanize(term.attr)}"
        if isinstance(term, SegmentTerm):
            return self.segment(term.segment, (cmp.value is True) == (cmp.op == "==") != negated)
        if isinstance(term, LifecycleTerm):
            is_ = (cmp.op == "==") != negated
            return f"is {'' if is_ else 'not '}in the {self.value(term, cmp.value)} stage"
        if isinstance(term, TouchpointTerm):
            op = OPPOSITE[cmp.op] if negated else cmp.op
            return f"{TOUCHPOINT_NAMES[term.field]} is {self.is_value(op, term, cmp.value)}"
        return self.profile(term, cmp, negated)

    def profile(self, term: ProfileTerm, cmp: Cmp, negated: bool) -> str:
        """An attribute may be missing: a negated comparison also holds when it is unknown."""
        name = humanize(term.attr)
        if isinstance(cmp.value, bool):
            yes = (cmp.value is True) == (cmp.op == "==")
            if negated:
                return f"{name}: {'no' if yes else 'yes'} or not known"
            return f"{name}: {'yes' if yes else 'no'}"
        shown = self.value(term, cmp.value)
        if not negated:
            return f"{name} is {self.is_value(cmp.op, term, cmp.value)}"
        if cmp.op == "!=":
            return f"{name} is {shown} or not known"
        return f"{name} is not {(ORDER_WORDS[cmp.op] + ' ').lstrip()}{shown}"

    def segment(self, segment: str, holds: bool) -> str:
        because = self.vocabulary.segment_because.get(segment, "")
        if holds and because:
            return because
        return f"is {'' if holds else 'not '}in the {humanize(segment)} segment"

    def count(self, term: CountTerm, op: str, value: object) -> str:
        """`dismissals(30d, action=this) < 2` -> has dismissed this offer less than 2 times ..."""
        assert isinstance(value, int | float)
        what = self.counted(term)
        verb = OUTCOME_VERBS[term.outcome] if what else "complained"
        window = f" in the last {span(term.window_seconds)}" if term.window_seconds else ""
        n = int(value)
        never = (op == "==" and n == 0) or (op == "<" and n == 1) or (op == "<=" and n == 0)
        ever = (op in (">", "!=") and n == 0) or (op == ">=" and n == 1)
        if never:
            return f"has not {verb}{what}{window}"
        if ever:
            return f"has {verb}{what}{window}"
        times = {
            ">=": f"{n} times or more",
            ">": f"more than {n} {'time' if n == 1 else 'times'}",
            "<=": f"at most {n} {'time' if n == 1 else 'times'}",
            "<": f"fewer than {n} times",
            "==": f"exactly {n} {'time' if n == 1 else 'times'}",
            "!=": f"other than {n} times",
        }[op]
        return f"has {verb}{what} {times}{window}"

    def counted(self, term: CountTerm) -> str:
        """What the count is about, with a leading space (or nothing: any of ours)."""
        if term.action is not None and term.action == self.this_action:
            about = " this offer"
        elif term.action is not None:
            about = f" {self.vocabulary.action_names.get(term.action, humanize(term.action))}"
        elif term.group is not None:
            about = f" a {humanize(term.group)} offer"
        else:
            about = "" if term.outcome == "COMPLAINT" else " any of our messages"
        if term.channel is not None:
            about += f" on {humanize(term.channel)}"
        return about

    def is_value(self, op: str, term: ProfileTerm | TouchpointTerm, value: object) -> str:
        words = ORDER_WORDS[op]
        shown = self.value(term, value)
        return f"{words} {shown}" if words else shown

    def value(self, term: object, value: object) -> str:
        if isinstance(value, bool):
            return "yes" if value else "no"
        if isinstance(value, int | float):
            return number(value)
        text = str(value)
        if isinstance(term, TouchpointTerm) and text == "":
            return "not given"
        if isinstance(term, TouchpointTerm) and term.field == "channel" and text == "outbound":
            return "outbound, a contact we start"
        return humanize(text)

    def subject(self, term: object) -> str | None:
        if isinstance(term, ProfileTerm):
            return humanize(term.attr)
        if isinstance(term, TouchpointTerm):
            return TOUCHPOINT_NAMES[term.field]
        return None
