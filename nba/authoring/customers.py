"""A synthetic customer base for a rule set: realistic, driven by its schema, seeded.

`nba simulate` answers "what would these rules do to our customers?". Uniform random
profiles (what property tests want) make that question meaningless: half the base would
be in arrears and a 19-year-old would hold a mortgage. So each customer starts from a few
hidden traits (lifecycle stage, age, wealth, financial strain, life situation, digital
habits) and every declared attribute is derived from them, recognised by its name
(`age`, `*income*`, `*balance*`, `credit_score`, `student`, `home_owner`, a `products`
set, ...). Attributes nothing here recognises still get plausible values: numbers are
spread around the thresholds the rules compare them with, enums are skewed, booleans
mostly false. Histories use the rule set's real action ids and channels; consent and
touchpoints follow the channels' declared directions and consent defaults.

The same (rule set schema, seed, as_of) always gives the same customers, and customer i
does not depend on how many are generated.
"""

from __future__ import annotations

import json
import math
import random
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO, cast

from google.protobuf import json_format, struct_pb2

from nba.errors import NbaError
from nba.pipeline.types import OUTBOUND
from nba.ruleset.model import AttributeSpec, AttributeType, ChannelSpec, ConsentDefault, Direction
from nba.ruleset.resolve import ProfileTerm, TouchpointTerm, comparisons
from nba.ruleset.ruleset import RuleSet
from nba.v1 import decisioning_pb2 as pb

# A fixed default moment (a weekday, 10:00 UTC, outside every quiet hour) so that the same
# seed gives the same file on any day; decisions are replayable because each request
# carries it as `as_of`.
DEFAULT_AS_OF = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
HISTORY_DAYS = 90
MAX_INTERACTIONS = 30
OUTBOUND_SHARE = 0.3  # decisions asked for by a campaign run rather than a visit

# Lifecycle stages are recognised by keyword (first match wins; "inactive" before
# "active"); each kind has a share of the base and a typical history length.
STAGE_KINDS: tuple[tuple[str, tuple[str, ...], float, float], ...] = (
    # kind, keywords, weight, mean interactions in 90 days
    ("prospect", ("prospect", "lead", "applicant"), 8, 1.5),
    ("lapsed", ("lapse", "dormant", "inactive", "churned", "former", "closed"), 7, 3),
    ("at_risk", ("risk", "churn", "attrit"), 9, 8),
    ("onboarding", ("onboard", "new"), 7, 6),
    ("growing", ("grow", "engag", "loyal", "vip"), 18, 11),
    ("active", ("active", "customer", "existing"), 45, 9),
)
OTHER_STAGE = ("other", 10.0, 6.0)

OUTCOME_WEIGHTS = {
    "IMPRESSION": 72.0,
    "CLICK": 14.0,
    "DISMISS": 9.0,
    "ACCEPT": 2.0,
    "REJECT": 2.0,
    "COMPLAINT": 0.4,
}


class CustomerFileError(NbaError, ValueError):
    """A line of a customers file is not a DecideRequest; str() is `path:line: why`."""

    def __init__(self, path: str | Path, line: int, message: str) -> None:
        self.path = str(path)
        self.line = line
        self.message = message
        super().__init__(f"{path}:{line}: {message}")


# ---------------------------------------------------------------------------- traits


@dataclass(slots=True)
class Persona:
    """The hidden traits every attribute of one customer is derived from."""

    stage: str
    kind: str  # prospect | onboarding | active | growing | at_risk | lapsed | other
    age: int
    wealth: float  # z-score: income, balances, credit score, holdings
    strain: float  # z-score: arrears, overdraft, card utilisation (against wealth)
    occupation: str  # employed | self_employed | retired | student | unemployed
    home_owner: bool
    has_car: bool
    children: int
    digital: bool  # uses the mobile app and online banking
    traveller: bool
    tenure_months: int
    monthly_income: float
    balance: float
    holdings: set[str] = field(default_factory=set)  # product kinds, see PRODUCT_KINDS


def _stage_kind(stage: str) -> tuple[str, float, float]:
    name = stage.lower()
    for kind, keywords, weight, history in STAGE_KINDS:
        if any(k in name for k in keywords):
            return kind, weight, history
    return OTHER_STAGE


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


def _chance(rng: random.Random, p: float) -> bool:
    return rng.random() < _clamp(p, 0.0, 1.0)


def _age(rng: random.Random, kind: str) -> int:
    """Adult age bands in roughly a UK bank's proportions; prospects skew young."""
    bands = ((18, 24), (25, 34), (35, 44), (45, 54), (55, 64), (65, 74), (75, 92))
    weights = (22, 24, 17, 13, 10, 8, 6) if kind == "prospect" else (10, 17, 17, 17, 15, 13, 11)
    low, high = rng.choices(bands, weights)[0]
    return rng.randint(low, high)


def _occupation(rng: random.Random, age: int) -> str:
    if age < 23 and _chance(rng, 0.55):
        return "student"
    if age >= 67 or (age >= 58 and _chance(rng, 0.15)):
        return "retired" if _chance(rng, 0.9) else "employed"
    if age < 30 and _chance(rng, 0.05):
        return "student"
    return rng.choices(("employed", "self_employed", "unemployed"), (80, 14, 6))[0]


def _tenure(rng: random.Random, kind: str, age: int) -> int:
    """Months with the bank, by stage, never longer than the customer's adult life."""
    adult = max(0, (age - 18) * 12)
    if kind == "prospect":
        return 0
    if kind == "onboarding":
        return rng.randint(0, 3)
    low = {"growing": 12, "lapsed": 24, "at_risk": 6}.get(kind, 4)
    months = low + int(rng.expovariate(1 / 60))
    return max(0, min(months, adult, 480))


def _income(rng: random.Random, occupation: str, age: int, wealth: float) -> float:
    """Net monthly income: log-normal, peaking in the late forties, by occupation."""
    career = -(((age - 48) / 30) ** 2) * 0.6
    base = {
        "employed": 2600.0,
        "self_employed": 2700.0,
        "retired": 1500.0,
        "student": 700.0,
        "unemployed": 650.0,
    }[occupation]
    spread = 0.5 if occupation == "self_employed" else 0.3
    return base * math.exp(0.4 * wealth + career + rng.gauss(0, spread))


def _persona(rng: random.Random, stage: str) -> Persona:
    kind = _stage_kind(stage)[0]
    age = _age(rng, kind)
    occupation = _occupation(rng, age)
    wealth = rng.gauss(0, 1) + (0.3 if 45 <= age <= 70 else 0.0) - (0.6 if age < 25 else 0.0)
    strain = 0.8 * rng.gauss(0, 1) - 0.4 * wealth + (0.5 if occupation == "unemployed" else 0.0)
    income = _income(rng, occupation, age, wealth)
    home_owner = _chance(rng, 0.12 + 0.012 * (age - 25) + 0.12 * wealth) and age >= 21
    in_family_years = 24 <= age <= 55
    children = 0
    if in_family_years and _chance(rng, 0.5 if age >= 30 else 0.25):
        children = rng.choices((1, 2, 3, 4), (40, 40, 15, 5))[0]
    balance = 0.0
    if kind != "prospect":
        months_saved = 1.2 * math.exp(0.9 * wealth + 0.015 * (age - 40) + rng.gauss(0, 0.9))
        balance = income * months_saved * (0.05 if kind == "lapsed" else 1.0)
    persona = Persona(
        stage=stage,
        kind=kind,
        age=age,
        wealth=wealth,
        strain=strain,
        occupation=occupation,
        home_owner=home_owner,
        has_car=_chance(rng, (0.2 if occupation == "student" else 0.62) + 0.08 * wealth)
        and age < 88,
        children=children,
        digital=_chance(rng, 0.95 - 0.011 * max(0, age - 25)),
        traveller=_chance(rng, 0.22 + 0.12 * wealth),
        tenure_months=_tenure(rng, kind, age),
        monthly_income=income,
        balance=balance,
    )
    persona.holdings = _holdings(rng, persona)
    return persona


# ---------------------------------------------------------------------------- products

# Product kinds, recognised in a set attribute's values by keyword (first match wins).
PRODUCT_KINDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("kids_savings", ("kid", "child", "junior")),
    ("auto_loan", ("auto_loan", "car_loan", "car_finance", "vehicle")),
    ("car_insurance", ("car_ins", "motor")),
    ("home_insurance", ("home_ins", "building", "contents")),
    ("travel_insurance", ("travel",)),
    ("life_insurance", ("life",)),
    ("mortgage", ("mortgage",)),
    ("credit_card", ("credit_card", "card")),
    ("personal_loan", ("loan",)),
    ("checking", ("checking", "current", "chequing")),
    ("isa", ("isa",)),
    ("fixed_deposit", ("fixed", "term", "bond", "deposit")),
    ("investment", ("invest", "fund", "stock", "share", "pension")),
    ("savings", ("saving",)),
    ("other_insurance", ("insurance", "protect")),
)


def _holdings(rng: random.Random, p: Persona) -> set[str]:
    """What the customer holds today: nothing for prospects, a little when new."""
    if p.kind == "prospect":
        return set()
    odds = {
        "checking": 0.95,
        "savings": 0.35 + 0.1 * p.wealth,
        "fixed_deposit": 0.06 + 0.06 * p.wealth,
        "isa": 0.18 + 0.1 * p.wealth,
        "kids_savings": 0.3 if p.children else 0.0,
        "investment": 0.04 + 0.12 * max(0.0, p.wealth),
        "credit_card": (0.15 if p.occupation == "student" else 0.45) + 0.08 * p.wealth,
        "personal_loan": 0.08 + 0.06 * max(0.0, p.strain),
        "auto_loan": 0.18 if p.has_car else 0.0,
        "mortgage": (0.65 if p.age < 65 else 0.2) if p.home_owner else 0.0,
        "home_insurance": 0.3 if p.home_owner else 0.0,
        "travel_insurance": 0.2 if p.traveller else 0.02,
        "life_insurance": 0.2 if p.children or p.home_owner else 0.03,
        "car_insurance": 0.3 if p.has_car else 0.0,
        "other_insurance": 0.08,
    }
    scale = 0.35 if p.kind == "onboarding" else 1.0
    held = {k for k, chance in odds.items() if _chance(rng, chance * scale)}
    if p.kind == "onboarding" and _chance(rng, 0.8):
        held.add("checking")  # what they just opened
    return held


def _product_kind(value: str) -> str | None:
    name = value.lower()
    for kind, keywords in PRODUCT_KINDS:
        if any(k in name for k in keywords):
            return kind
    return None


# ---------------------------------------------------------------------------- attributes

# Each attribute is classified by its name once per base, into a maker that derives a
# value from the persona; None from a maker means "does not apply: leave it out".
Maker = Callable[[random.Random, Persona], Any]
Source = Callable[[random.Random, Persona, AttributeSpec], float | None]
Literals = dict[tuple[str, str], list[Any]]


def rule_literals(ruleset: RuleSet) -> Literals:
    """The literals each profile attribute and touchpoint field is compared with."""
    found: dict[tuple[str, str], set[Any]] = defaultdict(set)
    for rule in ruleset.rules:
        for cmp in comparisons(rule.expr):
            if isinstance(cmp.term, ProfileTerm):
                found["profile", cmp.term.attr].add(cmp.value)
            elif isinstance(cmp.term, TouchpointTerm):
                found["touchpoint", cmp.term.field].add(cmp.value)
    return {k: sorted(v, key=repr) for k, v in found.items()}


def _has(name: str, *words: str) -> bool:
    return any(w in name for w in words)


def _bounds(spec: AttributeSpec, low: float, high: float) -> tuple[float, float]:
    """The declared bounds where there are any, else the given plausible ones."""
    lo = spec.min if spec.min is not None else low
    hi = spec.max if spec.max is not None else max(high, lo)
    return float(lo), float(hi)


def _fit(spec: AttributeSpec, value: float) -> int | float:
    """A number within the declared bounds, whole for int attributes and most amounts."""
    lo, hi = _bounds(spec, -math.inf, math.inf)
    value = _clamp(value, lo, hi)
    if spec.type == AttributeType.INT or abs(value) >= 100:
        whole = round(value)
        return whole if lo <= whole <= hi else math.floor(value)
    return round(value, 2)


def _credit_score(rng: random.Random, p: Persona, spec: AttributeSpec) -> float:
    """Centred at 70% of the declared range (300-850: ~690), up with wealth, down with strain."""
    lo, hi = _bounds(spec, 300, 850)
    shift = 0.07 * p.wealth - 0.1 * p.strain - (0.06 if p.age < 25 else 0.0)
    return lo + (hi - lo) * _clamp(0.7 + shift + rng.gauss(0, 0.07), 0, 1)


def _debt_elsewhere(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    if not _chance(rng, 0.35 + 0.25 * max(0.0, p.strain)):
        return 0
    return rng.lognormvariate(math.log(2500) + 0.4 * p.strain, 0.9)


def _logins(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    if not p.digital:
        return rng.choice((0, 0, 0, 1, 2))
    return int(rng.gammavariate(2.0, 1.0 if p.kind == "lapsed" else 6.0))


def _overdraft_days(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    if not _chance(rng, 0.18 + 0.2 * max(0.0, p.strain)):
        return 0
    return rng.randint(1, 20) + int(15 * max(0.0, p.strain) * rng.random())


def _days_past_due(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    """About 5% behind on a payment, mostly by days; the strained far more often."""
    if not _chance(rng, 1 / (1 + math.exp(3.4 - 1.3 * p.strain))):
        return 0
    return rng.choice((rng.randint(1, 30), rng.randint(1, 30), rng.randint(31, 120)))


def _utilisation(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float | None:
    if "credit_card" not in p.holdings:
        return None
    return 100 * _clamp(rng.betavariate(1.3, 3.0) + 0.18 * p.strain, 0, 1.3)


def _deal_ends(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float | None:
    return rng.randint(0, 60) if "mortgage" in p.holdings else None


def _monthly_income(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    return p.monthly_income


def _tenure_months(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    return p.tenure_months


def _months_since_update(rng: random.Random, p: Persona, _spec: AttributeSpec) -> float:
    return rng.expovariate(1 / 14)


# Numeric attributes by keyword, first match wins (income before balance, debts before
# deposits). Age, and yearly incomes and tenures, are handled in _number_source.
NUMBER_SOURCES: tuple[tuple[tuple[str, ...], Source], ...] = (
    (("income", "earning", "salary"), _monthly_income),
    (("credit_score", "bureau", "fico", "credit_rating"), _credit_score),
    (("external", "other_lender", "debt", "owed", "card_balance", "loan_balance"), _debt_elsewhere),
    (("balance", "deposit", "savings_amount", "assets", "aum"), lambda rng, p, spec: p.balance),
    (("tenure", "months_with", "customer_since"), _tenure_months),
    (("child", "kids", "dependant", "dependent"), lambda rng, p, spec: p.children),
    (("login", "visit", "session"), _logins),
    (("overdraft",), _overdraft_days),
    (("past_due", "dpd", "missed", "arrears", "overdue"), _days_past_due),
    (("utilisation", "utilization", "usage_pct"), _utilisation),
    (("deal_end", "fixed_rate_end", "renewal", "remaining_term"), _deal_ends),
    (("since_contact", "contact_update", "since_update"), _months_since_update),
)


def _number_source(name: str) -> Source | None:
    if name == "age" or name.endswith("_age") or name.startswith("age_"):
        return lambda rng, p, spec: p.age
    per_year = _has(name, "year", "annual", "salary")
    for words, source in NUMBER_SOURCES:
        if not _has(name, *words):
            continue
        if per_year and source is _monthly_income:
            return lambda rng, p, spec: p.monthly_income * 12
        if per_year and source is _tenure_months:
            return lambda rng, p, spec: p.tenure_months // 12
        return source
    return None


def _number_maker(name: str, spec: AttributeSpec, near: list[Any]) -> Maker:
    source = _number_source(name)
    if source is not None:
        known = source

        def make(rng: random.Random, p: Persona) -> Any:
            value = known(rng, p, spec)
            return None if value is None else _fit(spec, value)

        return make
    thresholds = sorted(float(v) for v in near if isinstance(v, int | float))
    return lambda rng, p: _fit(spec, _unknown_number(rng, spec, thresholds))


def _unknown_number(rng: random.Random, spec: AttributeSpec, thresholds: list[float]) -> float:
    """Spread around the thresholds the rules use, so rules split the base as in life."""
    lo, hi = _bounds(spec, -math.inf, math.inf)
    if thresholds:
        centre = thresholds[len(thresholds) // 2]
        if centre > 0:
            return rng.lognormvariate(math.log(centre), 0.7)
        return centre + rng.gauss(0, max(1.0, abs(centre)))
    if math.isfinite(lo) and math.isfinite(hi):
        return rng.triangular(lo, hi, lo + (hi - lo) / 3)
    return (lo if math.isfinite(lo) else 0.0) + rng.expovariate(1 / 50)


# Boolean attributes by keyword, first match wins; anything else is true for a quarter.
BOOL_SOURCES: tuple[tuple[tuple[str, ...], Maker], ...] = (
    (("student",), lambda rng, p: p.occupation == "student"),
    (("home_owner", "homeowner", "owns_home", "owner"), lambda rng, p: p.home_owner),
    (("card",), lambda rng, p: "credit_card" in p.holdings),
    (("has_car", "car", "vehicle", "driver", "drives"), lambda rng, p: p.has_car),
    (("travel", "abroad"), lambda rng, p: p.traveller),
    (
        ("large_deposit", "windfall", "lump_sum"),
        lambda rng, p: _chance(rng, 0.03 + 0.03 * p.wealth),
    ),
    (
        ("paperless", "estatement", "e_statement"),
        lambda rng, p: _chance(rng, 0.8 if p.digital else 0.25),
    ),
    (("alert", "notification"), lambda rng, p: _chance(rng, 0.55 if p.digital else 0.15)),
    (("app", "mobile", "digital", "online"), lambda rng, p: p.digital),
    (("vulnerab", "hardship"), lambda rng, p: _chance(rng, 0.03 + (0.06 if p.strain > 1.2 else 0))),
    (("retired",), lambda rng, p: p.occupation == "retired"),
    (("employed", "working"), lambda rng, p: p.occupation in ("employed", "self_employed")),
    (("child", "kids", "parent"), lambda rng, p: p.children > 0),
    (("married", "partner", "joint"), lambda rng, p: _chance(rng, 0.5 if p.age >= 28 else 0.15)),
)


def _bool_maker(name: str) -> Maker:
    for words, maker in BOOL_SOURCES:
        if _has(name, *words):
            return maker
    return lambda rng, p: _chance(rng, 0.25)


OCCUPATION_WORDS = {
    "student": ("student", "study", "education"),
    "retired": ("retire", "pension"),
    "unemployed": ("unemploy", "not_working", "jobless", "none"),
    "self_employed": ("self", "contract", "freelance", "business"),
    "employed": ("employ", "full_time", "part_time", "salaried", "work"),
}


def _enum_maker(name: str, spec: AttributeSpec) -> Maker:
    values = list(spec.values)
    skew = [1 / (i + 1.5) for i in range(len(values))]  # enums list the usual case first

    def skewed(rng: random.Random, p: Persona) -> str:
        return rng.choices(values, skew)[0]

    if _has(name, "employ", "occupation", "job", "work"):
        by_occupation = {o: _occupation_value(o, values) for o in OCCUPATION_WORDS}
        return lambda rng, p: by_occupation[p.occupation] or skewed(rng, p)
    if _has(name, "tier", "band", "level", "grade", "class"):  # declared low to high
        return lambda rng, p: values[
            int(_clamp(0.5 + 0.3 * p.wealth + rng.gauss(0, 0.15), 0, 0.999) * len(values))
        ]
    if _has(name, "region", "area", "country", "city", "state", "location"):
        return lambda rng, p: rng.choice(values)
    return skewed


def _occupation_value(occupation: str, values: list[str]) -> str | None:
    fits = [v for v in values if _has(v.lower(), *OCCUPATION_WORDS[occupation])]
    if occupation == "employed":
        fits = [v for v in fits if not _has(v.lower(), "self", "unemploy")]
    return fits[0] if fits else None


def _set_maker(name: str, spec: AttributeSpec) -> Maker:
    values = list(spec.values)
    kinds = [_product_kind(v) for v in values]
    if _has(name, "product", "holding") or sum(k is not None for k in kinds) >= 3:

        def products(rng: random.Random, p: Persona) -> list[str]:
            other = 0.0 if p.kind == "prospect" else 0.1
            return [
                v
                for v, kind in zip(values, kinds, strict=True)
                if (kind in p.holdings if kind is not None else _chance(rng, other))
            ]

        return products
    odds = [0.3 / (1 + 0.4 * i) for i in range(len(values))]  # interests, tags: a few each
    return lambda rng, p: [v for v, o in zip(values, odds, strict=True) if _chance(rng, o)]


def _string_maker(name: str, near: list[Any]) -> Maker:
    words = [v for v in near if isinstance(v, str)]

    def make(rng: random.Random, p: Persona) -> str:
        if words and _chance(rng, 0.5):
            return rng.choice(words)
        return f"{name}-{rng.randint(1, 40)}"

    return make


def attribute_maker(name: str, spec: AttributeSpec, near: list[Any]) -> Maker:
    """How one declared attribute is derived from a persona, decided from its name once."""
    key = name.lower()
    if spec.type in (AttributeType.INT, AttributeType.NUMBER):
        return _number_maker(key, spec, near)
    if spec.type == AttributeType.BOOL:
        return _bool_maker(key)
    if spec.type == AttributeType.ENUM:
        return _enum_maker(key, spec)
    if spec.type == AttributeType.SET:
        return _set_maker(key, spec)
    return _string_maker(key, near)


@dataclass(frozen=True, slots=True)
class _Attribute:
    name: str
    required: bool
    make: Maker
    floor: Any  # a required attribute that does not apply takes its lower bound


def _attributes(ruleset: RuleSet, literals: Literals) -> tuple[_Attribute, ...]:
    return tuple(
        _Attribute(
            name,
            spec.required,
            attribute_maker(name, spec, literals.get(("profile", name), [])),
            _fit(spec, _bounds(spec, 0, 0)[0])
            if spec.type in (AttributeType.INT, AttributeType.NUMBER)
            else None,
        )
        for name, spec in ruleset.attributes.items()
    )


def _profile(rng: random.Random, p: Persona, attributes: Iterable[_Attribute]) -> dict[str, Any]:
    """Every declared attribute that applies; 5% of optional ones missing, as in real data."""
    profile: dict[str, Any] = {}
    for attr in attributes:
        if not attr.required and rng.random() < 0.05:
            continue
        value = attr.make(rng, p)
        if value is None:
            value = attr.floor if attr.required else None
        if value is not None:
            profile[attr.name] = value
    return profile


# ---------------------------------------------------------------------------- context

APP_WORDS = ("app", "push", "mobile")  # channels only digital customers use
DIGITAL_WORDS = ("web", "app", "mobile", "online", "digital")
KINDS = (*(k[0] for k in STAGE_KINDS), OTHER_STAGE[0])


def _needs_app(channel: str) -> bool:
    return _has(channel.lower(), *APP_WORDS)


def _inbound_weights(channel: str) -> tuple[float, float, float]:
    """How often a (digital, undigital, prospect) customer comes in on this channel."""
    name = channel.lower()
    if _has(name, "app", "mobile"):
        return 35.0, 0.0, 0.0
    if _has(name, "web", "online"):
        return 35.0, 12.0, 35.0
    if _has(name, "call", "phone", "contact"):
        return 18.0, 30.0, 18.0
    if "branch" in name:
        return 6.0, 25.0, 10.0
    return 10.0, 10.0, 10.0


def _consent_odds(channel: str, spec: ChannelSpec) -> tuple[float, float, float, float]:
    """(yes, no) for a digital customer, then for an undigital one.

    Opt-in channels: most opt in to email, fewer to texts, push only with the app.
    Opt-out channels carry only the opt-outs (Telephone Preference Service, "no mail").
    """
    name = channel.lower()
    if spec.marketing_consent == ConsentDefault.OPT_OUT:
        no = 0.15 if _has(name, "call", "phone", "tele") else 0.08
        return 0.0, no, 0.0, no
    if "email" in name:
        return 0.72, 0.12, 0.6, 0.15
    if _has(name, "sms", "text"):
        return 0.38, 0.2, 0.3, 0.2
    if _has(name, "push", "app", "notification"):
        return 0.5, 0.2, 0.0, 0.1
    return 0.4, 0.15, 0.35, 0.15


def _intent_weight(intent: str, kind: str, strained: bool) -> float:
    name = intent.lower()
    if _has(name, "cancel", "close", "leav", "switch"):
        return {"at_risk": 0.6, "prospect": 0.01}.get(kind, 0.12)
    if "complain" in name:
        return 0.12 if kind != "prospect" else 0.02
    if _has(name, "difficult", "hardship", "debt"):
        return 0.1 if strained else 0.03
    if _has(name, "bereave", "death"):
        return 0.02
    if "fraud" in name:
        return 0.05
    return 0.15


@dataclass(frozen=True, slots=True)
class _Shape:
    """What generation needs from a rule set, worked out once per base."""

    ruleset: RuleSet
    attributes: tuple[_Attribute, ...]
    stages: tuple[str, ...]
    stage_weights: tuple[float, ...]
    inbound: tuple[str, ...]  # channels a customer can come to us on
    inbound_weights: tuple[tuple[float, ...], ...]  # digital, undigital, prospect
    consent_odds: dict[str, tuple[float, float, float, float]]  # outbound channels
    placements: dict[str, tuple[tuple[str, ...], tuple[float, ...]]]  # by inbound channel
    intents: tuple[str, ...]
    intent_weights: dict[tuple[str, bool], tuple[float, ...]]  # by (stage kind, strained)
    action_ids: tuple[str, ...]
    action_weights: tuple[float, ...]
    action_channels: dict[tuple[str, bool], tuple[str, ...]]  # by (action, digital)
    outcomes: tuple[int, ...]
    outcome_weights: tuple[float, ...]

    @classmethod
    def of(cls, ruleset: RuleSet) -> _Shape:
        literals = rule_literals(ruleset)
        channels = ruleset.channels
        inbound = tuple(c for c, s in channels.items() if s.direction != Direction.OUTBOUND)
        intents = tuple(sorted({str(v) for v in literals.get(("touchpoint", "intent"), [])}))
        intents = tuple(i for i in intents if i)
        actions = list(ruleset.actions.values())
        outcomes = [v for v in pb.Outcome.DESCRIPTOR.values if v.number != 0]
        return cls(
            ruleset=ruleset,
            attributes=_attributes(ruleset, literals),
            stages=tuple(ruleset.stages),
            stage_weights=tuple(_stage_kind(s)[1] for s in ruleset.stages),
            inbound=inbound,
            inbound_weights=tuple(zip(*(_inbound_weights(c) for c in inbound), strict=True))
            if inbound
            else ((), (), ()),
            consent_odds={
                c: _consent_odds(c, s)
                for c, s in channels.items()
                if s.direction != Direction.INBOUND
            },
            placements={c: _placements(ruleset, literals, c) for c in inbound},
            intents=intents,
            intent_weights={
                (kind, strained): tuple(_intent_weight(i, kind, strained) for i in intents)
                for kind in KINDS
                for strained in (False, True)
            },
            action_ids=tuple(a.id for a in actions),
            action_weights=tuple(1.0 if a.purpose == "marketing" else 0.6 for a in actions),
            action_channels={
                (a.id, digital): tuple(c for c in a.channels if digital or not _needs_app(c))
                or tuple(channels)
                for a in actions
                for digital in (False, True)
            },
            outcomes=tuple(v.number for v in outcomes),
            outcome_weights=tuple(OUTCOME_WEIGHTS.get(v.name, 0.5) for v in outcomes),
        )


def _placements(
    ruleset: RuleSet, literals: Literals, channel: str
) -> tuple[tuple[str, ...], tuple[float, ...]]:
    """The placements seen on a channel, home pages the most.

    A placement a fallback ties to channels appears on those; the others on digital ones.
    """
    known = {str(v) for v in literals.get(("touchpoint", "placement"), [])}
    known |= {f.placement for f in ruleset.fallbacks if f.placement}
    digital = _has(channel.lower(), *DIGITAL_WORDS)
    fits = []
    for placement in sorted(known - {""}):
        tied = {f.channel for f in ruleset.fallbacks if f.placement == placement and f.channel}
        if (channel in tied) if tied else digital:
            fits.append(placement)
    return tuple(fits), tuple(3.0 if "home" in p else 1.0 for p in fits)


def _history(rng: random.Random, shape: _Shape, p: Persona, as_of: int) -> list[pb.Interaction]:
    """0-30 past interactions in the last 90 days, oldest first, on the rule set's actions.

    Mostly impressions, some clicks and dismissals, rare accepts, rejections and
    complaints. Customers keep meeting the same few offers (three favourites get most
    of the history), so per-action counts such as `dismissals(30d, action=this)` reach
    their thresholds as they do in life.
    """
    if not shape.action_ids:
        return []
    mean = _stage_kind(p.stage)[2] * (1.3 if p.digital else 0.7)
    count = min(MAX_INTERACTIONS, int(rng.expovariate(1 / mean)))
    favourites = rng.choices(shape.action_ids, shape.action_weights, k=3)
    actions = [
        rng.choice(favourites)
        if rng.random() < 0.6
        else rng.choices(shape.action_ids, shape.action_weights)[0]
        for _ in range(count)
    ]
    outcomes = rng.choices(shape.outcomes, shape.outcome_weights, k=count)
    midnight = as_of - as_of % 86400
    times = sorted(  # daytime contacts: whole days back, then between 08:00 and 21:00
        min(
            as_of - 60,
            midnight - rng.randrange(HISTORY_DAYS) * 86400 + rng.randrange(8 * 3600, 21 * 3600),
        )
        for _ in range(count)
    )
    items = []
    for action_id, outcome, at in zip(actions, outcomes, times, strict=True):
        item = pb.Interaction(
            action_id=action_id,
            channel=rng.choice(shape.action_channels[action_id, p.digital]),
            outcome=cast(pb.Outcome, outcome),  # an int the stub types as its enum
        )
        item.at.seconds = at
        items.append(item)
    return items


def _consent(rng: random.Random, shape: _Shape, p: Persona) -> dict[str, bool]:
    """Consent only on channels we contact people through; inbound ones carry none."""
    consent: dict[str, bool] = {}
    for channel, odds in shape.consent_odds.items():
        yes, no = odds[:2] if p.digital else odds[2:]
        draw = rng.random()
        if draw < yes:
            consent[channel] = True
        elif draw < yes + no:
            consent[channel] = False
    return consent


def _touchpoint(rng: random.Random, shape: _Shape, p: Persona, msg: pb.DecideRequest) -> None:
    """A visit on an inbound channel (with placement and intent) or an outbound run."""
    which = 2 if p.kind == "prospect" else (0 if p.digital else 1)
    weights = shape.inbound_weights[which]
    if not any(weights) or (shape.consent_odds and rng.random() < OUTBOUND_SHARE):
        msg.touchpoint.channel = OUTBOUND
        return
    channel = rng.choices(shape.inbound, weights)[0]
    msg.touchpoint.channel = channel
    digital = _has(channel.lower(), *DIGITAL_WORDS)
    placements, placement_weights = shape.placements[channel]
    if placements and _chance(rng, 0.6 if digital else 0.1):
        msg.touchpoint.placement = rng.choices(placements, placement_weights)[0]
    if shape.intents and _chance(rng, 0.1 if digital else 0.55):
        intent_weights = shape.intent_weights[p.kind, p.strain > 1]
        msg.touchpoint.intent = rng.choices(shape.intents, intent_weights)[0]


def _preferred(rng: random.Random, consent: dict[str, bool]) -> list[str]:
    """A quarter of customers named one or two channels they like to hear from us on."""
    liked = [c for c, yes in consent.items() if yes]
    if not liked or not _chance(rng, 0.25):
        return []
    return rng.sample(liked, min(len(liked), rng.choice((1, 1, 2))))


# ---------------------------------------------------------------------------- the base


def generate_customers(
    ruleset: RuleSet, n: int, seed: int = 0, as_of: datetime | None = None
) -> Iterator[pb.DecideRequest]:
    """n DecideRequests for a realistic customer base of `ruleset`; lazily, in order.

    Customer i comes from its own random stream (seeded by seed and i), so the first
    hundred customers of a base of a thousand are the base of a hundred. Without as_of,
    DEFAULT_AS_OF: the same seed gives the same file whenever it is generated.
    """
    moment = as_of or DEFAULT_AS_OF
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    seconds = int(moment.timestamp())
    shape = _Shape.of(ruleset)
    for i in range(n):
        yield _customer(random.Random(f"{seed}:{i}"), shape, f"c{seed}-{i:07d}", seconds)


def _customer(rng: random.Random, shape: _Shape, customer_id: str, as_of: int) -> pb.DecideRequest:
    stage = rng.choices(shape.stages, shape.stage_weights)[0]
    persona = _persona(rng, stage)
    msg = pb.DecideRequest(customer_id=customer_id, lifecycle_stage=stage)
    msg.profile.update(_profile(rng, persona, shape.attributes))
    _touchpoint(rng, shape, persona, msg)
    msg.interactions.extend(_history(rng, shape, persona, as_of))
    consent = _consent(rng, shape, persona)
    msg.consent.update(consent)
    msg.preferred_channels.extend(_preferred(rng, consent))
    msg.as_of.FromSeconds(as_of)
    return msg


# ---------------------------------------------------------------------------- JSON lines


def write_jsonl(requests: Iterable[pb.DecideRequest], path: str | Path | TextIO) -> int:
    """One proto3 JSON object per line (the form of rules/examples, compact); the count.

    path may be an open text stream (stdout for `nba gen-customers` without -o).
    """
    if not isinstance(path, str | Path):
        return _write_lines(requests, path)
    with open(path, "w", encoding="utf-8") as out:
        return _write_lines(requests, out)


def _write_lines(requests: Iterable[pb.DecideRequest], out: TextIO) -> int:
    count = 0
    for msg in requests:
        out.write(json.dumps(request_json(msg), separators=(",", ":")))
        out.write("\n")
        count += 1
    return count


# The fields request_json writes itself; a request with any other set falls back.
_WRITTEN = frozenset(
    {
        "customer_id",
        "lifecycle_stage",
        "touchpoint",
        "profile",
        "interactions",
        "consent",
        "preferred_channels",
        "max_results",
        "explain",
        "as_of",
        "time_zone",
    }
)


def request_json(msg: pb.DecideRequest) -> dict[str, Any]:
    """A request as proto3 JSON, readable: whole numbers as ints, profile keys sorted.

    Four times cheaper than json_format.MessageToDict, which writes every profile number
    as a float (`"age": 41.0`). A request with a field this does not know (one added to
    the proto later) goes through MessageToDict, so nothing is ever dropped.
    """
    if any(f.name not in _WRITTEN for f, _ in msg.ListFields()):
        return json_format.MessageToDict(msg)
    try:
        profile = {k: _plain(v) for k, v in sorted(msg.profile.fields.items())}
    except ValueError:  # NaN or infinity: json_format knows how proto3 JSON spells them
        return json_format.MessageToDict(msg)
    out: dict[str, Any] = {}
    if msg.customer_id:
        out["customerId"] = msg.customer_id
    if msg.lifecycle_stage:
        out["lifecycleStage"] = msg.lifecycle_stage
    if msg.HasField("touchpoint"):
        tp = msg.touchpoint
        fields = (("channel", tp.channel), ("placement", tp.placement), ("intent", tp.intent))
        out["touchpoint"] = {k: v for k, v in fields if v}
    if msg.HasField("profile"):
        out["profile"] = profile
    if msg.interactions:
        out["interactions"] = [_interaction_json(i) for i in msg.interactions]
    if msg.consent:
        out["consent"] = dict(sorted(msg.consent.items()))
    if msg.preferred_channels:
        out["preferredChannels"] = list(msg.preferred_channels)
    if msg.max_results:
        out["maxResults"] = msg.max_results
    if msg.explain:
        out["explain"] = True
    if msg.HasField("as_of"):
        out["asOf"] = msg.as_of.ToJsonString()
    if msg.time_zone:
        out["timeZone"] = msg.time_zone
    return out


def _plain(value: struct_pb2.Value) -> Any:
    """A Struct value as JSON: whole numbers as ints, nulls kept."""
    kind = value.WhichOneof("kind")
    if kind == "number_value":
        number = value.number_value
        if not math.isfinite(number):
            raise ValueError(number)
        whole = number.is_integer() and abs(number) < 2**53 and math.copysign(1, number) > 0
        return int(number) if whole else number
    if kind == "list_value":
        return [_plain(v) for v in value.list_value.values]
    if kind == "struct_value":
        return {k: _plain(v) for k, v in value.struct_value.fields.items()}
    if kind is None or kind == "null_value":  # an unset Value reads as null, as in JSON
        return None
    return getattr(value, kind)


def _interaction_json(item: pb.Interaction) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if item.action_id:
        out["actionId"] = item.action_id
    if item.channel:
        out["channel"] = item.channel
    if item.outcome:
        out["outcome"] = pb.Outcome.Name(item.outcome)
    if item.HasField("at"):
        out["at"] = item.at.ToJsonString()
    return out


ONE_PER_LINE = "expected one DecideRequest per line (JSON Lines)"


def parse_line(text: str) -> pb.DecideRequest:
    """One line as a DecideRequest; ValueError says what is wrong, without the place."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        if exc.pos >= len(text.rstrip()):  # the line ends inside a value: it goes on below
            raise ValueError(
                f"not JSON: {exc.msg} at the end of the line; {ONE_PER_LINE}, and a"
                " pretty-printed request spreads over several: write each on one line"
                " (e.g. `jq -c . FILE`)"
            ) from None
        raise ValueError(f"not JSON: {exc.msg} (column {exc.colno})") from None
    if isinstance(value, list):
        raise ValueError(
            f"expected a JSON object (a DecideRequest), got an array; {ONE_PER_LINE},"
            " not an array of them (e.g. `jq -c '.[]' FILE`)"
        )
    if not isinstance(value, dict):
        raise ValueError(f"expected a JSON object (a DecideRequest), got {type(value).__name__}")
    fast = _fast_request(value)
    if fast is not None:
        return fast
    try:
        return json_format.ParseDict(value, pb.DecideRequest())
    except json_format.ParseError as exc:
        raise ValueError(f"not a DecideRequest: {exc}") from None


def _fast_request(value: dict[str, Any]) -> pb.DecideRequest | None:
    """The common form (what write_jsonl writes) built directly; None for anything else.

    json_format's parser is pure Python and costs more than a decision (timestamps go
    through strptime), which made parsing half of `nba simulate`. Every field of the
    form write_jsonl produces is handled here, type-checked exactly; any other spelling,
    type or value returns None and the caller falls back to json_format, which accepts
    every proto3 JSON form and words the errors. A test checks both give equal messages.
    """
    try:
        msg = pb.DecideRequest()
        for key, item in value.items():
            setter = _FAST_FIELDS.get(key)
            if setter is None or setter(msg, item) is False:
                return None
        return msg
    except (TypeError, ValueError, KeyError, AttributeError):
        return None


def _timestamp(text: Any, target: Any) -> bool:
    """RFC 3339 with a Z or an offset (fromisoformat: ~1 µs against strptime's ~20 µs)."""
    if not isinstance(text, str) or _RFC3339.fullmatch(text) is None:
        return False
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        return False
    since = moment - _EPOCH
    target.seconds = since.days * 86400 + since.seconds
    target.nanos = since.microseconds * 1000
    return True


def _interactions(msg: pb.DecideRequest, items: Any) -> bool:
    if not isinstance(items, list):
        return False
    built = []
    for item in items:
        if not isinstance(item, dict) or not item.keys() <= _INTERACTION_KEYS:
            return False
        action, channel = item.get("actionId", ""), item.get("channel", "")
        outcome = item.get("outcome", "OUTCOME_UNSPECIFIED")
        if not (isinstance(action, str) and isinstance(channel, str) and isinstance(outcome, str)):
            return False
        interaction = pb.Interaction(
            action_id=action, channel=channel, outcome=cast(pb.Outcome, pb.Outcome.Value(outcome))
        )
        if "at" in item and not _timestamp(item["at"], interaction.at):
            return False
        built.append(interaction)
    msg.interactions.extend(built)
    return True


def _touchpoint_fields(msg: pb.DecideRequest, item: Any) -> bool:
    if not isinstance(item, dict) or not item.keys() <= {"channel", "placement", "intent"}:
        return False
    if not all(isinstance(v, str) for v in item.values()):
        return False
    msg.touchpoint.SetInParent()
    for key, text in item.items():
        setattr(msg.touchpoint, key, text)
    return True


def _strings(item: Any) -> bool:
    return isinstance(item, list) and all(isinstance(v, str) for v in item)


def _set_string(name: str) -> Callable[[pb.DecideRequest, Any], bool]:
    def setter(msg: pb.DecideRequest, item: Any) -> bool:
        if not isinstance(item, str):
            return False
        setattr(msg, name, item)
        return True

    return setter


def _profile_struct(msg: pb.DecideRequest, item: Any) -> bool:
    if not isinstance(item, dict):
        return False
    msg.profile.SetInParent()
    msg.profile.update(item)
    return True


def _consent_map(msg: pb.DecideRequest, item: Any) -> bool:
    if not isinstance(item, dict) or not all(isinstance(v, bool) for v in item.values()):
        return False
    msg.consent.update(item)
    return True


def _max_results(msg: pb.DecideRequest, item: Any) -> bool:
    if type(item) is not int:
        return False
    msg.max_results = item
    return True


def _explain(msg: pb.DecideRequest, item: Any) -> bool:
    if not isinstance(item, bool):
        return False
    msg.explain = item
    return True


def _preferred_channels(msg: pb.DecideRequest, item: Any) -> bool:
    if not _strings(item):
        return False
    msg.preferred_channels.extend(item)
    return True


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# What json_format accepts, down to microseconds (nanoseconds go to json_format).
_RFC3339 = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{1,6})?(Z|[+-]\d\d:\d\d)")
_INTERACTION_KEYS = frozenset({"actionId", "channel", "outcome", "at"})
_FAST_FIELDS: dict[str, Callable[[pb.DecideRequest, Any], bool]] = {
    "customerId": _set_string("customer_id"),
    "lifecycleStage": _set_string("lifecycle_stage"),
    "timeZone": _set_string("time_zone"),
    "profile": _profile_struct,
    "interactions": _interactions,
    "touchpoint": _touchpoint_fields,
    "consent": _consent_map,
    "maxResults": _max_results,
    "explain": _explain,
    "asOf": lambda msg, text: _timestamp(text, msg.as_of),
    "preferredChannels": _preferred_channels,
}


def read_jsonl(path: str | Path) -> Iterator[pb.DecideRequest]:
    """The requests of a JSON-lines file, lazily; blank lines are skipped.

    Raises CustomerFileError (`path:line: what is wrong`) at the first bad line, and
    for a file that cannot be read, with line 0.
    """
    number = 0
    try:
        with open(path, encoding="utf-8") as lines:
            for number, text in enumerate(lines, start=1):
                if not text.strip():
                    continue
                try:
                    yield parse_line(text)
                except ValueError as exc:
                    raise CustomerFileError(path, number, str(exc)) from None
    except UnicodeDecodeError as exc:
        raise CustomerFileError(path, number + 1, f"not UTF-8 text: {exc.reason}") from None
    except OSError as exc:
        raise CustomerFileError(path, 0, exc.strerror or str(exc)) from None
