"""Authentication of host links over TCP: TLS with a pinned CA, plus a bearer token.

One module for both sides, so the metadata key, the token format and the rules cannot drift:

- **Host (server) side**: :meth:`ServerAuth.load` reads the host's certificate chain, private key
  and token file; :func:`server_interceptors` gives the ``grpc.aio`` interceptor that admits a
  call only when its metadata carries ``authorization: Bearer <token>`` (constant-time compare,
  :func:`hmac.compare_digest`); anything else ends with ``UNAUTHENTICATED`` and a message saying
  what was missing. Every method is guarded, health and reflection included: a TCP host answers
  nothing, not even its serving state, to a caller without the token (a probe passes the token
  like any client). :meth:`ServerAuth.credentials` is what a host binds its TCP port with
  (:func:`hostd.lifecycle.bind`); without auth a host allows plain TCP only on loopback.
- **Daemon (client) side**: :func:`channel_credentials` pins the CA file (only a certificate that
  CA signed is accepted, whatever the system trust store holds) and attaches the token to every
  call.

Tokens live in files, never on a command line (visible in ``ps``): :func:`read_token` refuses a
file that its group or others may read, or an empty one. The token is the file's content with
surrounding whitespace removed.
"""

from __future__ import annotations

import hmac
import stat
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

#: The call metadata key and scheme (RFC 6750 ``Authorization: Bearer``; gRPC keys are lowercase).
METADATA_KEY = "authorization"
SCHEME = "Bearer "


class HostAuthError(Exception):
    """A certificate, key, CA or token file cannot be used; the message names the file and the fix."""


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise HostAuthError(f"{what} {path}: cannot read: {exc.strerror}") from None


def read_token(path: Path) -> str:
    """The bearer token in ``path``; HostAuthError when the file is missing, empty, or readable by
    its group or others (``chmod 600`` it)."""
    try:
        mode = path.stat().st_mode
    except OSError as exc:
        raise HostAuthError(f"token file {path}: cannot read: {exc.strerror}") from None
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise HostAuthError(
            f"token file {path}: mode {stat.S_IMODE(mode):04o} lets others read it; "
            f"run 'chmod 600 {path}' (the token is a password)"
        )
    token = _read(path, "token file").decode("utf-8", errors="replace").strip()
    if not token or any(ch.isspace() for ch in token):
        raise HostAuthError(f"token file {path}: expected one token (no spaces), found none")
    return token


@dataclass(frozen=True)
class ServerAuth:
    """What a host needs to serve TCP: its PEM certificate chain and key, and the expected token."""

    cert_chain: bytes
    private_key: bytes
    token: str

    @classmethod
    def load(cls, cert_file: Path, key_file: Path, token_file: Path) -> ServerAuth:
        return cls(_read(cert_file, "TLS certificate"), _read(key_file, "TLS key"), read_token(token_file))

    def credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.private_key, self.cert_chain)])


def _denied(message: str, handler: grpc.RpcMethodHandler | None) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that ends the call with UNAUTHENTICATED (for an
    unknown method, ``None``: a stream-stream one, which reads nothing of the request)."""

    async def deny(_request: Any, context: grpc.aio.ServicerContext) -> None:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    shapes = {
        (False, False): grpc.unary_unary_rpc_method_handler,
        (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler,
        (True, True): grpc.stream_stream_rpc_method_handler,
    }
    shape = (True, True) if handler is None else (handler.request_streaming, handler.response_streaming)
    return shapes[shape](deny)


class BearerTokenInterceptor(grpc.aio.ServerInterceptor):
    """Admit a call only with ``authorization: Bearer <token>`` equal to the host's token."""

    def __init__(self, token: str) -> None:
        self._expected = (SCHEME + token).encode()

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler:
        handler = await continuation(handler_call_details)
        # The token is checked before the method is: without it a caller cannot tell a method this
        # host has (UNAUTHENTICATED) from one it lacks (UNIMPLEMENTED, for token holders only).
        values = [v for k, v in handler_call_details.invocation_metadata or () if k == METADATA_KEY]
        if not values:
            return _denied(f"no bearer token: send '{METADATA_KEY}: {SCHEME}<token>' metadata", handler)
        given = values[0].encode() if isinstance(values[0], str) else bytes(values[0])
        if not hmac.compare_digest(given, self._expected):
            return _denied("the bearer token is not this host's token", handler)
        return handler


def server_interceptors(auth: ServerAuth | None) -> list[grpc.aio.ServerInterceptor]:
    """The interceptors a host installs: the token check when it serves TCP with auth, else none."""
    return [BearerTokenInterceptor(auth.token)] if auth is not None else []


def channel_credentials(ca_file: Path, token_file: Path) -> grpc.ChannelCredentials:
    """Client credentials for a TCP host: TLS trusting only ``ca_file``'s CA, and the token on
    every call. HostAuthError names a file that cannot be used."""
    ca = _read(ca_file, "CA file")
    if b"-----BEGIN CERTIFICATE-----" not in ca:
        raise HostAuthError(f"CA file {ca_file}: expected a PEM certificate")
    token = read_token(token_file)
    return grpc.composite_channel_credentials(
        grpc.ssl_channel_credentials(root_certificates=ca),
        grpc.access_token_call_credentials(token),
    )
