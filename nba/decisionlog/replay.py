"""`nba replay`: decide a logged decision again and say whether it comes out the same.

The record holds the request as decided (history already merged, consent as used), so
the replay reads no store: the archived rule set of the record's version is loaded, its
version checked against the record's, and the request re-decided by a Decider with no
store (its history merge then only re-sorts what is there). The replayed Decision goes
through the same RecordBuilder as the logged one, and the two are compared on what a
client saw: the ranking, each recommendation's score and components, the exclusions
and the segments.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from nba.decisionlog import DecisionRecord, detect_backend, open_decision_log
from nba.decisionlog.archive import RuleSetArchive
from nba.decisionlog.record import DEADLINE, RecordBuilder, decision_request
from nba.errors import NbaError
from nba.pipeline.decider import Decider
from nba.pipeline.types import OUTBOUND
from nba.ruleset.loader import load_ruleset
from nba.scoring.adaptive import ModelCache

SCORE_PARTS = ("propensity", "weight", "value", "lever")


class ReplayError(Exception):
    """The decision cannot be replayed (not logged, no archive, masked fields)."""


@dataclass(frozen=True)
class Replay:
    logged: DecisionRecord
    replayed: DecisionRecord
    differences: list[str]

    @property
    def identical(self) -> bool:
        return not self.differences


def find_record(log_dir: Path, decision_id: str) -> DecisionRecord:
    if not log_dir.is_dir():
        raise ReplayError(f"--log: '{log_dir}' is not a directory")
    decision_log = open_decision_log(log_dir, detect_backend(log_dir))
    try:
        record = decision_log.find(decision_id)
    finally:
        decision_log.close()
    if record is None:
        raise ReplayError(
            f"decision {decision_id} is not in the log at {log_dir} (not sampled, dropped,"
            " or removed by retention)"
        )
    return record


def replay(record: DecisionRecord, log_dir: Path) -> Replay:
    """Re-decide `record` with its archived rule set; the differences (none: identical)."""
    if record.masked:
        fields = ", ".join(f"{path} ({how})" for path, how in sorted(record.masked.items()))
        raise ReplayError(
            f"decision {record.decision_id} cannot be replayed exactly: the log left out or"
            f" masked {fields} (--decision-log-drop / --decision-log-mask)"
        )
    decider = _archived_decider(record, log_dir)
    if record.model and decider.ruleset.learning:  # score as logged, not as the rules say
        decider.close()
        decider = _archived_decider(record, log_dir, _logged_model(record))
    try:
        replayed = _redecide(decider, record)
    finally:
        decider.close()
    return Replay(record, replayed, differences(record, replayed))


def _logged_model(record: DecisionRecord) -> ModelCache:
    channel = record.touchpoint.get("channel", "")
    return ModelCache.fixed("" if channel == OUTBOUND else channel, record.model)


def _archived_decider(
    record: DecisionRecord, log_dir: Path, model: ModelCache | None = None
) -> Decider:
    archive = RuleSetArchive(log_dir)
    try:
        directory = archive.path_of(record.ruleset_version)
    except ValueError as exc:
        raise ReplayError(f"decision {record.decision_id}: {exc}") from None
    if not directory.is_dir():
        raise ReplayError(
            f"rule set {record.ruleset_version} of decision {record.decision_id} is not"
            f" archived under {archive.root}"
        )
    try:
        ruleset = load_ruleset(directory, display_root="")
    except NbaError as exc:
        raise ReplayError(f"the archived rule set {directory} does not load: {exc}") from None
    if ruleset.version != record.ruleset_version:
        raise ReplayError(
            f"the archive {directory} holds version {ruleset.version}, not"
            f" {record.ruleset_version}: it was changed after it was written"
        )
    return Decider(ruleset, record.engine, store=None, model=model)


def _redecide(decider: Decider, record: DecisionRecord) -> DecisionRecord:
    try:
        profile = decider.validator.profile_validator.validate_python(record.request["profile"])
    except ValidationError as exc:
        raise ReplayError(f"the logged profile does not fit its rule set: {exc}") from None
    request = decision_request(record, profile)
    if record.path == DEADLINE:
        decision = decider.out_of_time(request)
        decision.arms = dict(record.arms)  # a fallback's arms chose nothing; ids may be hashed
    else:  # the logged id: it seeds any exploration
        # Budgets are not claimed: the log holds what the picks were, the counts are gone.
        decision = decider.decide_request(request, record.decision_id, record.arms, claim=False)
    decision.decision_id = record.decision_id
    return RecordBuilder(engine=record.engine).record(decision, record.time)


def differences(logged: DecisionRecord, replayed: DecisionRecord) -> list[str]:
    """What a client would see differ, one line each."""
    found: list[str] = []
    logged_rank = [_placed(r) for r in logged.recommendations]
    replayed_rank = [_placed(r) for r in replayed.recommendations]
    if logged_rank != replayed_rank:
        found.append(f"ranking: logged {_listed(logged_rank)}; replayed {_listed(replayed_rank)}")
    replayed_by_place = {_placed(r): r for r in replayed.recommendations}
    for item in logged.recommendations:
        other = replayed_by_place.get(_placed(item))
        if other is not None and _score(item) != _score(other):
            found.append(
                f"score of {_placed(item)}: logged {_shown(item)}; replayed {_shown(other)}"
            )
    found += _exclusion_differences(logged.excluded, replayed.excluded)
    if logged.arms != replayed.arms:
        found.append(f"arms: logged {logged.arms}; replayed {replayed.arms}")
    if logged.segments != replayed.segments:
        found.append(f"segments: logged {logged.segments}; replayed {replayed.segments}")
    return found


def _exclusion_differences(
    logged: list[dict[str, Any]], replayed: list[dict[str, Any]]
) -> list[str]:
    ours = [_exclusion(e) for e in logged]
    theirs = [_exclusion(e) for e in replayed]
    lines = [f"excluded in the log only: {e}" for e in ours if e not in theirs]
    lines += [f"excluded in the replay only: {e}" for e in theirs if e not in ours]
    return lines


def _placed(item: dict[str, Any]) -> str:
    return f"{item['action']}@{item['channel']}" + (" (fallback)" if item["fallback"] else "")


def _listed(places: list[str]) -> str:
    return ", ".join(places) or "(nothing)"


def _score(item: dict[str, Any]) -> tuple[Any, ...]:
    return (item.get("score"), *(item.get(part) for part in SCORE_PARTS), item.get("learned"))


def _shown(item: dict[str, Any]) -> str:
    if "score" not in item:
        return "no score"
    parts = " x ".join(f"{item[p]:g}" for p in SCORE_PARTS)
    return f"{item['score']!r} ({parts})"


def _exclusion(item: dict[str, Any]) -> str:
    where = f" on {item['channel']}" if item["channel"] else ""
    return f"{item['action']}{where} at {item['stage']} by {item['rule']}: {item['reason']}"
