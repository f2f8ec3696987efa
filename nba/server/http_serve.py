"""Running the HTTP face beside the gRPC server: Hypercorn on its own event loop, in a thread.

Hypercorn serves HTTP/1.1 and HTTP/2 without TLS (h2c, by prior knowledge or upgrade) on
one port, which uvicorn (HTTP/1.1 only) cannot; bench/http_face.py measures the choice.
The socket is bound here (SO_REUSEPORT under --workers, so forked workers share the port
as they share the gRPC one, the supervisor holding it reserved meanwhile) and handed to
Hypercorn as `fd://N`. `stop()` lets calls in flight finish (a grace, like the gRPC server's).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import ssl
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field

from hypercorn.asyncio import serve
from hypercorn.config import Config

from nba.server.http_face import HttpFace, build_app
from nba.server.service import DecisionService
from nba.server.tls import TlsFiles

log = logging.getLogger("nba.http")

GRACE_SECONDS = 5.0
START_TIMEOUT_SECONDS = 10.0
BACKLOG = 1024


def bound_socket(host: str, port: int, reuse_port: bool) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free one).

    With `reuse_port` (forked workers) others may bind the port too; without it a port
    already in use is an error, as for the gRPC server.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    if reuse_port:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    try:
        sock.bind((host, port))
        sock.listen(BACKLOG)  # connections queue from now on, before the loop accepts them
    except OSError:
        sock.close()
        raise
    return sock


@dataclass
class HttpServer:
    """A started HTTP face; `port` is the bound one."""

    port: int
    face: HttpFace
    thread: threading.Thread
    loop: asyncio.AbstractEventLoop
    stopping: asyncio.Event
    config: Config
    failed: list[BaseException] = field(default_factory=list)

    def stop(self, grace: float = GRACE_SECONDS) -> None:
        """Stop accepting, let calls in flight finish (up to `grace`), join the thread."""
        self.config.graceful_timeout = grace  # read by Hypercorn when the trigger fires
        with contextlib.suppress(RuntimeError):  # the loop already closed: nothing to stop
            self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(timeout=grace + 5)
        self.face.close()


def start_http(
    service: DecisionService,
    host: str,
    port: int,
    threads: int,
    cors_origins: Sequence[str] = (),
    reuse_port: bool = False,
    tls: TlsFiles | None = None,
) -> HttpServer:
    """The HTTP face serving on host:port in a thread of its own; raises OSError if it cannot.

    With `tls` it serves HTTPS (HTTP/2 by ALPN) with the gRPC face's certificate, and with
    its client CA requires client certificates too: one policy for both faces. Hypercorn
    reads the files at start, so a rotated certificate reaches this face on restart.
    """
    sock = bound_socket(host, port, reuse_port)
    face = HttpFace(service, threads)
    app = build_app(face, cors_origins)
    config = Config()
    port_bound = sock.getsockname()[1]
    config.bind = [f"fd://{sock.detach()}"]  # Hypercorn owns (and closes) the socket now
    config.graceful_timeout = GRACE_SECONDS
    config.accesslog = None
    config.errorlog = log
    config.include_server_header = False
    if tls is not None:
        config.certfile, config.keyfile = str(tls.cert), str(tls.key)
        if tls.client_ca is not None:
            config.ca_certs = str(tls.client_ca)
            config.verify_mode = ssl.CERT_REQUIRED
    loop = asyncio.new_event_loop()
    stopping = asyncio.Event()
    started = threading.Event()
    server = HttpServer(port_bound, face, threading.Thread(), loop, stopping, config)

    async def run() -> None:
        loop.call_soon(started.set)  # the socket listens already: nothing is refused
        await serve(app, config, shutdown_trigger=stopping.wait)  # type: ignore[arg-type]

    def main() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(run())
        except BaseException as exc:  # reported to start_http's caller or the log
            server.failed.append(exc)
            log.exception("HTTP face stopped with an error")
        finally:
            started.set()
            loop.close()

    server.thread = threading.Thread(target=main, name="nba-http", daemon=True)
    server.thread.start()
    if not started.wait(START_TIMEOUT_SECONDS) or server.failed:
        raise OSError(f"the HTTP face could not start on {host}:{port}: {server.failed}")
    return server
