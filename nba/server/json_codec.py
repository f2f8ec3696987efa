"""DecideResponse as proto3 JSON, fast: the HTTP face's hot encoding.

json_format.MessageToJson walks every field in Python: 180 us for a typical response,
two thirds of what the decision itself costs. Most of a response does not change from
one decision to the next: a recommendation's treatment, offer and reasons come from the
rule set. So this encoder builds the JSON object of each such sub-message once
(json_format.MessageToDict, the reference mapping) and memoizes it by its serialized
bytes, writes the few per-decision fields itself, and serializes with orjson. Anything it
does not know field by field (an explained response's exclusions, a field added to the
proto later) falls back to json_format whole, so the output is always proto3 JSON;
tests/server/test_json_codec.py holds it equal to json_format's.
"""

from __future__ import annotations

from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import Message

from nba.v1 import decisioning_pb2 as pb

MEMO_LIMIT = 8192  # distinct treatments, offers and reasons kept; cleared past it
_RESPONSE_FIELDS = frozenset(
    {"decision_id", "ruleset_version", "recommendations", "segments", "degraded", "arms"}
)
# The fields _recommendation and _components write; tests/server/test_json_codec.py fails
# when the proto gains one, so that it gets written here too.
RECOMMENDATION_FIELDS = frozenset(
    {"rank", "action_id", "channel", "purpose", "score", "components", "treatment"}
    | {"offer", "reasons", "name", "group", "fallback"}
)
_COMPONENT_FIELDS = ("propensity", "context_weight", "value", "lever")
_COMPONENT_NAMES = {"context_weight": "contextWeight"}

_memo: dict[tuple[str, bytes], dict[str, Any]] = {}


def decide_response_json(response: pb.DecideResponse) -> bytes:
    """`response` in proto3 JSON, as json_format.MessageToJson would write it."""
    if any(field.name not in _RESPONSE_FIELDS for field, _ in response.ListFields()):
        return generic_json(response)
    out: dict[str, Any] = {}
    if response.decision_id:
        out["decisionId"] = response.decision_id
    if response.ruleset_version:
        out["rulesetVersion"] = response.ruleset_version
    if response.recommendations:
        out["recommendations"] = [_recommendation(r) for r in response.recommendations]
    if response.segments:
        out["segments"] = list(response.segments)
    if response.degraded:
        out["degraded"] = True
    if response.arms:
        out["arms"] = dict(response.arms)  # map<string, string>: a JSON object as it is
    return orjson.dumps(out)


def generic_json(message: Message) -> bytes:
    return json_format.MessageToJson(message, indent=None).encode()


def _recommendation(rec: pb.Recommendation) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if rec.rank:
        out["rank"] = rec.rank
    for name, key in (("action_id", "actionId"), ("channel", "channel"), ("purpose", "purpose")):
        value = getattr(rec, name)
        if value:
            out[key] = value
    if rec.score:
        out["score"] = rec.score
    if rec.HasField("components"):
        out["components"] = _components(rec.components)
    if rec.HasField("treatment"):
        out["treatment"] = _static(rec.treatment)
    if rec.HasField("offer"):
        out["offer"] = _static(rec.offer)
    if rec.reasons:
        out["reasons"] = [_static(r) for r in rec.reasons]
    if rec.name:
        out["name"] = rec.name
    if rec.group:
        out["group"] = rec.group
    if rec.fallback:
        out["fallback"] = True
    return out


def _components(components: pb.ScoreComponents) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name in _COMPONENT_FIELDS:
        value = getattr(components, name)
        if value:
            out[_COMPONENT_NAMES.get(name, name)] = value
    if components.HasField("learned"):  # per decision: its evidence moves
        out["learned"] = json_format.MessageToDict(components.learned)
    return out


def _static(message: Message) -> dict[str, Any]:
    """MessageToDict of a sub-message the rule set fixes, once per distinct content."""
    key = (message.DESCRIPTOR.full_name, message.SerializeToString(deterministic=True))
    found = _memo.get(key)
    if found is None:
        if len(_memo) >= MEMO_LIMIT:
            _memo.clear()  # a long-lived server across many rule sets: start again
        found = _memo[key] = json_format.MessageToDict(message)
    return found
