"""Load a rules directory into a RuleSet, collecting every error on the way.

Stages, each adding to one list of errors (nothing stops at the first):
  1. read and parse each YAML file (syntax errors with their mark);
  2. validate each file's structure with the pydantic models (unknown keys suggested);
  3. merge sections across files (duplicate ids name both places);
  4. check references between sections (channels, groups, actions, fallbacks);
  5. parse and resolve every condition against the declared schema;
  6. order segments into strata (a cycle is an error at each segment in it).
Only a set with no errors is returned; otherwise RuleSetError carries them all.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from nba.errors import Location, RuleError, RuleSetError, did_you_mean, pydantic_message
from nba.ruleset import conditions as cond
from nba.ruleset import load_experiments
from nba.ruleset.durations import duration_seconds
from nba.ruleset.model import (
    ID_PATTERN,
    LIST_SECTIONS,
    SECTIONS,
    SINGLE_SECTIONS,
    ActionSpec,
    ArbitrationSpec,
    AttributeSpec,
    AttributeType,
    BudgetSpec,
    ChannelSpec,
    ContextSpec,
    Engagement,
    FallbackSpec,
    Kind,
    LearningOverride,
    LearningSpec,
    NamedCondition,
    PoliciesSpec,
    PredictorSpec,
    RuleSetMeta,
    RuleSpec,
    SegmentSpec,
    Targets,
    expand_attribute,
)
from nba.ruleset.resolve import BrokenReference, ConditionCheckError, Expr, Scope, resolve
from nba.ruleset.ruleset import (
    DEFAULT_CLOCK_SKEW_SECONDS,
    ENGAGEMENT_STAGES,
    Action,
    Budget,
    Cap,
    Cooldown,
    Fallback,
    Learning,
    LearningContext,
    Lever,
    Policies,
    Predictor,
    QuietHours,
    Rule,
    RuleSet,
    Segment,
    Target,
)
from nba.ruleset.wording import Vocabulary, describe
from nba.ruleset.yaml_source import Path_, SourceDocument, read_document

EXCLUDED_DIRS = ("tests", "examples")


@dataclass(frozen=True, slots=True)
class Entry:
    """A list item of some section, with the document and path it came from."""

    item: Any
    doc: SourceDocument
    path: Path_

    def at(self, *more: str | int) -> Location:
        return self.doc.locate((*self.path, *more))


def rule_files(directory: Path) -> list[Path]:
    """The YAML files of a rule set: recursive, sorted, minus tests/ and examples/."""
    files = [
        p
        for p in sorted(directory.rglob("*"))
        if p.suffix in (".yaml", ".yml")
        and p.is_file()
        and not any(part in EXCLUDED_DIRS for part in p.relative_to(directory).parts[:-1])
    ]
    return files


def load_ruleset(directory: str | Path, display_root: str | Path | None = None) -> RuleSet:
    """Load and check a rule set. Raises RuleSetError listing every problem."""
    root = Path(directory)
    if not root.is_dir():
        raise RuleSetError([RuleError("io", f"rules directory '{root}' does not exist")])
    shown = Path(display_root) if display_root is not None else root
    files = rule_files(root)
    if not files:
        raise RuleSetError(
            [RuleError("io", f"no rule files (*.yaml) in '{root}'; expected at least one")]
        )
    return _Assembler().assemble([(p, shown, p.relative_to(root)) for p in files])


def load_documents(named_texts: Iterable[tuple[str, str]]) -> RuleSet:
    """Load a rule set from in-memory (file name, YAML text) pairs; used by tests and tools."""
    from nba.ruleset.yaml_source import parse_text

    assembler = _Assembler()
    docs = []
    for name, text in named_texts:
        doc, errors = parse_text(text, name)
        assembler.errors.extend(errors)
        assembler.unreadable |= doc is None
        if doc is not None:
            docs.append((doc, _identity(name, text.encode())))
    return assembler.assemble_documents(docs)


class _Assembler:
    def __init__(self) -> None:
        self.errors: list[RuleError] = []
        self.unreadable = False  # a file failed to parse: its sections are unknown

    # -- 1 & 2: files
    def assemble(self, files: list[tuple[Path, Path, Path]]) -> RuleSet:
        """Each file as (its path, the root shown in messages, its path inside the rules dir)."""
        docs = []
        for path, shown, relative in files:
            doc, errors = read_document(path, str(shown / relative))
            self.errors.extend(errors)
            self.unreadable |= doc is None
            if doc is not None:
                docs.append((doc, _identity(relative.as_posix(), path.read_bytes())))
        return self.assemble_documents(docs)

    def assemble_documents(self, docs: list[tuple[SourceDocument, str]]) -> RuleSet:
        merged = self.merge([doc for doc, _digest in docs])
        ruleset = self.build(merged, _version(docs), tuple(d.file for d, _ in docs))
        if self.errors or ruleset is None:
            raise RuleSetError(self.errors)
        return ruleset

    # -- 2: structure, item by item
    def validate(self, model: type[BaseModel], value: Any, doc: SourceDocument, path: Path_) -> Any:
        """The validated item, or None after recording its errors (located in the file)."""
        try:
            return model.model_validate(value)
        except ValidationError as exc:
            for err in _deepest(exc.errors()):
                self.pydantic_error(doc, (*path, *err["loc"]), err, model)
            return None

    def pydantic_error(
        self, doc: SourceDocument, loc: tuple[Any, ...], err: Any, model: type
    ) -> None:
        # Union members add their type names to the path; they are not document keys.
        path = tuple(p for p in loc if isinstance(p, int) or not _is_type_tag(p))
        where = ".".join(f"[{p}]" if isinstance(p, int) else str(p) for p in path).replace(
            ".[", "["
        )
        kind = err["type"]
        if kind == "extra_forbidden":
            key = path[-1]
            allowed = _allowed_keys(model, [p for p in loc if isinstance(p, str)])
            message = f"{where}: unknown key '{key}'; expected one of {', '.join(allowed)}"
            self.error(
                "unknown-key", message, doc.locate_key(path), did_you_mean(str(key), allowed)
            )
            return
        got = err.get("input")
        message = pydantic_message(kind, err["msg"], got, str(path[-1]) if path else "")
        shown = "" if isinstance(got, dict | list) or "; expected" in message else f" (got {got!r})"
        hint = ""
        expected = (err.get("ctx") or {}).get("expected")
        if kind == "enum" and expected and isinstance(got, str):
            options = [v.strip(" '") for v in expected.replace(" or ", ", ").split(",")]
            hint = did_you_mean(got, options)
        self.error("schema", f"{where}: {message}{shown}", doc.locate(path), hint)

    # -- 3: merge
    def merge(self, docs: list[SourceDocument]) -> dict[str, Any]:
        merged: dict[str, Any] = {"broken": {}}
        for doc in docs:
            if not isinstance(doc.data, dict):
                if doc.data not in (None, {}):
                    self.error(
                        "structure",
                        "a rule file is a mapping of sections; expected `section: ...`",
                        doc.locate(()),
                    )
                continue
            for section, value in doc.data.items():
                if section not in SECTIONS:
                    self.error(
                        "unknown-section",
                        f"unknown section '{section}'; expected one of {', '.join(SECTIONS)}",
                        doc.locate_key((section,)),
                        did_you_mean(str(section), SECTIONS),
                    )
                elif section in LIST_SECTIONS:
                    self.merge_list(merged, section, value, doc)
                elif section == "profile":
                    self.merge_profile(merged, value, doc)
                else:
                    self.merge_single(merged, section, value, doc)
        return merged

    def merge_list(
        self, merged: dict[str, Any], section: str, value: Any, doc: SourceDocument
    ) -> None:
        if not isinstance(value, list):
            self.error(
                "schema",
                f"{section}: expected a list of entries (`- id: ...`)",
                doc.locate((section,)),
            )
            return
        items = merged.setdefault(section, [])
        for i, raw in enumerate(value):
            item = self.validate(LIST_SECTIONS[section], raw, doc, (section, i))
            if item is not None:
                items.append(Entry(item, doc, (section, i)))
            elif isinstance(raw, dict) and isinstance(raw.get("id"), str):
                # Known but broken: references to it are not reported a second time.
                merged["broken"].setdefault(section, set()).add(raw["id"])
                if section == "actions" and isinstance(raw.get("group"), str):
                    merged["broken"].setdefault("groups", set()).add(raw["group"])

    def merge_profile(self, merged: dict[str, Any], value: Any, doc: SourceDocument) -> None:
        if not isinstance(value, dict):
            self.error(
                "schema", "profile: expected a mapping of attribute: type", doc.locate(("profile",))
            )
            return
        attrs = merged.setdefault("profile", {})
        for name, raw in value.items():
            path: Path_ = ("profile", name)
            if not isinstance(name, str) or not re.match(ID_PATTERN, name):
                self.error(
                    "schema",
                    f"profile.{name}: not an attribute name; expected lowercase snake_case,"
                    " e.g. monthly_income",
                    doc.locate(path),
                )
                continue
            spec = self.validate(AttributeSpec, expand_attribute(raw), doc, path)
            if spec is None:
                merged["broken"].setdefault("profile", set()).add(name)
            elif name in attrs:
                self.error(
                    "duplicate-id",
                    f"attribute '{name}' is also declared at {attrs[name].at()};"
                    " expected each attribute once",
                    doc.locate(path),
                )
            else:
                attrs[name] = Entry(spec, doc, path)

    def stage_list(self, value: Any, doc: SourceDocument) -> list[str] | None:
        """`lifecycle_stages`, each stage checked where it is written."""
        if not isinstance(value, list) or not value:
            self.error(
                "schema",
                "lifecycle_stages: expected a non-empty list of stage ids, e.g. [active, lapsed]",
                doc.locate(("lifecycle_stages",)),
            )
            return None
        good = True
        for i, stage in enumerate(value):
            if not isinstance(stage, str) or not re.match(ID_PATTERN, stage):
                good = False
                self.error(
                    "schema",
                    f"lifecycle_stages[{i}]: {stage!r} is not a stage id; expected lowercase"
                    " snake_case starting with a letter, e.g. at_risk",
                    doc.locate(("lifecycle_stages", i)),
                )
        return list(value) if good else None

    def merge_single(
        self, merged: dict[str, Any], section: str, value: Any, doc: SourceDocument
    ) -> None:
        if section in merged:
            self.error(
                "duplicate-section",
                f"section '{section}' is also defined at {merged[section].at()};"
                " expected it once in the rule set",
                doc.locate((section,)),
            )
            return
        if section == "lifecycle_stages":
            item = self.stage_list(value, doc)
        else:
            item = self.validate(SINGLE_SECTIONS[section], value, doc, (section,))
        if item is not None:
            merged[section] = Entry(item, doc, (section,))
        else:
            merged["broken"].setdefault(section, set()).add(section)

    # -- 4, 5, 6: the set
    def build(self, merged: dict[str, Any], version: str, files: tuple[str, ...]) -> RuleSet | None:
        self.broken: dict[str, set[str]] = merged["broken"]
        for section, what in (
            ("lifecycle_stages", "the stages a request may name"),
            ("channels", "at least one channel"),
            ("actions", "at least one action"),
        ):
            if not merged.get(section) and section not in self.broken and not self.unreadable:
                where = Location(files[0], 1, 1) if files else None
                self.error(
                    "missing-section", f"no `{section}` section in any file; expected {what}", where
                )
        stages_entry = merged.get("lifecycle_stages")
        stages = tuple(stages_entry.item) if stages_entry else ()
        for i, stage in enumerate(stages):
            if stage in stages[:i] and stages_entry:
                self.error(
                    "duplicate-id",
                    f"lifecycle stage '{stage}' is listed twice; expected each stage once",
                    stages_entry.at(i),
                )
        channel_entries: list[Entry] = self.unique(merged.get("channels", []), "channel")
        channels = {e.item.id: e.item for e in channel_entries}
        attributes: dict[str, AttributeSpec] = {
            k: e.item for k, e in merged.get("profile", {}).items()
        }
        segment_entries = self.unique(merged.get("segments", []), "segment")
        action_entries = self.unique(merged.get("actions", []), "action")
        rule_entries = self.unique(merged.get("rules", []), "rule")
        lever_entries = self.unique(merged.get("levers", []), "lever")

        actions = {e.item.id: self.action(e, channels) for e in action_entries}
        groups = frozenset(a.group for a in actions.values())
        scope = Scope(
            attributes=attributes,
            stages=stages,
            channels=tuple(channels),
            segments=frozenset(e.item.id for e in segment_entries),
            actions=frozenset(actions),
            groups=groups,
            broken=frozenset().union(*self.broken.values()),
            lenient=self.unreadable,
        )
        rules: list[Rule] = []
        segment_deps: dict[str, set[str]] = {}
        for entry in segment_entries:
            spec: SegmentSpec = entry.item
            rule = self.rule(
                entry,
                ("when",),
                spec.id,
                "segment",
                spec.when,
                scope,
                segment=spec.id,
                because=spec.because,
            )
            if rule is not None:
                rules.append(rule)
                segment_deps[spec.id] = set(scope.referenced_segments)
            scope.referenced_segments.clear()
        for entry in action_entries:
            rules.extend(self.engagement_rules(entry, scope))
        for entry in rule_entries:
            rule_spec: RuleSpec = entry.item
            effect: Kind = "suppress" if rule_spec.suppress is not None else "weight"
            targets_spec = (
                rule_spec.suppress if rule_spec.suppress is not None else rule_spec.weight
            )
            assert targets_spec is not None
            targets = self.targets(targets_spec, actions, groups, entry, effect)
            factor = getattr(targets_spec, "factor", 1.0)
            if rule_spec.because and effect == "suppress":
                self.error(
                    "schema",
                    f"`because` on suppression '{rule_spec.id}': a suppression holds to exclude;"
                    " expected its sentence as `reason:`",
                    entry.at("because"),
                )
            rule = self.rule(
                entry,
                ("when",),
                rule_spec.id,
                effect,
                rule_spec.when,
                scope,
                reason=rule_spec.reason,
                because=rule_spec.because,
                targets=targets,
                target=Target(
                    frozenset(targets_spec.actions),
                    frozenset(targets_spec.groups),
                    frozenset(targets_spec.purposes),
                    targets_spec.all,
                ),
                factor=factor,
            )
            if rule is not None:
                rules.append(rule)
            scope.referenced_segments.clear()

        strata = self.stratify(segment_deps, {e.item.id: e for e in segment_entries})
        last = max(strata.values(), default=-1) + 1
        vocabulary = Vocabulary(
            segment_because={e.item.id: e.item.because for e in segment_entries},
            action_names={a.id: a.name for a in actions.values()},
        )
        rules = [
            _with(
                r,
                stratum=strata.get(r.segment or "", 0) if r.kind == "segment" else last,
                words=describe(r.expr, vocabulary, r.action),
            )
            for r in rules
        ]
        asleep = {e.item.id for e in rule_entries if not e.item.enabled}
        dormant = [r for r in rules if r.kind in ("suppress", "weight") and r.id in asleep]
        rules = [_with(r, index=i) for i, r in enumerate(r for r in rules if r not in dormant)]
        levers = tuple(
            Lever(
                e.item.id,
                self.targets(e.item, actions, groups, e, "lever"),
                e.item.factor,
                e.item.description,
                e.at(),
            )
            for e in lever_entries
        )
        fallbacks = tuple(self.fallback(e, actions, channels) for e in merged.get("fallbacks", []))
        policies = self.policies(merged.get("policies"), channels, groups)
        budgets = self.budgets(merged.get("budgets", []), actions, groups, channels)
        learning = self.learning(merged.get("learning"), action_entries, groups)
        learning_context = self.learning_context(
            merged.get("learning"), attributes, frozenset(e.item.id for e in segment_entries)
        )
        experiments = load_experiments.experiments(
            merged.get("experiments", []),
            merged.get("universal_control"),
            load_experiments.names_of(rules, dormant, (lv.id for lv in levers), bool(learning)),
            self.error,
        )
        if self.errors:
            return None
        meta = merged["ruleset"].item if "ruleset" in merged else RuleSetMeta()
        arbitration = merged["arbitration"].item if "arbitration" in merged else ArbitrationSpec()
        ordered = {k: actions[k] for k in sorted(actions)}
        return RuleSet(
            version=version,
            meta=meta,
            stages=stages,
            channels=channels,
            attributes=attributes,
            segments={
                e.item.id: Segment(e.item.id, e.item.description, e.at()) for e in segment_entries
            },
            actions=ordered,
            rules=tuple(rules),
            levers=levers,
            arbitration=arbitration,
            fallbacks=fallbacks,
            files=files,
            policies=policies,
            learning=learning,
            learning_context=learning_context if learning else None,
            experiments=experiments,
            dormant_rules=tuple(dormant),
            budgets=budgets,
            attribute_locations={
                k: e.doc.locate_key(e.path) for k, e in merged.get("profile", {}).items()
            },
            channel_locations={e.item.id: e.at() for e in channel_entries},
        )

    def unique(self, entries: list[Entry], what: str) -> list[Entry]:
        seen: dict[str, Entry] = {}
        for entry in entries:
            ident = entry.item.id
            if ident in seen:
                self.error(
                    "duplicate-id",
                    f"{what} '{ident}' is also defined at {seen[ident].at('id')};"
                    f" expected each {what} id once",
                    entry.at("id"),
                )
                continue
            seen[ident] = entry
        return list(seen.values())

    def action(self, entry: Entry, channels: dict[str, ChannelSpec]) -> Action:
        spec: ActionSpec = entry.item
        for channel in spec.treatments:
            if channel not in channels and not self.maybe_defined("channels", channel):
                self.error(
                    "unknown-channel",
                    f"treatment for unknown channel '{channel}'; expected a declared channel",
                    entry.doc.locate_key((*entry.path, "treatments", channel)),
                    did_you_mean(channel, channels),
                )
        return Action(
            id=spec.id,
            name=spec.name or spec.id,
            description=spec.description,
            purpose=spec.purpose,
            group=spec.group,
            value=spec.value,
            propensity=spec.propensity,
            one_time=spec.one_time,
            offer=spec.offer,
            treatments=spec.treatments,
            channels=tuple(c for c in channels if c in spec.treatments),
            location=entry.at(),
        )

    def engagement_rules(self, entry: Entry, scope: Scope) -> Iterator[Rule]:
        spec: ActionSpec = entry.item
        action_scope = Scope(
            **{**scope.__dict__, "this_action": spec.id, "referenced_segments": set()}
        )
        for stage in ENGAGEMENT_STAGES:
            value: Engagement | None = getattr(spec, stage)
            if value is None:
                continue
            if isinstance(value, str):
                rule = self.rule(
                    entry,
                    (stage,),
                    f"{spec.id}.{stage}",
                    stage,
                    value,
                    action_scope,
                    action=spec.id,
                )
                if rule is not None:
                    yield rule
                continue
            seen: set[str] = set()
            for i, named in enumerate(value):
                assert isinstance(named, NamedCondition)
                if named.id in seen:
                    self.error(
                        "duplicate-id",
                        f"rule id '{named.id}' is used twice in {stage};"
                        f" expected each rule id once within an action's {stage}",
                        entry.at(stage, i, "id"),
                    )
                seen.add(named.id)
                rule = self.rule(
                    entry,
                    (stage, i, "when"),
                    f"{spec.id}.{stage}.{named.id}",
                    stage,
                    named.when,
                    action_scope,
                    action=spec.id,
                    reason=named.reason,
                    because=named.because,
                )
                if rule is not None:
                    yield rule

    def rule(
        self,
        entry: Entry,
        where: Path_,
        rule_id: str,
        kind: Kind,
        text: str,
        scope: Scope,
        **extra: Any,
    ) -> Rule | None:
        expr = self.condition(entry, where, text, scope)
        if expr is None:
            return None
        return Rule(
            index=-1,
            id=rule_id,
            kind=kind,
            expr=expr,
            source=text,
            location=entry.at(*where),
            stratum=0,
            **extra,
        )

    def condition(self, entry: Entry, where: Path_, text: str, scope: Scope) -> Expr | None:
        path = (*entry.path, *where)
        source = entry.doc.sources.get(path)

        def at(offset: int) -> Location:
            return source.locate(offset) if source else entry.doc.locate(path)

        try:
            return resolve(cond.parse(text), scope)
        except cond.ConditionSyntaxError as exc:
            expected = f"; expected {exc.expected}" if exc.expected else ""
            self.error("syntax", f"{exc.message}{expected}", at(exc.offset))
        except BrokenReference:
            pass  # the broken definition has its own error already
        except ConditionCheckError as exc:
            for err in exc.errors:
                expected = f"; expected {err.expected}" if err.expected else ""
                self.error("type", f"{err.message}{expected}", at(err.span.start), err.hint)
        return None

    def targets(
        self,
        spec: Targets,
        actions: dict[str, Action],
        groups: frozenset[str],
        entry: Entry,
        what: str,
    ) -> frozenset[str]:
        base: tuple[str | int, ...] = (what,) if what in ("suppress", "weight") else ()
        for i, name in enumerate(spec.actions):
            if name not in actions and not self.maybe_defined("actions", name):
                self.error(
                    "unknown-action",
                    f"unknown action '{name}'; expected a declared action",
                    entry.at(*base, "actions", i),
                    did_you_mean(name, actions),
                )
        for i, name in enumerate(spec.groups):
            if name not in groups and not self.maybe_defined("groups", name):
                self.error(
                    "unknown-group",
                    f"unknown group '{name}'; expected a group some action belongs to",
                    entry.at(*base, "groups", i),
                    did_you_mean(name, groups),
                )
        return frozenset(
            a.id
            for a in actions.values()
            if spec.all
            or a.id in spec.actions
            or a.group in spec.groups
            or a.purpose in spec.purposes
        )

    def fallback(
        self, entry: Entry, actions: dict[str, Action], channels: dict[str, ChannelSpec]
    ) -> Fallback:
        spec: FallbackSpec = entry.item
        action = actions.get(spec.action)
        if action is None and not self.maybe_defined("actions", spec.action):
            self.error(
                "unknown-action",
                f"fallback names unknown action '{spec.action}'; expected a declared action",
                entry.at("action"),
                did_you_mean(spec.action, actions),
            )
        if (
            spec.channel is not None
            and spec.channel not in channels
            and not self.maybe_defined("channels", spec.channel)
        ):
            self.error(
                "unknown-channel",
                f"unknown channel '{spec.channel}'; expected a declared channel",
                entry.at("channel"),
                did_you_mean(spec.channel, channels),
            )
        elif (
            spec.channel is not None
            and action is not None
            and spec.channel not in action.treatments
        ):
            self.error(
                "missing-treatment",
                f"fallback action '{spec.action}' has no treatment for channel '{spec.channel}';"
                " expected a treatment for every channel it serves",
                entry.at("channel"),
            )
        return Fallback(spec.action, spec.channel, spec.placement, entry.at())

    def learning(
        self, entry: Entry | None, action_entries: list[Entry], groups: frozenset[str]
    ) -> dict[str, Learning]:
        """Each learning action's settings: the section's, its group's, then its own."""
        if entry is None:
            return {}
        spec: LearningSpec = entry.item
        for group in spec.groups:
            self.known_group(group, groups, entry.at("groups", group))
        learned = {}
        for action_entry in action_entries:
            action: ActionSpec = action_entry.item
            layers = [spec, spec.groups.get(action.group), action.learning]
            settings = {
                name: value
                for layer in layers
                if layer is not None
                for name, value in layer.model_dump(exclude_none=True).items()
                if name in LearningOverride.model_fields
            }
            if settings.get("enabled", True) is False:
                continue
            both = set(settings.get("positives", ("accept", "click"))) & set(
                settings.get("negatives", ("reject", "dismiss"))
            )
            if both:
                self.error(
                    "learning-outcome",
                    f"action '{action.id}' learns {', '.join(sorted(both))} as both a positive"
                    " and a negative (from the learning section, its group and its own);"
                    " expected each outcome in one list",
                    action_entry.at("learning") if action.learning else entry.at(),
                )
                continue
            learned[action.id] = Learning(
                positives=frozenset(
                    OUTCOMES[o] for o in settings.get("positives", ("accept", "click"))
                ),
                negatives=frozenset(
                    OUTCOMES[o] for o in settings.get("negatives", ("reject", "dismiss"))
                ),
                prior_strength=float(settings.get("prior_strength", 20)),
                half_life_seconds=duration_seconds(spec.half_life),
                explore=settings.get("exploration", "thompson") == "thompson",
                maturity_positives=spec.maturity.positives,
                maturity_share=float(spec.maturity.share),
            )
        return learned

    def learning_context(
        self, entry: Entry | None, attributes: Mapping[str, AttributeSpec], segments: frozenset[str]
    ) -> LearningContext | None:
        """`learning.context`: the segments or predictors propensities are learned per."""
        if entry is None or entry.item.context is None:
            return None
        spec: ContextSpec = entry.item.context
        for i, segment in enumerate(spec.segments):
            self.known_segment(segment, segments, entry.at("context", "segments", i))
        predictors = []
        for i, item in enumerate(spec.predictors):
            found = self.predictor(item, attributes, segments, entry.at("context", "predictors", i))
            if found is not None:
                predictors.append(found)
        return LearningContext(
            segments=spec.segments,
            segment_feature=_feature("segment", spec.segments) if spec.segments else "",
            predictors=tuple(predictors),
            strength=float(spec.strength),
        )

    def known_segment(self, segment: str, segments: frozenset[str], at: Location) -> bool:
        if segment in segments:
            return True
        self.error(
            "unknown-segment",
            f"unknown segment '{segment}'; expected a segment of segments.yaml",
            at,
            did_you_mean(segment, segments),
        )
        return False

    def predictor(
        self,
        spec: PredictorSpec,
        attributes: Mapping[str, AttributeSpec],
        segments: frozenset[str],
        at: Location,
    ) -> Predictor | None:
        """A predictor's bins: a segment's in / out, an enum's values, a number's cuts."""
        if spec.segment is not None:
            if not self.known_segment(spec.segment, segments, at):
                return None
            feature = _feature(f"segment.{spec.segment}", ())
            return Predictor(feature, None, spec.segment, bin_labels=("missing", "out", "in"))
        name = spec.attribute or ""
        attribute = attributes.get(name)
        if attribute is None:
            self.error(
                "unknown-attribute",
                f"unknown profile attribute '{name}'; expected one declared in profile.yaml",
                at,
                did_you_mean(name, attributes),
            )
            return None
        kind = attribute.type
        if kind in (AttributeType.INT, AttributeType.NUMBER) and spec.bins:
            cuts = tuple(float(c) for c in spec.bins)
            labels: tuple[str, ...] = ("missing", f"< {spec.bins[0]}")
            labels += tuple(f"{a} to {b}" for a, b in zip(spec.bins, spec.bins[1:], strict=False))
            labels += (f">= {spec.bins[-1]}",)
            return Predictor(_feature(name, cuts), name, None, cuts=cuts, bin_labels=labels)
        if kind in (AttributeType.ENUM, AttributeType.BOOL) and not spec.bins:
            values = attribute.values if kind is AttributeType.ENUM else ("false", "true")
            labels = ("missing", *values)
            return Predictor(_feature(name, values), name, None, values=values, bin_labels=labels)
        expected = (
            "`bins:` (ascending cut points) for a number attribute"
            if kind in (AttributeType.INT, AttributeType.NUMBER)
            else "an enum, bool or number (with `bins:`) attribute, or a segment"
        )
        self.error(
            "predictor-bins",
            f"predictor '{name}' is a {kind.value} attribute; expected {expected}",
            at,
        )
        return None

    def policies(
        self, entry: Entry | None, channels: dict[str, ChannelSpec], groups: frozenset[str]
    ) -> Policies:
        if entry is None:
            return Policies()
        spec: PoliciesSpec = entry.item
        for i, cap in enumerate(spec.caps):
            self.known_channel(cap.channel, channels, entry.at("caps", i, "channel"))
            for j, group in enumerate(cap.groups):
                self.known_group(group, groups, entry.at("caps", i, "groups", j))
        for i, cooldown in enumerate(spec.cooldowns):
            self.known_channel(cooldown.channel, channels, entry.at("cooldowns", i, "channel"))
            for j, channel in enumerate(cooldown.channels):
                self.known_channel(channel, channels, entry.at("cooldowns", i, "channels", j))
        for i, quiet in enumerate(spec.quiet_hours):
            for j, channel in enumerate(quiet.channels):
                self.known_channel(channel, channels, entry.at("quiet_hours", i, "channels", j))
        for kind, ids in (
            ("caps", [c.id for c in spec.caps]),
            ("cooldowns", [c.id for c in spec.cooldowns]),
            ("quiet_hours", [q.id for q in spec.quiet_hours]),
        ):
            seen: set[str] = set()
            for i, item_id in enumerate(ids):
                if item_id in seen:
                    self.error(
                        "duplicate-id",
                        f"{kind} id '{item_id}' is used twice; expected each id once",
                        entry.at(kind, i, "id"),
                    )
                seen.add(item_id)
        pause = spec.complaint_pause
        return Policies(
            stored_consent=spec.consent.stored,
            caps=tuple(
                Cap(
                    c.id,
                    c.max,
                    duration_seconds(c.within),
                    frozenset(OUTCOMES[o] for o in c.outcomes),
                    c.channel,
                    c.purpose,
                    frozenset(c.groups),
                    c.each,
                    c.reason,
                    entry.at("caps", i),
                    entry.at("caps", i, "within"),
                )
                for i, c in enumerate(spec.caps)
            ),
            cooldowns=tuple(
                Cooldown(
                    c.id,
                    OUTCOMES[c.outcome],
                    c.count,
                    duration_seconds(c.within),
                    duration_seconds(c.pause),
                    c.each,
                    c.purpose,
                    c.reason,
                    entry.at("cooldowns", i),
                    (c.channel,) if c.channel is not None else c.channels,
                    entry.at("cooldowns", i, "within"),
                    entry.at("cooldowns", i, "pause"),
                )
                for i, c in enumerate(spec.cooldowns)
            ),
            complaint_pause_seconds=duration_seconds(pause.pause) if pause else None,
            complaint_pause_purposes=frozenset(pause.purposes) if pause else frozenset(),
            complaint_pause_location=entry.at("complaint_pause") if pause else None,
            complaint_pause_at=entry.at("complaint_pause", "pause") if pause else None,
            quiet_hours=tuple(
                QuietHours(
                    q.id,
                    frozenset(q.channels),
                    _minutes(q.start),
                    _minutes(q.end),
                    entry.at("quiet_hours", i),
                )
                for i, q in enumerate(spec.quiet_hours)
            ),
            clock_skew_seconds=(
                duration_seconds(spec.clock_skew)
                if spec.clock_skew is not None
                else DEFAULT_CLOCK_SKEW_SECONDS
            ),
        )

    def budgets(
        self,
        entries: list[Entry],
        actions: dict[str, Action],
        groups: frozenset[str],
        channels: dict[str, ChannelSpec],
    ) -> tuple[Budget, ...]:
        """`budgets:`: volume constraints over all customers, targets resolved to action ids."""
        budgets = []
        for entry in self.unique(entries, "budget"):
            spec: BudgetSpec = entry.item
            self.known_channel(spec.channel, channels, entry.at("channel"))
            if spec.paced and spec.per == "total":
                self.error(
                    "schema",
                    f"budget '{spec.id}' is paced but counted in total: a total has no end to"
                    " spread it over; expected `per: day`, `week` or `month`, or no `paced`",
                    entry.at("paced"),
                )
            targets = self.targets(spec, actions, groups, entry, "budget")
            budgets.append(
                Budget(spec.id, spec.limit, spec.per, targets, spec.channel, spec.paced, entry.at())
            )
        return tuple(budgets)

    def known_channel(
        self, name: str | None, channels: dict[str, ChannelSpec], at: Location
    ) -> None:
        if name is not None and name not in channels and not self.maybe_defined("channels", name):
            self.error(
                "unknown-channel",
                f"unknown channel '{name}'; expected a declared channel",
                at,
                did_you_mean(name, channels),
            )

    def known_group(self, name: str, groups: frozenset[str], at: Location) -> None:
        if name not in groups and not self.maybe_defined("groups", name):
            self.error(
                "unknown-group",
                f"unknown group '{name}'; expected a group some action belongs to",
                at,
                did_you_mean(name, groups),
            )

    def stratify(self, deps: dict[str, set[str]], entries: dict[str, Entry]) -> dict[str, int]:
        """Stratum of each segment: 0 without segment deps, else 1 + the deepest dep."""
        level: dict[str, int] = {}
        visiting: list[str] = []

        def visit(name: str) -> int:
            if name in level:
                return level[name]
            if name in visiting:
                cycle = [*visiting[visiting.index(name) :], name]
                for member in set(cycle):
                    self.error(
                        "segment-cycle",
                        f"segment '{member}' is part of a cycle: {' -> '.join(cycle)};"
                        " expected segments to depend on each other without loops",
                        entries[member].at("when"),
                    )
                    level[member] = 0
                return 0
            visiting.append(name)
            depth = 1 + max((visit(d) for d in deps.get(name, ()) if d in deps), default=-1)
            visiting.pop()
            level.setdefault(name, depth)
            return level[name]

        for name in deps:
            visit(name)
        return level

    def maybe_defined(self, kind: str, name: str) -> bool:
        """A name that may be defined where we could not look: say nothing about it."""
        return self.unreadable or name in self.broken.get(kind, ())

    def error(
        self, code: str, message: str, location: Location | None = None, hint: str = ""
    ) -> None:
        self.errors.append(RuleError(code, message, location, hint))


OUTCOMES = {"impression": 1, "click": 2, "accept": 3, "dismiss": 4, "reject": 5, "complaint": 6}


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


def _with(rule: Rule, **changes: Any) -> Rule:
    from dataclasses import replace

    return replace(rule, **changes)


def _feature(name: str, definition: tuple[object, ...]) -> str:
    """A predictor's name in the counters: its name and a digest of what its bins mean."""
    digest = hashlib.blake2b(repr((name, definition)).encode(), digest_size=3).hexdigest()
    return f"{name}~{digest}"


def _identity(relative: str, content: bytes) -> str:
    """A file's part of the version: its path inside the rules directory and its bytes' hash.

    Relative, so `nba validate rules`, `nba validate /abs/path/rules` and a copy of the
    directory elsewhere all print the same version (the README says "versioned by content").
    """
    return relative + "\0" + hashlib.sha256(content).hexdigest()


def _version(docs: list[tuple[SourceDocument, str]]) -> str:
    """Content hash over relative file names and bytes: the same files give the same version."""
    digest = hashlib.sha256()
    for identity in sorted(identity for _doc, identity in docs):
        digest.update(identity.encode() + b"\0")
    return digest.hexdigest()[:12]


def _deepest(errors: list[Any]) -> list[Any]:
    """Drop a union member's shallow complaint when another member got further in.

    `eligible: [{id, when, because: ""}]` fails both as text ("got list") and, inside the
    list, at `because`: only the second says what is wrong.
    """

    def shallow(err: Any) -> bool:
        loc = tuple(err["loc"])
        if not loc or not isinstance(loc[-1], str) or not _is_type_tag(loc[-1]):
            return False
        prefix = loc[:-1]
        return any(
            len(o["loc"]) > len(loc) and tuple(o["loc"][: len(prefix)]) == prefix for o in errors
        )

    return [err for err in errors if not shallow(err)]


_TYPE_TAGS = (
    "str",
    "list[",
    "function-after",
    "function-before",
    "NamedCondition",
    "WeightTargets",
)


def _is_type_tag(part: str) -> bool:
    return part.startswith(_TYPE_TAGS) or part in ("str", "int", "float", "bool")


def _allowed_keys(model: type, names: list[str]) -> list[str]:
    """The keys allowed where an unknown key was found: walk the model along the path."""
    current: Any = model
    for name in names[:-1]:
        fields = getattr(current, "model_fields", {})
        if name not in fields:
            continue
        current = _item_model(fields[name].annotation) or current
    return list(getattr(current, "model_fields", {}))


def _item_model(annotation: Any) -> type | None:
    """The pydantic model inside an annotation such as `Targets | None` or `list[X] | str`."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in getattr(annotation, "__args__", ()):
        found = _item_model(arg)
        if found is not None:
            return found
    return None
