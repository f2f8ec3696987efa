"""`nba serve` with TLS: real server processes, certificates generated here (cryptography).

Pinned: TLS serves and plaintext is turned away; mTLS takes a client certificate from its CA
and refuses one from another CA, or none; certificates rotated on disk serve new
connections without a restart; a non-loopback address without TLS is refused (exit 2)
unless --insecure, which is logged.
"""

from __future__ import annotations

import re
import ssl
import time
from pathlib import Path

import grpc
import httpx
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from tests.own_redis import free_port
from tests.server.nba_process import Authority, Pem, exited, nba_serve, serving, write_pair

pytestmark = pytest.mark.slow
SERVING = health_pb2.HealthCheckResponse.SERVING


def health(channel: grpc.Channel) -> int:
    request = health_pb2.HealthCheckRequest(service="")
    return health_pb2_grpc.HealthStub(channel).Check(request, timeout=5).status


def secure_health(port: int, ca: bytes, client: Pem | None = None) -> int:
    credentials = grpc.ssl_channel_credentials(
        root_certificates=ca,
        private_key=client.key if client else None,
        certificate_chain=client.cert if client else None,
    )
    with grpc.secure_channel(f"127.0.0.1:{port}", credentials) as channel:
        return health(channel)


def refused(port: int, ca: bytes, client: Pem | None = None) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as failed:
        secure_health(port, ca, client)
    code: grpc.StatusCode = failed.value.code()
    return code


def test_tls_serves_and_rotated_certificates_serve_new_connections_without_restart(
    tmp_path: Path,
) -> None:
    first, second = Authority.create("first CA"), Authority.create("second CA")
    cert, key = write_pair(tmp_path, first.issue("localhost", server=True))
    with serving("--tls-cert", str(cert), "--tls-key", str(key)) as server:
        assert secure_health(server.port, first.pem) == SERVING
        with (
            grpc.insecure_channel(f"127.0.0.1:{server.port}") as plain,
            pytest.raises(grpc.RpcError) as plaintext,
        ):
            health(plain)
        assert plaintext.value.code() == grpc.StatusCode.UNAVAILABLE

        time.sleep(0.02)  # a new mtime even on a coarse clock
        write_pair(tmp_path, second.issue("localhost", server=True))
        assert secure_health(server.port, second.pem) == SERVING  # same process, new pair
        assert refused(server.port, first.pem) == grpc.StatusCode.UNAVAILABLE
        assert server.process.poll() is None
        server.wait_for("TLS certificates reloaded")


def test_mtls_takes_a_client_certificate_from_its_ca_and_refuses_others(tmp_path: Path) -> None:
    ca, stranger = Authority.create("nba CA"), Authority.create("stranger CA")
    cert, key = write_pair(tmp_path, ca.issue("localhost", server=True))
    client_ca = tmp_path / "clients.crt"
    client_ca.write_bytes(ca.pem)
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(client_ca))
    with serving(*args) as server:
        assert secure_health(server.port, ca.pem, ca.issue("web", server=False)) == SERVING
        wrong_ca = stranger.issue("web", server=False)
        assert refused(server.port, ca.pem, wrong_ca) == grpc.StatusCode.UNAVAILABLE
        assert refused(server.port, ca.pem) == grpc.StatusCode.UNAVAILABLE  # no certificate


def test_a_non_loopback_address_without_tls_is_refused_unless_insecure() -> None:
    server = nba_serve("--host", "0.0.0.0")
    code = exited(server)
    server.wait_for("refusing to serve plaintext")
    assert code == 2
    assert "--insecure" in server.stderr and "nba ready" not in server.stderr

    with serving("--host", "0.0.0.0", "--insecure") as insecure:
        line = insecure.wait_for("serving plaintext on 0.0.0.0 (--insecure)")
        assert "WARNING" in line
        with grpc.insecure_channel(f"127.0.0.1:{insecure.port}") as channel:
            assert health(channel) == SERVING


def test_a_key_that_does_not_match_the_certificate_is_refused_at_startup(tmp_path: Path) -> None:
    ca = Authority.create("nba CA")
    cert, _ = write_pair(tmp_path, ca.issue("localhost", server=True))
    _, other_key = write_pair(tmp_path, ca.issue("localhost", server=True), stem="other")
    server = nba_serve("--tls-cert", str(cert), "--tls-key", str(other_key))
    code = exited(server)
    server.wait_for("--tls-cert/--tls-key")
    assert code == 2


def test_the_http_face_serves_the_same_tls_and_client_certificates(tmp_path: Path) -> None:
    """One policy for both faces: HTTPS with mTLS, never plaintext beside a TLS gRPC port."""
    ca, stranger = Authority.create("nba CA"), Authority.create("stranger CA")
    cert, key = write_pair(tmp_path, ca.issue("localhost", server=True))
    (tmp_path / "ca.crt").write_bytes(ca.pem)
    client = write_pair(tmp_path, ca.issue("web", server=False), stem="client")
    other = write_pair(tmp_path, stranger.issue("web", server=False), stem="other")
    ca_path = tmp_path / "ca.crt"
    args = ("--tls-cert", str(cert), "--tls-key", str(key), "--tls-client-ca", str(ca_path))
    with serving(*args, "--http-port", str(free_port())) as server:
        match = re.search(r"\| http \S+:(\d+) ", server.wait_for("nba ready on"))
        assert match is not None
        url = f"https://127.0.0.1:{match.group(1)}/healthz"
        context = ssl.create_default_context(cafile=str(ca_path))
        context.load_cert_chain(*client)
        assert httpx.get(url, verify=context, timeout=10).json() == {"status": "live"}
        stranger_context = ssl.create_default_context(cafile=str(ca_path))
        stranger_context.load_cert_chain(*other)
        for refused_context in (ssl.create_default_context(cafile=str(ca_path)), stranger_context):
            with pytest.raises(httpx.HTTPError):
                httpx.get(url, verify=refused_context, timeout=10).raise_for_status()
        with pytest.raises(httpx.HTTPError):
            httpx.get(url.replace("https", "http"), timeout=10).raise_for_status()
