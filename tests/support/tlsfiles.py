"""Real TLS material for host-link tests, made with the ``openssl`` command: a CA, a server
certificate it signs (for ``localhost`` and ``127.0.0.1``), and a token file of mode 0600.

``TlsFiles.make(directory, name)`` writes ``<name>-ca.pem``, ``<name>-cert.pem``, ``<name>-key.pem``
and ``<name>-token`` into ``directory``; two calls with different names give two unrelated CAs.
``start_host(kind, *flags)`` starts ``hostd KIND`` (JSON logs, output piped as text);
``serving(start)`` runs a host process started with :attr:`TlsFiles.flags` and yields the TCP
address from its listening line.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.paths import REPO


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    cert: Path
    key: Path
    token_file: Path

    @property
    def flags(self) -> tuple[str, ...]:
        """A host's TLS flags for these files (hostd/listen.py)."""
        return (
            "--tls-cert",
            str(self.cert),
            "--tls-key",
            str(self.key),
            "--token-file",
            str(self.token_file),
        )

    @property
    def token(self) -> str:
        return self.token_file.read_text().strip()

    @classmethod
    def make(cls, directory: Path, name: str) -> TlsFiles:
        if shutil.which("openssl") is None:
            pytest.skip("the openssl command is not installed")
        ca_key, ca = f"{name}-ca-key.pem", f"{name}-ca.pem"
        key, csr, cert = f"{name}-key.pem", f"{name}-csr.pem", f"{name}-cert.pem"
        ec = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes")
        _openssl("req", "-x509", *ec, "-keyout", ca_key, "-out", ca, "-days", "2",
                 "-subj", f"/CN={name} test CA", cwd=directory)  # fmt: skip
        _openssl("req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost", cwd=directory)
        (directory / f"{name}-ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
        _openssl("x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial",
                 "-out", cert, "-days", "2", "-extfile", f"{name}-ext.cnf", cwd=directory)  # fmt: skip
        token_file = directory / f"{name}-token"
        fd = os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_urlsafe(32) + "\n")
        return cls(directory / ca, directory / cert, directory / key, token_file)


def start_host(kind: str, *flags: str) -> subprocess.Popen[str]:
    """``python -m hostd KIND --log-format json FLAGS…`` from the repository, stdout and stderr piped."""
    return subprocess.Popen(
        [sys.executable, "-m", "hostd", kind, "--log-format", "json", *flags],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@contextlib.contextmanager
def serving(proc: subprocess.Popen[str], timeout_s: float = 60.0) -> Iterator[str]:
    """The ``HOST:PORT`` a started host (stdout and stderr piped, text) prints in its listening
    line; SIGTERM at the end, which must exit 0."""
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, f"the host exited: {proc.communicate(timeout=timeout_s)[1]}"
        yield json.loads(line)["listening"]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout_s) == 0
        proc.communicate()
