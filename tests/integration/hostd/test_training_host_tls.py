"""``hostd training`` takes the same listen and TLS flags as ``hostd ib`` (hostd/listen.py): over TCP
with TLS and a bearer token the right token is served and a wrong one gets UNAUTHENTICATED; TCP
beyond loopback without TLS is refused before anything starts."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import grpc
import pytest

from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdr.rpc import hostauth
from tests.support.tlsfiles import TlsFiles, serving, start_host

GET_CAPACITY = "/ktrdr.hostd.training.v1.TrainingHostService/GetCapacity"
START_TIMEOUT_S = 60.0


def _hostd_training(state_dir: Path, *flags: str) -> subprocess.Popen[str]:
    return start_host("training", "--state-dir", str(state_dir), "--slots", "1", *flags)


@pytest.fixture
def tls(tmp_path: Path) -> TlsFiles:
    return TlsFiles.make(tmp_path, "host")


@pytest.fixture
def tls_host(tls: TlsFiles, tmp_path: Path) -> Iterator[str]:
    with serving(_hostd_training(tmp_path / "state", "--listen", "127.0.0.1:0", *tls.flags)) as address:
        yield address


def _capacity(address: str, credentials: grpc.ChannelCredentials) -> pb.GetCapacityResponse:
    with grpc.secure_channel(address, credentials) as channel:
        call = channel.unary_unary(
            GET_CAPACITY,
            request_serializer=pb.GetCapacityRequest.SerializeToString,
            response_deserializer=pb.GetCapacityResponse.FromString,
        )
        return call(pb.GetCapacityRequest(), timeout=20)


def test_the_right_token_is_served_and_a_wrong_one_is_unauthenticated(
    tls_host: str, tls: TlsFiles, tmp_path: Path
) -> None:
    assert _capacity(tls_host, hostauth.channel_credentials(tls.ca, tls.token_file)).slots_total == 1
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    wrong.chmod(0o600)
    with pytest.raises(grpc.RpcError) as err:
        _capacity(tls_host, hostauth.channel_credentials(tls.ca, wrong))
    assert err.value.code() == grpc.StatusCode.UNAUTHENTICATED


def test_without_the_token_a_method_the_host_lacks_is_not_told_apart(
    tls_host: str, tls: TlsFiles, tmp_path: Path
) -> None:
    wrong = tmp_path / "wrong-token"
    wrong.write_text("not-the-token")
    wrong.chmod(0o600)
    for token_file, expected in (
        (wrong, grpc.StatusCode.UNAUTHENTICATED),
        (tls.token_file, grpc.StatusCode.UNIMPLEMENTED),
    ):
        with grpc.secure_channel(tls_host, hostauth.channel_credentials(tls.ca, token_file)) as channel:
            missing = channel.unary_unary("/ktrdr.hostd.training.v1.TrainingHostService/NoSuchMethod")
            with pytest.raises(grpc.RpcError) as err:
                missing(b"", timeout=20)
            assert err.value.code() == expected


def test_tcp_beyond_loopback_without_tls_exits_2(tmp_path: Path) -> None:
    proc = _hostd_training(tmp_path / "state", "--listen", "0.0.0.0:0")
    out, err = proc.communicate(timeout=START_TIMEOUT_S)
    assert proc.returncode == 2 and not out
    assert "needs --tls-cert" in err
    assert not (tmp_path / "state").exists()
