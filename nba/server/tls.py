"""TLS for the gRPC face: server certificates, optional client certificates (mTLS), and
certificates rotated without a restart.

grpc asks a certificate-configuration fetcher before each new handshake; ours compares
the files' (mtime, size) with what it last served and answers a new configuration only
when they changed. A half-written rotation (the certificate renewed, the key not yet, or
a file mid-write) fails the stdlib's key/certificate check and is logged; the last good
pair keeps serving until the files agree again. Connections already open keep the
certificate they were made with.
"""

from __future__ import annotations

import logging
import os
import ssl
import threading
from dataclasses import dataclass
from pathlib import Path

import grpc

from nba.errors import NbaError

log = logging.getLogger(__name__)


class TlsFileError(NbaError):
    """A certificate, key or CA file that cannot be read or does not fit together."""


@dataclass(frozen=True)
class TlsFiles:
    """`--tls-cert`, `--tls-key` and, for mTLS, `--tls-client-ca` (PEM files)."""

    cert: Path
    key: Path
    client_ca: Path | None = None

    @property
    def paths(self) -> tuple[Path, ...]:
        return (self.cert, self.key) + ((self.client_ca,) if self.client_ca else ())


def checked_configuration(files: TlsFiles) -> grpc.ServerCertificateConfiguration:
    """The files as grpc serves them, or TlsFileError when they are unreadable or the key
    does not belong to the certificate."""
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(files.cert, files.key)
        if files.client_ca is not None:
            ssl.create_default_context(cafile=files.client_ca)
        cert, key = files.cert.read_bytes(), files.key.read_bytes()
        ca = files.client_ca.read_bytes() if files.client_ca else None
    except (OSError, ssl.SSLError) as exc:
        raise TlsFileError(f"TLS files {', '.join(map(str, files.paths))}: {exc}") from None
    return grpc.ssl_server_certificate_configuration([(key, cert)], root_certificates=ca)


class RotatingCertificates:
    """The fetcher grpc calls per handshake: a new configuration when the files changed."""

    def __init__(self, files: TlsFiles) -> None:
        self.files = files
        self._lock = threading.Lock()
        self._signature = self._current_signature()
        self.initial = checked_configuration(files)

    def _current_signature(self) -> tuple[tuple[int, int], ...]:
        signature = []
        for path in self.files.paths:
            try:
                stat = os.stat(path)
            except OSError:
                signature.append((-1, -1))
                continue
            signature.append((stat.st_mtime_ns, stat.st_size))
        return tuple(signature)

    def __call__(self) -> grpc.ServerCertificateConfiguration | None:
        with self._lock:
            signature = self._current_signature()
            if signature == self._signature:
                return None  # grpc keeps what it has
            try:
                configuration = checked_configuration(self.files)
            except TlsFileError as exc:
                log.warning(
                    "TLS files changed but are not usable yet; still serving the old: %s", exc
                )
                return None  # retried at the next handshake: the signature is not recorded
            self._signature = signature
            log.info("TLS certificates reloaded from %s", self.files.cert)
            return configuration


def server_credentials(files: TlsFiles) -> grpc.ServerCredentials:
    """Credentials that follow the files; client certificates required with a client CA."""
    fetcher = RotatingCertificates(files)
    return grpc.dynamic_ssl_server_credentials(
        fetcher.initial,
        fetcher,  # type: ignore[arg-type]  # grpc documents None as "keep the current one"
        require_client_authentication=files.client_ca is not None,
    )
