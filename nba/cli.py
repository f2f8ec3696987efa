"""The `nba` command line: serve, validate, decide (and the rule authors' tools)."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer
from google.protobuf import json_format
from rich.console import Console
from rich.table import Table
from typer._click import Context as ClickContext  # typer 0.29 vendors click as typer._click
from typer.core import TyperCommand, TyperGroup, TyperOption

from nba.errors import RequestError, RuleError, RuleSetError
from nba.server import NO_STORE

if TYPE_CHECKING:
    from rich.progress import Progress

    from nba.authoring.explain import Check, Explanation
    from nba.authoring.properties import Result
    from nba.decisionlog import LogSettings, Retention
    from nba.decisionlog.replay import Replay
    from nba.pipeline.decider import Decider
    from nba.ruleset.ruleset import RuleSet
    from nba.scoring.adaptive import ModelCache
    from nba.server.auth import JwtSettings
    from nba.server.limits import Limits
    from nba.server.tls import TlsFiles
from nba.v1 import decisioning_pb2 as pb

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class Format(StrEnum):
    TEXT = "text"
    JSON = "json"


class ReportFormat(StrEnum):
    TEXT = "text"
    JSON = "json"
    HTML = "html"


class CommandError(Exception):
    """What stops a command, said once for both formats.

    As text it goes to stderr; under `--format json` (or `decide --json`) it is a JSON
    document on stdout, `{"error": ..., "exit_code": ..., "errors": [...]}`, because a
    script reading stdout would otherwise get nothing at all. `errors` are rule errors as
    `nba validate --format json` gives them.
    """

    def __init__(self, message: str, exit_code: int = 2, errors: Sequence[RuleError] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.errors = tuple(errors)

    @classmethod
    def of_rules(cls, exc: RuleSetError) -> CommandError:
        """A rule set that does not load: exit 1, every error."""
        return cls(exc.report(), 1, exc.errors)

    def as_dict(self) -> dict[str, Any]:
        first = str(self.errors[0]) if self.errors else self.message
        more = len(self.errors) - 1
        summary = first + (f" (and {more} more errors)" if more > 0 else "")
        return {
            "error": summary,
            "exit_code": self.exit_code,
            "errors": [e.as_dict() for e in self.errors],
        }


def _wants_json(params: dict[str, Any]) -> bool:
    return params.get("format") == Format.JSON or bool(params.get("as_json"))


def _asks_for_json(args: Sequence[str]) -> bool:
    """`--format json` (or `--json`) among raw arguments that did not parse."""
    pairs = zip(args, [*args[1:], ""], strict=True)
    return any(a in ("--json", "--format=json") or (a, b) == ("--format", "json") for a, b in pairs)


def _print_error(error: CommandError, as_json: bool) -> None:
    if as_json:
        out.print(json.dumps(error.as_dict(), indent=2), markup=False)
    else:
        err.print(error.message, markup=False)


def _flags_take_no_value(params: list[Any]) -> list[Any]:
    """typer 0.29's rich help labels every flag `<bool>` (the plain help does not): a flag
    takes no value, so its metavar is made empty; the help shows `--strict  --no-strict`."""
    for param in params:
        if isinstance(param, TyperOption) and param.is_flag and param.metavar is None:
            param.metavar = ""
    return params


class _Command(TyperCommand):
    """Every nba command: help without `<bool>`, and errors in the format asked for.

    A CommandError raised by the command, and a usage error (a bad option value), are
    printed as JSON on stdout when the command line asks for JSON, else as text on stderr.
    """

    def get_params(self, ctx: ClickContext) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: ClickContext | None = None,
        **extra: Any,
    ) -> ClickContext:
        given = list(args)  # parsing consumes the list
        try:
            return super().make_context(info_name, args, parent, **extra)
        except typer.TyperException as exc:  # click's usage errors, before the command runs
            has_format = any(p.name in ("format", "as_json") for p in self.params)
            if not (has_format and _asks_for_json(given)):
                raise
            _print_error(CommandError(exc.format_message(), exc.exit_code), as_json=True)
            raise typer.Exit(exc.exit_code) from None

    def invoke(self, ctx: ClickContext) -> Any:
        try:
            return super().invoke(ctx)
        except CommandError as exc:
            _print_error(exc, _wants_json(ctx.params))
            raise typer.Exit(exc.exit_code) from None


class _Group(TyperGroup):
    def get_params(self, ctx: ClickContext) -> list[Any]:
        return _flags_take_no_value(super().get_params(ctx))


F = TypeVar("F", bound=Callable[..., Any])


class _App(typer.Typer):
    """A Typer whose commands are _Commands: the fix above is made once, for every command."""

    def command(
        self, name: str | None = None, *, cls: type[TyperCommand] | None = None, **kwargs: Any
    ) -> Callable[[F], F]:
        return super().command(name, cls=cls or _Command, **kwargs)


app = _App(
    name="nba",
    help="Rules-based next-best-action decisioning: serve decisions, and check rule files.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=_Group,
)

DEFAULT_STORE = "sqlite:///.nba/interactions.sqlite3"
DEFAULT_MAX_REQUEST_BYTES = 1024 * 1024  # nba.server.limits.DEFAULT_MAX_REQUEST_BYTES


def _rules_directory(path: Path | None) -> Path | None:
    """A rules directory; a file given in its place is a usage error naming its directory."""
    if path is not None and path.is_file():
        raise typer.BadParameter(
            f"'{path}' is a file, not a rules directory; give the directory that holds it"
            f" ({path.parent})"
        )
    return path


RulesDir = Annotated[
    Path, typer.Option("--rules", help="Rules directory.", callback=_rules_directory)
]
RulesArg = Annotated[Path, typer.Argument(help="Rules directory.", callback=_rules_directory)]
FormatOption = Annotated[Format, typer.Option("--format", help="text, or json for scripts and CI.")]


class EngineKind(StrEnum):
    DURABLE = "durable"
    REFERENCE = "reference"


class LogBackend(StrEnum):
    JSONL = "jsonl"
    SQLITE = "sqlite"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


def main() -> None:
    app()


def _ruleset(rules: Path) -> RuleSet:
    """Load a rule set for a command; CommandError (exit 1) with every error."""
    from nba.ruleset.loader import load_ruleset

    try:
        return load_ruleset(rules, display_root=rules)
    except RuleSetError as exc:
        raise CommandError.of_rules(exc) from None


def _load(rules: Path, engine: str = "durable", model_store: str | None = None) -> Decider:
    """Load and compile a rule set for a one-shot command; CommandError (exit 1) if it fails.

    `model_store`: a store URL whose learned evidence scores the actions that learn.
    """
    from nba.pipeline.decider import Decider

    ruleset = _ruleset(rules)
    model = None if model_store is None else _model(model_store, ruleset)
    try:
        return Decider(ruleset, engine, model=model)
    except RuleSetError as exc:  # limits of the engine, found while compiling
        raise CommandError.of_rules(exc) from None


def read_request(path: Path) -> pb.DecideRequest:
    """A DecideRequest from a proto3 JSON file; CommandError (exit 2) saying what is wrong."""
    try:
        return json_format.Parse(path.read_text(encoding="utf-8"), pb.DecideRequest())
    except (OSError, json_format.ParseError) as exc:
        raise CommandError(f"{path}: not a DecideRequest in proto3 JSON: {exc}") from None


@contextmanager
def _progress(*columns: Any) -> Iterator[Progress]:
    """A live bar on stderr, only when stderr is a terminal: logs and pipes stay clean.

    Asked of stderr itself, not of rich: FORCE_COLOR (set by many CI systems) makes rich
    treat a pipe as a terminal.
    """
    from rich.progress import Progress

    with Progress(*columns, console=err, transient=True, disable=not sys.stderr.isatty()) as bar:
        yield bar


def _iso_moment(option: str, value: str | None) -> dt.datetime | None:
    """An ISO time option (UTC unless it says); CommandError naming the option."""
    if value is None:
        return None
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise CommandError(
            f"{option}: '{value}' is not an ISO time; expected e.g. 2026-11-20T10:00:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def _iso_time(option: str, value: str | None) -> float | None:
    moment = _iso_moment(option, value)
    return moment.timestamp() if moment is not None else None


# ---------------------------------------------------------------------------- serve


@app.command()
def serve(
    rules: RulesDir = Path("rules"),
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on (0: any free port).")] = 50051,
    store: Annotated[
        str,
        typer.Option(
            help="Interaction store: sqlite:///PATH, redis://HOST:PORT/DB, memory://, or"
            f" {NO_STORE} (stateless: requests carry their history)."
        ),
    ] = DEFAULT_STORE,
    engine: Annotated[EngineKind, typer.Option(help="Rule engine.")] = EngineKind.DURABLE,
    workers: Annotated[
        int, typer.Option(help="Server processes sharing the port (default: one per core).")
    ] = os.cpu_count() or 1,
    threads: Annotated[int, typer.Option(help="gRPC worker threads per process.")] = 8,
    sweep_every: Annotated[
        float, typer.Option(help="Seconds between sweeps of expired history (0: never).")
    ] = 600.0,
    log_level: Annotated[str, typer.Option(help="debug, info, warning, error.")] = "info",
    watch: Annotated[
        bool, typer.Option(help="Reload when a rule file changes (SIGHUP reloads too).")
    ] = True,
    # -- who may call, and what a worker takes on (README: Running in production)
    tls_cert: Annotated[
        Path | None, typer.Option(help="PEM certificate chain: serve TLS (with --tls-key).")
    ] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key of --tls-cert.")] = None,
    tls_client_ca: Annotated[
        Path | None, typer.Option(help="PEM CA: require client certificates it signed (mTLS).")
    ] = None,
    insecure: Annotated[
        bool, typer.Option(help="Allow plaintext on a non-loopback address (logged).")
    ] = False,
    auth_tokens: Annotated[
        Path | None, typer.Option(help="YAML bearer tokens with scopes (default: no auth).")
    ] = None,
    auth_jwks: Annotated[
        Path | None,
        typer.Option(help="JWKS file: accept JWT bearer tokens its keys signed (with --jwt-*)."),
    ] = None,
    jwt_issuer: Annotated[str | None, typer.Option(help="The `iss` a JWT must carry.")] = None,
    jwt_audience: Annotated[str | None, typer.Option(help="The `aud` a JWT must carry.")] = None,
    jwt_scope_claim: Annotated[
        str, typer.Option(help="The JWT claim holding nba scopes (space-separated or a list).")
    ] = "scope",
    reflection: Annotated[bool, typer.Option(help="Serve gRPC server reflection.")] = True,
    max_request_bytes: Annotated[
        int, typer.Option(help="Largest request accepted (RESOURCE_EXHAUSTED past it).")
    ] = DEFAULT_MAX_REQUEST_BYTES,
    max_in_flight: Annotated[
        int | None,
        typer.Option(
            help="Calls in flight per worker before RESOURCE_EXHAUSTED (default 2 x threads)."
        ),
    ] = None,
    # -- the HTTP/JSON face (README: HTTP/JSON)
    http_port: Annotated[
        int,
        typer.Option(
            help="HTTP/JSON (Connect protocol) port, HTTP/1.1 and h2c, beside gRPC (0: off)."
        ),
    ] = 8080,
    cors_origin: Annotated[
        list[str] | None,
        typer.Option(help="Origin a browser may call the HTTP face from (repeatable; none)."),
    ] = None,
    # -- lifecycle (README: Running in production)
    grace: Annotated[
        float,
        typer.Option(help="Seconds calls in flight may take to finish after SIGTERM.", min=0),
    ] = 5.0,
    # -- operability
    metrics_port: Annotated[
        int,
        typer.Option(help="Prometheus /metrics port, one scrape for every worker (0: off).", min=0),
    ] = 0,
    log_format: Annotated[LogFormat, typer.Option(help="text, or one JSON object per line.")] = (
        LogFormat.TEXT
    ),
    model_refresh: Annotated[
        float,
        typer.Option(help="Seconds between a worker's reads of the learned evidence.", min=0.1),
    ] = 5.0,
    # -- the decision log (README: Decision log and replay)
    decision_log: Annotated[
        Path | None,
        typer.Option(help="Log every decision (and archive each rule set) in this directory."),
    ] = None,
    decision_log_backend: Annotated[
        LogBackend, typer.Option(help="jsonl: rotated JSON Lines files; sqlite: one file.")
    ] = LogBackend.JSONL,
    decision_log_sample: Annotated[
        float, typer.Option(help="Share of decisions logged, by a hash of the decision id.")
    ] = 1.0,
    decision_log_drop: Annotated[
        list[str] | None, typer.Option(help="profile.NAME left out of the log (repeatable).")
    ] = None,
    decision_log_mask: Annotated[
        list[str] | None, typer.Option(help="profile.NAME logged as *** (repeatable).")
    ] = None,
    decision_log_hash_key_file: Annotated[
        Path | None, typer.Option(help="Key file: log HMAC-SHA256(key, customer id), not the id.")
    ] = None,
    decision_log_rotate_bytes: Annotated[
        int, typer.Option(help="jsonl: start a new file past this size.", min=1024)
    ] = 64 * 1024 * 1024,
    decision_log_max_age: Annotated[
        str, typer.Option(help="Remove records older than this (30d, 12h, 90m).")
    ] = "30d",
    decision_log_max_bytes: Annotated[
        int, typer.Option(help="Remove the oldest records once the log is larger.", min=1)
    ] = 1024 * 1024 * 1024,
) -> None:
    """Serve DecisionService over gRPC on the rules in RULES (health and reflection on).

    Rule files are reloaded live: a good edit is compiled aside and swapped in whole; a
    broken one is logged with file:line and the last good set keeps serving. With
    several workers, clients should open several channels: balancing is per connection.
    """
    from nba.pipeline.decider import history_horizon
    from nba.server.logs import configure_logging
    from nba.server.processes import PortInUseError, ServeConfig
    from nba.server.processes import serve as run
    from nba.store import StoreError, open_store

    configure_logging(log_level, log_format.value)
    ruleset = _served_ruleset(rules)  # all that can be wrong is checked here, before any worker
    if workers < 1:
        err.print("--workers: expected 1 or more")
        raise typer.Exit(2)
    if workers > 1 and store.startswith("memory:"):
        err.print(
            "--store memory:// keeps history inside one process; with several workers use"
            " a shared store (sqlite:///..., redis://...) or --workers 1"
        )
        raise typer.Exit(2)
    try:
        if store != NO_STORE:
            open_store(store, retention_seconds=history_horizon(ruleset)).close()
    except (ValueError, StoreError) as exc:
        err.print(f"--store: {exc}", markup=False)
        raise typer.Exit(2) from None
    config = ServeConfig(rules, host, port, store, engine.value, threads, sweep_every, watch)
    config = replace(
        config,
        tls=_tls_files(host, tls_cert, tls_key, tls_client_ca, insecure),
        auth_tokens=_checked_tokens(auth_tokens),
        jwt=_checked_jwt(auth_jwks, jwt_issuer, jwt_audience, jwt_scope_claim),
        reflection=reflection,
        limits=_limits(max_request_bytes, max_in_flight),
    )
    config = replace(config, http_port=http_port, cors_origins=tuple(cors_origin or ()))
    config = replace(config, grace=grace, metrics_port=metrics_port, model_refresh=model_refresh)
    if decision_log is not None:
        settings = _decision_log_settings(
            ruleset,
            decision_log,
            decision_log_backend.value,
            decision_log_sample,
            tuple(decision_log_drop or ()),
            tuple(decision_log_mask or ()),
            decision_log_hash_key_file,
        )
        retention = _log_retention(decision_log_max_age, decision_log_max_bytes)
        config = replace(
            config,
            decision_log=replace(
                settings, rotate_bytes=decision_log_rotate_bytes, retention=retention
            ),
        )
    try:
        status = run(config, workers, ruleset)  # the workers inherit the parsed set
    except PortInUseError as exc:
        err.print(str(exc.strerror), markup=False)
        raise typer.Exit(1) from None
    raise typer.Exit(status)


def _decision_log_settings(
    ruleset: RuleSet,
    directory: Path,
    backend: str,
    sample: float,
    drop: tuple[str, ...],
    mask: tuple[str, ...],
    hash_key_file: Path | None,
) -> LogSettings:
    """--decision-log and its options, checked (exit 2 naming the option)."""
    from nba.decisionlog import LogSettings
    from nba.decisionlog.record import profile_attribute
    from nba.errors import did_you_mean

    if not 0 < sample <= 1:
        _usage(f"--decision-log-sample: got {sample}; expected more than 0 and at most 1")
    for option, paths in (("--decision-log-drop", drop), ("--decision-log-mask", mask)):
        for path in paths:
            try:
                name = profile_attribute(path)
            except ValueError as exc:
                _usage(f"{option}: {exc}")
            if name not in ruleset.attributes:
                hint = did_you_mean(name, ruleset.attributes)
                _usage(
                    f"{option}: '{path}' is not a declared profile attribute"
                    + (f" ({hint})" if hint else "")
                )
    key = None
    if hash_key_file is not None:
        try:
            key = hash_key_file.read_bytes().strip()
        except OSError as exc:
            _usage(f"--decision-log-hash-key-file: {exc.strerror}: {hash_key_file}")
        if len(key) < 16:
            _usage(
                f"--decision-log-hash-key-file: {hash_key_file}: expected a key of 16 bytes or more"
            )
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _usage(f"--decision-log: cannot create {directory}: {exc.strerror}")
    return LogSettings(directory.resolve(), backend, sample, drop, mask, key)


def _log_retention(max_age: str, max_bytes: int) -> Retention:
    import re

    from nba.decisionlog import Retention
    from nba.ruleset.durations import duration_seconds

    if not re.fullmatch(r"[1-9][0-9]*[dhm]", max_age):
        _usage(
            f"--decision-log-max-age: got '{max_age}'; expected a duration such as 30d, 12h, 90m"
        )
    return Retention(float(duration_seconds(max_age)), float(max_bytes))


def _usage(message: str) -> NoReturn:
    err.print(message, markup=False)
    raise typer.Exit(2)


def _tls_files(
    host: str, cert: Path | None, key: Path | None, client_ca: Path | None, insecure: bool
) -> TlsFiles | None:
    """The TLS files to serve with, checked; exit 2 when they are unusable or missing where
    the address is reachable from another machine."""
    from nba.server.tls import TlsFileError, TlsFiles, checked_configuration

    if cert is None or key is None:
        if cert or key or client_ca:
            err.print("--tls-cert and --tls-key go together (--tls-client-ca needs both)")
            raise typer.Exit(2)
        if not _is_loopback(host):
            if not insecure:
                err.print(
                    f"--host {host}: refusing to serve plaintext beyond loopback; give"
                    " --tls-cert and --tls-key, or --insecure to accept it"
                )
                raise typer.Exit(2)
            logging.getLogger("nba").warning(
                "serving plaintext on %s (--insecure): tokens and data cross the network in clear",
                host,
            )
        return None
    files = TlsFiles(cert, key, client_ca)
    try:
        checked_configuration(files)
    except TlsFileError as exc:
        err.print(f"--tls-cert/--tls-key: {exc}", markup=False)
        raise typer.Exit(2) from None
    return files


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:  # a host name: it may resolve anywhere
        return False


def _checked_tokens(path: Path | None) -> Path | None:
    """The token file, once it reads; exit 2 naming file:line when it does not."""
    from nba.server.auth import TokenFileError, read_tokens

    if path is not None:
        try:
            read_tokens(path)
        except TokenFileError as exc:
            err.print(f"--auth-tokens: {exc}", markup=False)
            raise typer.Exit(2) from None
    return path


def _checked_jwt(
    jwks: Path | None, issuer: str | None, audience: str | None, scope_claim: str
) -> JwtSettings | None:
    """The JWT settings, once the JWKS reads; exit 2 naming what is missing or wrong."""
    from nba.server.auth import JwtSettings
    from nba.server.jwt_auth import JwksFileError, read_jwks

    if jwks is None:
        if issuer or audience:
            err.print("--jwt-issuer and --jwt-audience need --auth-jwks")
            raise typer.Exit(2)
        return None
    if not issuer or not audience:
        err.print("--auth-jwks needs --jwt-issuer and --jwt-audience (tokens must name both)")
        raise typer.Exit(2)
    try:
        read_jwks(jwks)
    except JwksFileError as exc:
        err.print(f"--auth-jwks: {exc}", markup=False)
        raise typer.Exit(2) from None
    return JwtSettings(jwks, issuer, audience, scope_claim)


def _model(url: str, ruleset: RuleSet) -> ModelCache:
    from nba.pipeline.decider import history_horizon
    from nba.scoring.adaptive import ModelCache
    from nba.store import StoreError, open_store

    try:
        store = open_store(url, retention_seconds=history_horizon(ruleset))
        store.ping()
    except (ValueError, StoreError) as exc:
        raise CommandError(f"--store: {exc}") from None
    model = ModelCache(store)
    model.follow(ruleset)
    return model


def _limits(max_request_bytes: int, max_in_flight: int | None) -> Limits:
    from nba.server.limits import Limits

    if max_request_bytes < 1 or (max_in_flight is not None and max_in_flight < 1):
        err.print("--max-request-bytes and --max-in-flight: expected 1 or more")
        raise typer.Exit(2)
    return Limits(max_request_bytes, max_in_flight)


def _served_ruleset(rules: Path) -> RuleSet:
    """The rule set `nba serve` parses once for all its workers (logged), or exit 1."""
    from nba.server.reload import load_rules

    try:
        return load_rules(rules)
    except RuleSetError as exc:
        err.print(exc.report(), markup=False)
        raise typer.Exit(1) from None


# ---------------------------------------------------------------------------- validate


@app.command()
def validate(
    rules: RulesArg = Path("rules"),
    format: FormatOption = Format.TEXT,
    strict: Annotated[bool, typer.Option(help="Warnings fail too.")] = False,
) -> None:
    """Check rule files: every error at once as file:line:column. Exit 1 when any.

    Beyond loading and compiling, the whole set is checked for rules that can never hold,
    actions that can never be recommended, duplicated or shadowed rules and the like.
    """
    from nba.authoring.checks import check
    from nba.engine.durable import DurableEngine
    from nba.errors import Severity
    from nba.ruleset.loader import load_ruleset

    try:
        ruleset = load_ruleset(rules, display_root=rules)
        DurableEngine(ruleset).close()  # compiling onto durable_rules has limits of its own
    except RuleSetError as exc:
        if format == Format.JSON:
            report = {"valid": False, "errors": [e.as_dict() for e in exc.errors], "warnings": []}
            out.print(json.dumps(report, indent=2), markup=False)
        else:
            err.print(exc.report(), markup=False)
        raise typer.Exit(1) from None
    findings = check(ruleset)
    errors = [f for f in findings if f.severity == Severity.ERROR]
    warnings = [f for f in findings if f.severity == Severity.WARNING]
    failed = bool(errors) or (strict and bool(warnings))
    if format == Format.JSON:
        report = {
            "valid": not failed,
            "version": ruleset.version,
            "errors": [e.as_dict() for e in errors],
            "warnings": [w.as_dict() for w in warnings],
        }
        out.print(json.dumps(report, indent=2), markup=False)
    else:
        for finding in findings:
            err.print(str(finding), markup=False)
        if errors:
            err.print(f"{len(errors)} errors, {len(warnings)} warnings")
        else:
            note = f", {len(warnings)} warnings" if warnings else ""
            out.print(f"{rules}: ok, version {ruleset.version} ({ruleset.summary()}){note}")
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- check


@app.command("check")
def check_properties(
    rules: RulesArg = Path("rules"),
    examples: Annotated[int, typer.Option(help="Generated customers per property.", min=1)] = 200,
    only: Annotated[
        list[str] | None, typer.Option("--property", help="Only these properties (repeatable).")
    ] = None,
    failures_dir: Annotated[
        Path, typer.Option("--out", help="Where minimal failing customers are written.")
    ] = Path("check-failures"),
    seed: Annotated[
        int | None,
        typer.Option(help="Generate the same customers every run (default: new ones each run)."),
    ] = None,
    format: FormatOption = Format.TEXT,
) -> None:
    """Properties every rule set must satisfy, on customers generated from its schema.

    A broken property prints its minimal failing customer's file, ready for nba explain.
    On a terminal, a progress bar on stderr counts the customers checked.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from nba.authoring import properties as props

    unknown = [p for p in only or [] if p not in props.PROPERTIES]
    if unknown:
        expected = ", ".join(props.PROPERTIES)
        raise CommandError(f"--property: unknown {', '.join(unknown)}; expected one of {expected}")
    ruleset = _ruleset(rules)
    columns = (
        TextColumn("checking {task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("customers"),
        TimeRemainingColumn(),
    )
    with _progress(*columns) as bar:
        task = bar.add_task((only or list(props.PROPERTIES))[0], total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(task, description=name, completed=done, total=total)

        results, recommended = props.run(ruleset, examples, only, seed=seed, progress=progress)
    written = {r.name: props.write_failure(r, failures_dir) for r in results if not r.passed}
    never = []
    if not only or "consent" in only:  # the consent property tallies recommendations
        never = sorted(set(ruleset.actions) - set(recommended))
    failed = [r for r in results if not r.passed]
    if format == Format.JSON:
        report = {
            "passed": len(results) - len(failed),
            "failed": len(failed),
            "version": ruleset.version,
            "properties": [
                {
                    "name": r.name,
                    "customers": r.examples,
                    "passed": r.passed,
                    "failure": r.failure or None,
                    "minimal_customer": str(written[r.name]) if written.get(r.name) else None,
                }
                for r in results
            ],
            "never_recommended": never,
        }
        out.print(json.dumps(report, indent=2), markup=False)
    else:
        _print_check(results, written, never, rules, ruleset.version)
    if failed:
        raise typer.Exit(1)


def _print_check(
    results: Sequence[Result],
    written: dict[str, Path | None],
    never: list[str],
    rules: Path,
    version: str,
) -> None:
    for result in results:
        if result.passed:
            out.print(f"PASS {result.name} ({result.examples} customers)", markup=False)
            continue
        out.print(f"FAIL {result.name}: {result.failure}", markup=False)
        path = written.get(result.name)
        if path is not None:
            out.print(f"     minimal failing customer: {path}", markup=False)
            out.print(f"     replay it: nba explain {path} --rules {rules}", markup=False)
    if never:
        out.print(
            f"note: {len(never)} actions were never recommended to these customers: "
            + ", ".join(never),
            markup=False,
        )
    failed = sum(not r.passed for r in results)
    out.print(f"{len(results) - failed} passed, {failed} failed (rules version {version})")


# ---------------------------------------------------------------------------- test


@app.command("test")
def test_scenarios(
    rules: Annotated[
        Path,
        typer.Argument(
            help="Rules directory (scenarios in its tests/).", callback=_rules_directory
        ),
    ] = Path("rules"),
    run: Annotated[
        str | None, typer.Option("--run", help="Only scenarios whose name matches.")
    ] = None,
    format: FormatOption = Format.TEXT,
    verbose: Annotated[bool, typer.Option("-v", help="List passing scenarios too.")] = False,
) -> None:
    """Run the rule authors' scenarios under RULES/tests. Exit 1 when any fails."""
    from nba.authoring import scenarios as sc

    decider = _load(rules)
    found, errors = sc.load_scenarios(rules, rules)
    if errors:
        ordered = sorted(errors, key=lambda e: e.sort_key())
        raise CommandError("\n".join(str(e) for e in ordered), 2, ordered)
    chosen = sc.select(found, run)
    if not chosen:
        raise CommandError(
            f"no scenarios{' matching ' + repr(run) if run else ''} under {rules}/tests"
        )
    outcomes = [sc.run_scenario(decider, s) for s in chosen]
    failed = [o for o in outcomes if o.status != "PASS"]
    if format == Format.JSON:
        report = [
            {
                "name": o.scenario.name,
                "location": str(o.scenario.location),
                "status": o.status,
                "failures": o.failures or ([o.error] if o.error else []),
            }
            for o in outcomes
        ]
        out.print(json.dumps(report, indent=2), markup=False)
    else:
        for o in outcomes:
            if o.status == "PASS":
                if verbose:
                    out.print(f"PASS {o.scenario.name}", markup=False)
                continue
            out.print(f"{o.status} {o.scenario.location}: {o.scenario.name}", markup=False)
            for line in o.failures or [o.error]:
                out.print(f"  {line}", markup=False)
            if o.decision is not None:
                for line in sc.describe(o.decision):
                    out.print(f"    {line}", markup=False)
        passed = len(outcomes) - len(failed)
        out.print(f"{passed} passed, {len(failed)} failed (rules version {decider.version})")
    if failed:
        raise typer.Exit(1)


# ---------------------------------------------------------------------------- explain


@app.command("explain")
def explain_command(
    request_file: Annotated[Path, typer.Argument(help="A DecideRequest in proto3 JSON.")],
    rules: RulesDir = Path("rules"),
    action: Annotated[str | None, typer.Option("--action", help="Only this action.")] = None,
    format: FormatOption = Format.TEXT,
    store: Annotated[
        str | None,
        typer.Option(help="Interaction store whose learned evidence scores (default: none)."),
    ] = None,
) -> None:
    """Why each action was or was not recommended: every stage, rule, place and value."""
    from nba.authoring.explain import explain

    decider = _load(rules, model_store=store)
    if action is not None and action not in decider.ruleset.actions:
        from nba.errors import did_you_mean

        hint = did_you_mean(action, decider.ruleset.actions)
        raise CommandError(f"--action: unknown action '{action}'" + (f" ({hint})" if hint else ""))
    try:
        request = decider.validator.validate(read_request(request_file))
    except RequestError as exc:
        raise CommandError(f"{request_file}: invalid request: {exc}") from None
    story = explain(decider, request, action)
    if format == Format.JSON:
        text = json.dumps(_explanation_json(story, decider.version), indent=2, default=_plain)
        out.print(text, markup=False)
    else:
        _print_explanation(story, decider.version)


def _print_explanation(story: Explanation, version: str) -> None:
    r = story.request
    out.print(
        f"customer {r.customer_id} | {r.lifecycle} | {r.channel} | rules {version}", markup=False
    )
    held = [c for c in story.segments if c.held]
    out.print("segments: " + (", ".join(c.rule for c in held) or "none"), markup=False)
    for c in held:
        out.print(f"  {c.rule}  {c.where}  {c.text}", markup=False)
    if story.arms:
        out.print("experiments: " + ", ".join(c.rule for c in story.arms), markup=False)
    for c in story.arms:
        out.print(f"  {c.rule}  {c.where}  {c.text}", markup=False)
    for item in sorted(story.actions, key=lambda s: (not s.recommended, s.verdict, s.action.id)):
        a = item.action
        out.print(f"\n{a.id} ({a.group}, {a.purpose}): {item.verdict}", markup=False)
        for c in item.checks:
            mark = {True: "yes", False: "NO ", None: "   "}[c.held]
            values = ", ".join(f"{k} = {v!r}" for k, v in c.values.items())
            line = f"  {c.stage:<11} {mark} {c.rule}  {c.where}  {c.text}"
            out.print(line + (f"   [{values}]" if values else ""), markup=False)


def _explanation_json(story: Explanation, version: str) -> dict[str, Any]:
    """The text's content as data: the same order, every check with its values."""

    def check(c: Check) -> dict[str, Any]:
        return {
            "stage": c.stage,
            "rule": c.rule,
            "held": c.held,
            "where": c.where,
            "text": c.text,
            "values": c.values,
        }

    r = story.request
    ordered = sorted(story.actions, key=lambda s: (not s.recommended, s.verdict, s.action.id))
    return {
        "customer_id": r.customer_id,
        "lifecycle_stage": r.lifecycle,
        "channel": r.channel,
        "rules_version": version,
        "segments": [check(c) for c in story.segments if c.held],
        "arms": [check(c) for c in story.arms],
        "actions": [
            {
                "action": item.action.id,
                "group": item.action.group,
                "purpose": item.action.purpose,
                "recommended": item.recommended,
                "verdict": item.verdict,
                "checks": [check(c) for c in item.checks],
            }
            for item in ordered
        ],
    }


def _plain(value: Any) -> Any:
    """JSON for the values a condition read: sets as sorted lists, anything else as text."""
    if isinstance(value, set | frozenset | tuple):
        return sorted(value, key=str)
    return str(value)


# ---------------------------------------------------------------------------- simulate


@app.command("simulate")
def simulate_command(
    customers: Annotated[
        Path, typer.Argument(help="DecideRequests, one proto3 JSON per line (JSON Lines).")
    ],
    rules: RulesDir = Path("rules"),
    against: Annotated[
        Path | None,
        typer.Option(
            "--against",
            help="Rules directory to compare with the base (--rules): what changes.",
            callback=_rules_directory,
        ),
    ] = None,
    workers: Annotated[
        int | None,
        typer.Option(help="Worker processes (default one per core; 1: no pool).", min=1),
    ] = None,
    top: Annotated[int, typer.Option(help="Rows per table.", min=1)] = 10,
    format: FormatOption = Format.TEXT,
) -> None:
    """Decisions over a customer base, by segment and stage; with --against, what changes.

    Each rule set decides on the profile attributes and consent channels it declares
    (others are dropped, and counted); invalid requests are counted per set.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from nba.authoring.customers import CustomerFileError
    from nba.authoring.simulate import SimulationError, render, simulate

    columns = (TextColumn("deciding"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with _progress(*columns) as bar:
            task = bar.add_task("deciding", total=None)

            def progress(done: int, total: int) -> None:
                bar.update(task, completed=done, total=total)

            report = simulate(rules, customers, against, workers, progress=progress)
    except RuleSetError as exc:
        raise CommandError.of_rules(exc) from None
    except (CustomerFileError, SimulationError) as exc:
        raise CommandError(str(exc)) from None
    if format == Format.JSON:
        out.print(json.dumps(report.as_dict(), indent=2), markup=False)
    else:
        render(report, out, top)


@app.command("gen-customers")
def gen_customers(
    n: Annotated[int, typer.Option("-n", help="How many customers.", min=0)] = 1000,
    rules: RulesDir = Path("rules"),
    seed: Annotated[int, typer.Option(help="Same seed, same customers.")] = 0,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time the requests decide for (UTC).")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="File to write (default stdout).")
    ] = None,
) -> None:
    """A realistic synthetic customer base for the rule set, as DecideRequest JSON lines."""
    from nba.authoring.customers import generate_customers, write_jsonl

    ruleset = _ruleset(rules)
    moment = _iso_moment("--as-of", as_of)
    written = write_jsonl(generate_customers(ruleset, n, seed, moment), output or sys.stdout)
    if output is not None:
        err.print(f"wrote {written} customers to {output}")


# ---------------------------------------------------------------------------- batch


@app.command("batch")
def batch_command(
    customers: Annotated[
        Path, typer.Argument(help="DecideRequests: JSON lines (.jsonl) or Parquet (.parquet).")
    ],
    rules: RulesDir = Path("rules"),
    output: Annotated[
        Path, typer.Option("--out", help="Directory of the decisions, one file per partition.")
    ] = Path("decisions"),
    output_format: Annotated[
        str, typer.Option("--format", help="parquet (a dataset) or jsonl.")
    ] = "parquet",
    scheduler: Annotated[
        str | None,
        typer.Option(help="A Dask scheduler (tcp://host:8786); default: a local cluster."),
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Local cluster: worker processes (default: cores).", min=1)
    ] = None,
    store: Annotated[
        str | None, typer.Option(help="Interaction store: stored history and consent.")
    ] = None,
    as_of: Annotated[
        str | None, typer.Option("--as-of", help="ISO time for requests without asOf.")
    ] = None,
    max_bad: Annotated[
        int, typer.Option(help="Stop after more bad records than this, naming them.", min=0)
    ] = 1000,
    restart: Annotated[
        bool, typer.Option(help="Start afresh instead of resuming the run in --out.")
    ] = False,
) -> None:
    """Decide for a whole customer base on Dask: each customer's ranked recommendations,
    channels, treatments, reasons and arms; a rerun resumes where a run stopped."""
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeRemainingColumn

    from nba.batch import BatchError
    from nba.batch.run import run_batch

    columns = (TextColumn("partitions"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    try:
        with _progress(*columns) as bar:
            task = bar.add_task("partitions", total=None)
            run = run_batch(
                customers,
                rules,
                output,
                output_format=output_format,
                scheduler=scheduler,
                workers=workers,
                store_url=store,
                as_of=_iso_time("--as-of", as_of),
                max_bad=max_bad,
                restart=restart,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except RuleSetError as exc:
        raise CommandError.of_rules(exc) from None
    except BatchError as exc:
        raise CommandError(str(exc), exit_code=1) from None
    rate = run.decided / run.seconds if run.seconds else 0.0
    err.print(
        f"decided {run.decided:,} customers in {run.partitions - run.resumed} partitions"
        f" ({run.resumed} resumed) on {len(run.workers)} workers in {run.seconds:.1f} s"
        f" ({rate:,.0f}/s); {len(run.bad)} bad records; decisions in {output}",
        markup=False,
    )


# ---------------------------------------------------------------------------- replay


@app.command("replay")
def replay_command(
    decision_id: Annotated[str, typer.Argument(help="The decision id a response carried.")],
    log: Annotated[Path, typer.Option("--log", help="The --decision-log directory of the server.")],
    format: FormatOption = Format.TEXT,
) -> None:
    """Decide a logged decision again with its archived rule set: identical (exit 0), or
    the difference in ranking, scores and exclusions (exit 1)."""
    from nba.decisionlog.replay import ReplayError, find_record, replay

    try:
        result = replay(find_record(log, decision_id), log)
    except ReplayError as exc:
        raise CommandError(str(exc)) from None
    if format == Format.JSON:
        out.print(json.dumps(_replay_json(result), indent=2), markup=False)
    else:
        _print_replay(result)
    if not result.identical:
        raise typer.Exit(1)


@app.command("evaluate")
def evaluate_command(
    log: Annotated[Path, typer.Option("--log", help="The --decision-log directory of the server.")],
    against: Annotated[Path, typer.Option("--against", help="The candidate rules directory.")],
    store: Annotated[
        str, typer.Option(help="The interaction store the outcomes were recorded in.")
    ],
    draws: Annotated[
        int, typer.Option(help="Rankings drawn per selection probability.", min=10)
    ] = 200,
    format: FormatOption = Format.TEXT,
) -> None:
    """What the rules in --against would have earned on the logged decisions (off-policy:
    IPS, self-normalised IPS and doubly robust, with 95% intervals)."""
    from nba.authoring.offpolicy import evaluate, from_log
    from nba.decisionlog import detect_backend, open_decision_log
    from nba.decisionlog.archive import RuleSetArchive
    from nba.pipeline.decider import Decider
    from nba.ruleset.loader import load_ruleset
    from nba.store import StoreError, open_store

    if not log.is_dir():
        raise CommandError(f"--log: '{log}' is not a directory")
    candidate = _load(against)
    archive, deciders = RuleSetArchive(log), {}

    def decider_of(version: str) -> Decider:
        if version not in deciders:
            directory = archive.path_of(version)
            if not directory.is_dir():
                raise CommandError(f"rule set {version} is not archived under {archive.root}")
            deciders[version] = Decider(load_ruleset(directory, display_root=""))
        return deciders[version]

    reader = open_decision_log(log, detect_backend(log))
    try:
        outcomes = open_store(store, retention_seconds=400 * 86400)
        logged, skipped = from_log(reader.records(), outcomes, decider_of)
    except (ValueError, StoreError) as exc:
        raise CommandError(f"--store: {exc}") from None
    finally:
        reader.close()
    if not logged:
        raise CommandError(f"no decision in {log} can be evaluated: {dict(skipped) or 'empty'}")
    found = evaluate(logged, deciders, candidate, draws)
    result = {
        "decisions": found.decisions,
        "skipped": dict(skipped),
        "logged_accept_rate": found.logged_rate,
        "candidate": str(against),
        "accept_rate": {
            name: {"estimate": e.mean, "low": e.low, "high": e.high}
            for name, e in (("ips", found.ips), ("snips", found.snips), ("dr", found.dr))
        },
        "support": found.support,
        "effective_sample_size": found.effective_size,
        "warning": found.warning,
        "value_per_decision_snips": {
            "estimate": found.value_snips.mean,
            "low": found.value_snips.low,
            "high": found.value_snips.high,
        },
    }
    if format == Format.JSON:
        out.print(json.dumps(result, indent=2), markup=False)
        return
    out.print(
        f"{found.decisions} logged decisions (skipped: {dict(skipped) or 'none'});"
        f" logged accept rate {found.logged_rate:.4f}",
        markup=False,
    )
    out.print(f"candidate {against}: accept rate per decision, 95% intervals", markup=False)
    for name, e in (("IPS", found.ips), ("SNIPS", found.snips), ("DR", found.dr)):
        out.print(f"  {name:<6} {e}", markup=False)
    out.print(f"  value per decision (SNIPS) {found.value_snips}", markup=False)
    out.print(
        f"  support {found.support} decisions, effective sample size {found.effective_size:.0f}",
        markup=False,
    )
    if found.warning:
        err.print(f"warning: {found.warning}", markup=False)


def _replay_json(result: Replay) -> dict[str, Any]:
    fields = ("recommendations", "excluded", "segments")
    return {
        "decision_id": result.logged.decision_id,
        "ruleset_version": result.logged.ruleset_version,
        "identical": result.identical,
        "differences": result.differences,
        "logged": {f: getattr(result.logged, f) for f in fields},
        "replayed": {f: getattr(result.replayed, f) for f in fields},
    }


def _print_replay(result: Replay) -> None:
    logged = result.logged
    head = f"decision {logged.decision_id} | rules {logged.ruleset_version}"
    if result.identical:
        counts = f"{len(logged.recommendations)} recommendations, {len(logged.excluded)} excluded"
        out.print(f"{head} | {counts}: identical", markup=False)
        return
    out.print(f"{head}: differs", markup=False)
    for line in result.differences:
        out.print(f"  {line}", markup=False)


@app.command("report")
def report_command(
    log: Annotated[Path, typer.Option("--log", help="The --decision-log directory of the server.")],
    store: Annotated[str, typer.Option(help="The interaction store outcomes are recorded in.")],
    rules: RulesDir = Path("rules"),
    format: Annotated[
        ReportFormat, typer.Option("--format", help="text, json, or html (a page with charts).")
    ] = ReportFormat.TEXT,
    output: Annotated[
        Path | None, typer.Option("--out", help="Write the report here instead of stdout.")
    ] = None,
) -> None:
    """Decisions, impressions, positives and response rates per action, channel and arm;
    each arm's uplift against control, sample-ratio mismatches, model maturity."""
    from dataclasses import asdict

    from nba.authoring.models import models
    from nba.authoring.report import report
    from nba.authoring.report_html import render
    from nba.decisionlog import detect_backend, open_decision_log
    from nba.store import StoreError

    ruleset = _ruleset(rules)
    if not log.is_dir():
        raise CommandError(f"--log: {log} is not a directory")
    model = _model(store, ruleset)
    assert model.store is not None  # _model opened it
    reader = open_decision_log(log, detect_backend(log))
    try:
        learned = models(ruleset, model.snapshot) if ruleset.learning else []
        found = report(reader.records(), model.store, ruleset, learned)
    except StoreError as exc:
        raise CommandError(f"--store: {exc}") from None
    finally:
        reader.close()
    if format == ReportFormat.HTML:
        text = render(found, f"nba report: {log}")
    elif format == ReportFormat.JSON:
        text = json.dumps(asdict(found), indent=2)
    else:
        text = "\n".join(_report_lines(found))
    if output is None:
        out.print(text, markup=False, highlight=False, soft_wrap=True)
    else:
        output.write_text(text + "\n")
    for experiment in found.experiments:
        if experiment.srm:
            err.print(f"warning: sample-ratio mismatch in {experiment.experiment}", markup=False)


def _report_lines(found: Any) -> Iterator[str]:
    yield f"{found.decisions:,} decisions (skipped: {dict(found.skipped) or 'none'})"
    for e in found.experiments:
        srm = f"  SAMPLE-RATIO MISMATCH (p = {e.srm_p:.2g})" if e.srm else ""
        yield f"\nexperiment {e.experiment} (control {e.control}){srm}"
        for arm in e.arms:
            rate = f"{arm.rate.value:.2%} [{arm.rate.low:.2%}, {arm.rate.high:.2%}]"
            line = f"  {arm.arm:<14} share {arm.share:.0%}  customers {arm.customers:,}"
            line += f"  decisions {arm.decisions:,}  rate {rate}"
            if arm.uplift is not None and arm.uplift.relative is not None:
                u = arm.uplift
                line += (
                    f"  uplift {u.relative:+.1%} [{u.relative_low:+.1%}, {u.relative_high:+.1%}]"
                )
            yield line
    yield "\nper action / channel / arm:"
    yield "  decisions, impressions, positives, response rate [95%], value per impression"
    for r in found.rows:
        rate = f"{r.rate.value:.2%} [{r.rate.low:.2%}, {r.rate.high:.2%}]"
        yield (
            f"  {r.action_id} / {r.channel} / {r.arm}: {r.decisions:,}, {r.impressions:,},"
            f" {r.positives:,}, {rate}, {r.value_per_impression:.2f}"
        )
    for b in found.budgets:
        paced = f" (paced: {b.allowed_now:,} allowed by now)" if b.paced else ""
        yield f"\nbudget {b.budget}: {b.used:,} of {b.limit:,} {b.window}{paced}"
    if found.models:
        yield "\nmodel maturity"
        for m in found.models:
            state = "mature" if m.mature else "immature"
            mean = f"mean {m.posterior_mean:.4f}"
            yield f"  {m.action_id}: {m.positives:.1f} positives, {mean}, {state}"


@app.command("models")
def models_command(
    store: Annotated[str, typer.Option(help="The interaction store the servers learn in.")],
    rules: RulesDir = Path("rules"),
    format: FormatOption = Format.TEXT,
) -> None:
    """What each action has learned: prior, evidence, posterior mean, maturity, and with
    learning.context each predictor's bins and AUC."""
    from dataclasses import asdict

    from nba.authoring.models import models

    ruleset = _ruleset(rules)
    if not ruleset.learning:
        raise CommandError(f"{rules}: the rule set learns nothing (no `learning:` section)")
    found = models(ruleset, _model(store, ruleset).snapshot)
    if format == Format.JSON:
        out.print(json.dumps([asdict(m) for m in found], indent=2), markup=False)
        return
    for model in found:
        mature = "mature" if model.mature else "immature"
        out.print(
            f"{model.action_id}: prior {model.prior:g} x {model.prior_strength:g}, "
            f"{model.positives:.1f} positives, {model.failures:.1f} failures, "
            f"mean {model.posterior_mean:.4f}, {mature}",
            markup=False,
        )
        for predictor in model.predictors:
            bins = ", ".join(
                f"{b.label} {b.positives:.0f}/{b.positives + b.failures:.0f}"
                for b in predictor.bins
            )
            out.print(f"  {predictor.name}: AUC {predictor.auc:.2f} | {bins}", markup=False)


# ---------------------------------------------------------------------------- decide


@app.command()
def decide(
    request_file: Annotated[Path, typer.Argument(help="A DecideRequest in proto3 JSON.")],
    rules: RulesDir = Path("rules"),
    format: Annotated[
        Format, typer.Option("--format", help="text, or json: the DecideResponse as proto3 JSON.")
    ] = Format.TEXT,
    as_json: Annotated[bool, typer.Option("--json", help="Same as --format json.")] = False,
    engine: Annotated[EngineKind, typer.Option(help="Rule engine.")] = EngineKind.DURABLE,
) -> None:
    """Print the ranked decision for one request, without a server."""
    decider = _load(rules, engine.value)
    message = read_request(request_file)
    try:
        response = decider.decide(message)
    except RequestError as exc:
        raise CommandError(f"{request_file}: invalid request: {exc}") from None
    if as_json or format == Format.JSON:
        out.print(json_format.MessageToJson(response, indent=2), markup=False)
        return
    print_decision(response, message)


def print_decision(response: pb.DecideResponse, message: pb.DecideRequest) -> None:
    """The ranking as a table of numbers, then each message in full (it does not fit a cell)."""
    touchpoint = message.touchpoint.channel or "outbound"
    out.print(
        f"customer {message.customer_id} | {message.lifecycle_stage} | {touchpoint}"
        f" | rules {response.ruleset_version} | decision {response.decision_id}",
        markup=False,
    )
    if response.arms:
        arms = ", ".join(f"{e}={a}" for e, a in sorted(response.arms.items()))
        out.print(f"arms: {arms}", markup=False)
    if not response.recommendations:
        out.print("no recommendation: nothing qualified and no fallback applies")
        return
    table = Table(box=None, header_style="bold")
    for column in ("#", "action", "channel", "purpose", "score", "p x w x v x l"):
        table.add_column(column, no_wrap=True)
    for rec in response.recommendations:
        c = rec.components
        parts = (
            "fallback"
            if rec.fallback
            else f"{c.propensity:g} x {c.context_weight:g} x {c.value:g} x {c.lever:g}"
        )
        table.add_row(
            str(rec.rank), rec.action_id, rec.channel, rec.purpose, f"{rec.score:.4g}", parts
        )
    out.print(table)
    for rec in response.recommendations:
        if rec.HasField("offer"):
            out.print(
                f"{rec.rank}. {rec.action_id} offer: {rec.offer.code} {rec.offer.name}",
                markup=False,
            )
        t = rec.treatment
        for label, text in (
            ("subject", t.subject),
            ("headline", t.headline),
            ("script", t.script),
            ("body", t.body),
        ):
            if text:
                out.print(f"{rec.rank}. {rec.action_id} {label}: {text}", markup=False)
                break


if __name__ == "__main__":  # pragma: no cover
    main()
