"""``hostd ib`` on TCP with TLS and a bearer token (ktrdr.rpc.hostauth), as a real process with a
real CA made by openssl: the right token passes; a wrong or missing one gets UNAUTHENTICATED; a
client that pins another CA cannot connect; a token file others can read is refused at start."""

from __future__ import annotations

import contextlib
import json
import signal
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from ktrdr.rpc import hostauth
from tests.support.tlsfiles import TlsFiles, serving, start_host

GET_STATUS = "/ktrdr.hostd.marketdata.v1.MarketDataService/GetStatus"
START_TIMEOUT_S = 60.0


def _hostd_ib(*flags: str) -> subprocess.Popen[str]:
    return start_host("ib", "--gateway", "127.0.0.1:9", *flags)


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return TlsFiles.make(tmp_path, "host")


@pytest.fixture
def tls_host(tls: TlsFiles) -> Iterator[str]:
    """A hostd ib listening on 127.0.0.1 with TLS and a token; yields its ``HOST:PORT``."""
    with serving(_hostd_ib("--listen", "127.0.0.1:0", *tls.flags)) as address:
        yield address


def _get_status(address: str, credentials: grpc.ChannelCredentials) -> pb.GetStatusResponse:
    with grpc.secure_channel(address, credentials) as channel:
        rpc = channel.unary_unary(
            GET_STATUS,
            request_serializer=pb.GetStatusRequest.SerializeToString,
            response_deserializer=pb.GetStatusResponse.FromString,
        )
        return rpc(pb.GetStatusRequest(), timeout=20)


def test_the_right_token_over_the_pinned_ca_is_served(tls_host: str, tls: TlsFiles) -> None:
    status = _get_status(tls_host, hostauth.channel_credentials(tls.ca, tls.token_file))
    assert status.gateway_address == "127.0.0.1:9" and status.version


def test_health_needs_the_token_too(tls_host: str, tls: TlsFiles) -> None:
    credentials = grpc.ssl_channel_credentials(tls.ca.read_bytes())
    with grpc.secure_channel(tls_host, credentials) as channel, pytest.raises(grpc.RpcError) as denied:
        health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=""), timeout=20)
    assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED


@pytest.mark.parametrize("token", [None, "not-the-token"])
def test_a_missing_or_wrong_token_is_unauthenticated(tls_host: str, tls: TlsFiles, token: str | None) -> None:
    credentials = grpc.ssl_channel_credentials(tls.ca.read_bytes())
    if token is not None:
        credentials = grpc.composite_channel_credentials(
            credentials, grpc.access_token_call_credentials(token)
        )
    with pytest.raises(grpc.RpcError) as denied:
        _get_status(tls_host, credentials)
    assert denied.value.code() == grpc.StatusCode.UNAUTHENTICATED
    assert ("no bearer token" if token is None else "not this host's token") in str(denied.value.details())


def test_a_client_pinning_another_ca_cannot_connect(tls_host: str, tmp_path: Path, tls: TlsFiles) -> None:
    other = TlsFiles.make(tmp_path, "other")
    with pytest.raises(grpc.RpcError) as refused:
        _get_status(tls_host, hostauth.channel_credentials(other.ca, tls.token_file))
    assert refused.value.code() == grpc.StatusCode.UNAVAILABLE


def test_a_token_file_others_can_read_is_refused(tls: TlsFiles) -> None:
    tls.token_file.chmod(0o644)
    proc = _hostd_ib("--listen", "127.0.0.1:0", *tls.flags)
    out, err = proc.communicate(timeout=START_TIMEOUT_S)
    assert proc.returncode == 2 and not out
    assert str(tls.token_file) in err and "chmod 600" in err
    with pytest.raises(hostauth.HostAuthError, match="0644"):
        hostauth.read_token(tls.token_file)


@pytest.mark.parametrize(
    ("flags", "named"),
    [
        (["--listen", "0.0.0.0:0"], "needs --tls-cert"),
        (["--listen", "127.0.0.1:0", "--tls-cert", "x.pem"], "go together"),
        (["--listen", "unix:/tmp/x.sock", "--tls-cert", "c", "--tls-key", "k", "--token-file", "t"], "TCP"),
    ],
)
def test_tls_flags_that_do_not_fit_exit_2(flags: list[str], named: str) -> None:
    proc = _hostd_ib(*flags)
    _out, err = proc.communicate(timeout=START_TIMEOUT_S)
    assert proc.returncode == 2 and named in err


def test_connections_that_do_not_speak_tls_write_nothing_into_the_host_s_log(tls: TlsFiles) -> None:
    """A plain-TCP gRPC client, an HTTP request and random bytes on the TLS port each failed the
    handshake, and gRPC's C core wrote a non-JSON line per failure into the host's log: whoever can
    reach the port could fill it. They are refused quietly; a real client is served after them."""
    proc = _hostd_ib("--listen", "127.0.0.1:0", *tls.flags)
    try:
        assert proc.stdout is not None
        address = json.loads(proc.stdout.readline())["listening"]
        with grpc.insecure_channel(address) as channel:
            with pytest.raises(grpc.RpcError) as err:
                channel.unary_unary(GET_STATUS)(b"", timeout=10)
            assert err.value.code() == grpc.StatusCode.UNAVAILABLE
        host, port = address.rsplit(":", 1)
        for garbage in (b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", bytes(range(256)) * 4):
            with socket.create_connection((host, int(port)), timeout=10) as sock:
                sock.sendall(garbage)
                with contextlib.suppress(OSError):
                    sock.recv(1024)  # the host's alert, or its close
        good = hostauth.channel_credentials(tls.ca, tls.token_file)
        assert _get_status(address, good).gateway_address == "127.0.0.1:9"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, err_text = proc.communicate(timeout=START_TIMEOUT_S)
    assert proc.returncode == 0
    not_json = [line for line in (out + err_text).splitlines() if not line.startswith("{")]
    assert not not_json, not_json[:5]
