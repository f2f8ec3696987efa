"""The HTTP face: DecisionService over the Connect protocol's unary form (JSON or binary).

    POST /nba.v1.DecisionService/Decide        Content-Type: application/json | application/proto

Each route is one call into the transport-neutral DecisionService (service.py), the same
one the gRPC face calls; a failure answers through the one error table (errors.py) as a
Connect error object `{"code": "invalid_argument", "message": "field: what was wrong"}`
with the table's HTTP status. So curl, browser `fetch` and the Connect clients
(connect-web, connect-node) work unchanged. The paths of the proto's `google.api.http`
annotations (`POST /v1/decide`, ...) answer the same, for clients written against them.

Also served: `/healthz` (the process answers), `/readyz` (rules loaded and the store
reachable, else 503 with the reason), CORS for the configured origins only (a preflight is
answered before any authentication), the static pages under nba/server/web/ at `/` (the JS
client /nba.js, the website demo /demo/, the agent desktop /desk/), and the rule set's
example requests for the desk at `/desk/examples.json`.

The service is synchronous and CPU-bound (durable_rules holds the GIL), so each call runs
on a small thread pool beside the event loop: the loop keeps reading requests while a
decision runs, and a store round trip (which releases the GIL) overlaps other calls.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from nba.errors import RequestError, StoreError
from nba.server.errors import reported
from nba.server.json_codec import decide_response_json, generic_json
from nba.server.service import CallContext, DecisionService
from nba.v1 import decisioning_pb2 as pb

log = logging.getLogger(__name__)

WEB_DIR = Path(__file__).with_name("web")
SERVICE_PATH = "/" + pb.DESCRIPTOR.services_by_name["DecisionService"].full_name
JSON = "application/json"
PROTO = "application/proto"
# What a browser may send and read across origins: the headers of the Connect protocol
# (as connect-es's cors helper lists them) plus the bearer token.
CONNECT_REQUEST_HEADERS = (
    "Content-Type",
    "Connect-Protocol-Version",
    "Connect-Timeout-Ms",
    "Grpc-Timeout",
    "X-Grpc-Web",
    "X-User-Agent",
    "Authorization",
)
CONNECT_RESPONSE_HEADERS = ("Grpc-Status", "Grpc-Message", "Grpc-Status-Details-Bin")
MAX_TIMEOUT_DIGITS = 10  # the Connect spec: connect-timeout-ms has at most 10 digits


@dataclass(frozen=True)
class Rpc:
    """One RPC as the HTTP face routes it."""

    name: str
    http_path: str  # the google.api.http annotation's path (decisioning.proto)
    request_type: type[Message]
    call: Callable[[DecisionService], Callable[[Any, CallContext], Message]]


RPCS = (
    Rpc("Decide", "/v1/decide", pb.DecideRequest, lambda s: s.decide),
    Rpc("RecordOutcome", "/v1/outcomes", pb.RecordOutcomeRequest, lambda s: s.record_outcome),
    Rpc("UpdateConsent", "/v1/consent", pb.UpdateConsentRequest, lambda s: s.update_consent),
    Rpc("GetRuleSetStatus", "/v1/status", pb.GetRuleSetStatusRequest, lambda s: s.status),
)


def connect_error(code: str, message: str, status: int) -> JSONResponse:
    """A Connect error object (https://connectrpc.com/docs/protocol#error-end-stream)."""
    return JSONResponse({"code": code, "message": message}, status_code=status)


def invalid(field: str, message: str) -> JSONResponse:
    return connect_error("invalid_argument", f"{field}: {message}", 400)


def codec_of(content_type: str | None) -> str | None:
    """application/json or application/proto (parameters such as charset ignored), or None."""
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media if media in (JSON, PROTO) else None


def parse_body(body: bytes, codec: str, message_type: type[Message]) -> Message:
    """The request message; RequestError naming the field when the body does not parse."""
    message = message_type()
    if codec == PROTO:
        try:
            message.ParseFromString(body)
        except DecodeError as exc:
            raise RequestError("body", f"not a valid {message_type.__name__}: {exc}") from None
        return message
    try:
        json_format.Parse(body or b"{}", message)  # unknown fields are refused, by name
    except json_format.ParseError as exc:
        raise json_error(str(exc), message_type) from None
    except UnicodeDecodeError:
        raise RequestError("body", "not UTF-8") from None
    return message


# json_format's messages: which field failed, or which unknown name was sent.
FAILED_FIELD = re.compile(r"Failed to parse (\w+) field: (.*)", re.DOTALL)
UNKNOWN_FIELD = re.compile(r'has no field named "([^"]+)"')


def json_error(text: str, message_type: type[Message]) -> RequestError:
    """A RequestError naming the field (its proto name, as the gRPC face names it)."""
    failed = FAILED_FIELD.search(text)
    if failed is not None:
        name, detail = failed.groups()
        by_json = message_type.DESCRIPTOR.fields_by_camelcase_name.get(name)
        return RequestError(by_json.name if by_json else name, detail.rstrip("."))
    unknown = UNKNOWN_FIELD.search(text)
    if unknown is not None:
        names = sorted(f.json_name for f in message_type.DESCRIPTOR.fields)
        return RequestError(unknown.group(1), f"unknown field; expected one of {', '.join(names)}")
    return RequestError("body", text)


def encode(message: Message, codec: str) -> bytes:
    if codec == PROTO:
        return message.SerializeToString()
    if isinstance(message, pb.DecideResponse):  # the hot one: memoized parts (json_codec.py)
        return decide_response_json(message)
    return generic_json(message)


def call_context(request: Request) -> CallContext:
    """Deadline from `connect-timeout-ms`; RequestError naming the header when malformed.

    The `authorization: Bearer` header is passed as sent: the auth policy in the service
    layer (nba/server/auth.py) reads it, as it reads gRPC's metadata.
    """
    authorization = request.headers.get("authorization")
    timeout = request.headers.get("connect-timeout-ms")
    if timeout is None:
        return CallContext(authorization=authorization)
    if not timeout.isdigit() or len(timeout) > MAX_TIMEOUT_DIGITS:
        raise RequestError(
            "connect-timeout-ms", f"expected milliseconds as 1 to 10 digits, got {timeout[:20]!r}"
        )
    deadline = time.monotonic() + int(timeout) / 1000
    return CallContext(authorization=authorization, deadline=deadline)


class HttpFace:
    """The Starlette app's handlers around one DecisionService and its thread pool."""

    def __init__(self, service: DecisionService, threads: int) -> None:
        self.holder = service.holder
        self.service = service  # the gRPC face's: one auth policy, one in-flight limit
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="nba-http")

    def route(self, rpc: Rpc) -> Callable[[Request], Any]:
        async def handle(request: Request) -> Response:
            return await self.answer(rpc, request)

        return handle

    async def answer(self, rpc: Rpc, request: Request) -> Response:
        codec = codec_of(request.headers.get("content-type"))
        if codec is None:
            response = invalid(
                "content-type",
                f"expected {JSON} or {PROTO}, got {request.headers.get('content-type', 'none')!r}",
            )
            response.status_code = 415
            response.headers["accept-post"] = f"{JSON}, {PROTO}"
            return response
        body = await request.body()
        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        self.service.metrics.started("http", rpc.name)
        try:
            answer = await loop.run_in_executor(self.pool, self.respond, rpc, request, body, codec)
        except Exception as exc:  # every failure, expected or a bug, answers through the table
            failure = reported(exc, rpc.name)
            self.service.metrics.call(
                "http", rpc.name, failure.grpc_code.name, time.perf_counter() - started
            )
            return connect_error(
                failure.connect_code, failure.client_message(exc), failure.http_status
            )
        self.service.metrics.call("http", rpc.name, "OK", time.perf_counter() - started)
        return answer

    def respond(self, rpc: Rpc, request: Request, body: bytes, codec: str) -> Response:
        """Parse, call, encode: on the pool, so the event loop never runs a decision."""
        context = call_context(request)
        message = parse_body(body, codec, rpc.request_type)
        answer = rpc.call(self.service)(message, context)
        return Response(encode(answer, codec), media_type=codec)

    async def examples(self, request: Request) -> Response:
        """The serving rule set's example requests (rules/examples/*.json), for /desk/.

        Read-only and unauthenticated: they are the bundled, made-up customers a rule
        author ships beside the rules, not anyone's data.
        """
        found = await asyncio.get_running_loop().run_in_executor(self.pool, self.read_examples)
        return JSONResponse({"examples": found})

    def read_examples(self) -> list[dict[str, Any]]:
        directory = Path(self.holder.rules_dir) / "examples"
        found = []
        for path in sorted(directory.glob("*.json")):
            try:
                request = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                log.warning("examples: %s is not readable JSON; left out", path.name)
                continue
            if isinstance(request, dict):
                found.append({"name": path.stem, "request": request})
        return found

    async def healthz(self, request: Request) -> Response:
        return JSONResponse({"status": "live"})

    async def readyz(self, request: Request) -> Response:
        reason = await asyncio.get_running_loop().run_in_executor(self.pool, self.not_ready)
        if reason is not None:
            return JSONResponse({"status": "not ready", "reason": reason}, status_code=503)
        return JSONResponse({"status": "ready"})

    def not_ready(self) -> str | None:
        """Why this process should get no traffic now, or None."""
        if self.service.draining.is_set():
            return "shutting down"
        if not self.holder.loaded:
            return "no rule set loaded"
        store = self.holder.store
        if store is None:
            return None  # --store none: stateless, nothing to reach
        try:
            store.ping()
        except StoreError:  # the reason for the load balancer; the details go to the log
            log.warning("readyz: interaction store unreachable", exc_info=True)
            return "interaction store unreachable"
        return None

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)


def build_app(
    face: HttpFace, cors_origins: Sequence[str] = (), web_dir: Path = WEB_DIR
) -> Starlette:
    """The ASGI app: the four RPCs (Connect paths and annotation paths), health, pages."""
    routes: list[Route | Mount] = []
    for rpc in RPCS:
        handler = face.route(rpc)
        routes.append(Route(f"{SERVICE_PATH}/{rpc.name}", handler, methods=["POST"]))
        routes.append(Route(rpc.http_path, handler, methods=["POST"]))
    routes += [
        Route("/healthz", face.healthz, methods=["GET"]),
        Route("/desk/examples.json", face.examples, methods=["GET"]),
        Route("/readyz", face.readyz, methods=["GET"]),
        Mount("/", StaticFiles(directory=web_dir, html=True), name="web"),
    ]
    middleware = []
    if cors_origins:
        middleware.append(
            Middleware(
                CORSMiddleware,
                allow_origins=list(cors_origins),
                allow_methods=["GET", "POST"],
                allow_headers=list(CONNECT_REQUEST_HEADERS),
                expose_headers=list(CONNECT_RESPONSE_HEADERS),
                max_age=7200,
            )
        )
    return Starlette(routes=routes, middleware=middleware)
