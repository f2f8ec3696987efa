"""The integration loop against a running `nba serve`: decide, record ACCEPT, decide again.

    .venv/bin/nba serve &                       # 127.0.0.1:50051, SQLite store under .nba/
    .venv/bin/python examples/python/decide_record_decide.py
    .venv/bin/python examples/python/decide_record_decide.py --address HOST:PORT FILE.json

It sends an example DecideRequest (default: the web homepage prospect, whose top
recommendation is the one-time switch bonus), records that the customer accepted the top
recommendation, and decides again: a one-time offer is gone, and the second decision
(explained) says which rule keeps it out. The store remembers the ACCEPT, so a second run
for the same customer no longer starts with that offer; `--customer` picks another id.

A request with `asOf` decides as of that moment and ignores every interaction after it,
including the ACCEPT recorded here: leave `asOf` out (the server uses its clock) unless you
are replaying the past.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import grpc
from google.protobuf import json_format

from nba.v1 import decisioning_pb2 as pb
from nba.v1 import decisioning_pb2_grpc as pb_grpc

REPO = Path(__file__).resolve().parents[2]
DEFAULT_REQUEST = REPO / "rules" / "examples" / "web_prospect_homepage.json"


def print_decision(title: str, response: pb.DecideResponse) -> None:
    print(f"{title} (decision {response.decision_id}):")
    for rec in response.recommendations:
        print(f"  {rec.rank}. {rec.action_id} on {rec.channel}: {rec.treatment.headline}")
    if not response.recommendations:
        print("  (nothing recommended)")


def accept(
    stub: pb_grpc.DecisionServiceStub, customer_id: str, decision: pb.DecideResponse
) -> pb.Recommendation:
    """Record that the customer accepted the top recommendation; `at` unset means now."""
    top = decision.recommendations[0]
    record = pb.RecordOutcomeRequest(
        customer_id=customer_id,
        decision_id=decision.decision_id,
        # A client-chosen id makes a retried call safe: it is recorded once.
        interaction_id=f"{decision.decision_id}:{top.action_id}:accept",
    )
    record.interaction.action_id = top.action_id
    record.interaction.channel = top.channel
    record.interaction.outcome = pb.ACCEPT
    stub.RecordOutcome(record, timeout=5)
    print(f"recorded ACCEPT of {top.action_id} on {top.channel}")
    return top


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("request", nargs="?", type=Path, default=DEFAULT_REQUEST)
    parser.add_argument("--address", default="127.0.0.1:50051", help="where nba serve listens")
    parser.add_argument("--customer", help="customer id to use instead of the file's")
    args = parser.parse_args(argv)

    request = json_format.Parse(args.request.read_text(encoding="utf-8"), pb.DecideRequest())
    if args.customer:
        request.customer_id = args.customer
    if request.HasField("as_of"):
        print(
            f"warning: {args.request.name} sets asOf {request.as_of.ToJsonString()}: "
            "outcomes recorded after that moment are invisible to it",
            file=sys.stderr,
        )
    request.explain = True  # so the second decision says why the accepted offer is gone

    with grpc.insecure_channel(args.address) as channel:
        stub = pb_grpc.DecisionServiceStub(channel)
        first = stub.Decide(request, timeout=5)
        print_decision("first decision", first)
        if not first.recommendations:
            return 1
        accepted = accept(stub, request.customer_id, first)
        second = stub.Decide(request, timeout=5)
        print_decision("after the ACCEPT", second)

    if any(r.action_id == accepted.action_id for r in second.recommendations):
        print(
            f"{accepted.action_id} is still recommended: it is not a one-time offer, "
            "or the request's asOf is before the ACCEPT"
        )
    else:
        why = next((e for e in second.excluded if e.action_id == accepted.action_id), None)
        reason = f": {why.rule}: {why.reason}" if why else ""
        print(f"{accepted.action_id} is no longer recommended{reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
