"""A real `nba serve` process for the tests, and certificates they generate themselves.

The server's stderr is read by a thread into a list, so a test waits with a deadline
(never an unbounded readline) and can inspect everything the server logged.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.conftest import REPO, RULES

READY = re.compile(r"nba ready on \S+:(\d+) ")


@dataclass
class ServerProcess:
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)
    port: int = 0
    reader: threading.Thread | None = None

    @property
    def reader_alive(self) -> bool:
        return self.reader is not None and self.reader.is_alive()

    @property
    def stderr(self) -> str:
        return "".join(self.lines)

    def wait_for(self, needle: str, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if needle in line:
                    return line
            if self.process.poll() is not None and not any(needle in x for x in self.lines):
                time.sleep(0.1)  # the reader may still hold the last lines
                break
            time.sleep(0.05)
        raise AssertionError(f"no {needle!r} in the server's stderr:\n{self.stderr}")


def nba_serve(*args: str, env: dict[str, str] | None = None) -> ServerProcess:
    """`nba serve ARGS` started (not yet ready); its stderr collected by a thread."""
    command = [sys.executable, "-m", "nba", "serve", "--rules", str(RULES), "--no-watch"]
    if "--http-port" not in args:  # its default port (8080) is fixed; tests run servers at once
        args = (*args, "--http-port", "0")
    process = subprocess.Popen(
        [*command, "--workers", "1", "--store", "memory://", "--port", "0", *args],
        cwd=REPO,
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    server = ServerProcess(process)
    server.reader = threading.Thread(target=_collect, args=(process, server.lines), daemon=True)
    server.reader.start()
    return server


def _collect(process: subprocess.Popen[str], lines: list[str]) -> None:
    assert process.stderr is not None
    for line in process.stderr:
        lines.append(line)


@contextmanager
def serving(*args: str) -> Iterator[ServerProcess]:
    """A ready `nba serve ARGS`, stopped with SIGTERM afterwards."""
    server = nba_serve(*args)
    try:
        match = READY.search(server.wait_for("nba ready on", timeout=60))
        assert match is not None
        server.port = int(match.group(1))
        yield server
    finally:
        stop(server)


def stop(server: ServerProcess) -> int:
    """SIGTERM (SIGKILL after 20 s), then the exit status once stderr is read to its end."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGTERM)
    try:
        code = server.process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        server.process.kill()
        code = server.process.wait(timeout=5)
    return finished(server, code)


def finished(server: ServerProcess, code: int) -> int:
    if server.reader is not None:
        server.reader.join(timeout=5)
    if server.process.stderr is not None and not server.reader_alive:
        server.process.stderr.close()
    return code


def exited(server: ServerProcess, timeout: float = 60) -> int:
    """The exit status of a server expected to stop by itself (killed if it does not)."""
    try:
        return finished(server, server.process.wait(timeout=timeout))
    except subprocess.TimeoutExpired:
        stop(server)
        raise


# ---------------------------------------------------------------------------- certificates


@dataclass(frozen=True)
class Pem:
    cert: bytes
    key: bytes


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _builder(
    subject: str, issuer: str, public: ec.EllipticCurvePublicKey
) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


@dataclass(frozen=True)
class Authority:
    """A throwaway CA that signs server and client certificates."""

    name: str
    key: ec.EllipticCurvePrivateKey
    pem: bytes

    @classmethod
    def create(cls, name: str) -> Authority:
        key = _key()
        cert = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256())
        )
        return cls(name, key, cert.public_bytes(serialization.Encoding.PEM))

    def issue(self, subject: str, server: bool) -> Pem:
        key = _key()
        builder = _builder(subject, self.name, key.public_key()).add_extension(
            x509.BasicConstraints(ca=False, path_length=None), critical=True
        )
        if server:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        cert = builder.sign(self.key, hashes.SHA256())
        return Pem(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def write_pair(directory: Path, pem: Pem, stem: str = "server") -> tuple[Path, Path]:
    cert, key = directory / f"{stem}.crt", directory / f"{stem}.key"
    cert.write_bytes(pem.cert)
    key.write_bytes(pem.key)
    return cert, key
