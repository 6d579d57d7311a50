"""Where a host serves and how it authenticates callers: the flags every ``hostd`` host shares.

``--listen unix:PATH`` or ``--listen HOST:PORT``; TCP beyond a loopback address needs ``--tls-cert``,
``--tls-key`` and ``--token-file`` together (TLS plus a bearer token, :mod:`ktrdr.rpc.hostauth`);
a unix socket is guarded by its file permissions and takes none of them. Imports only the standard
library at import time (``hostd --help`` stays light).
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from pathlib import Path
from typing import Any

LOOPBACK_NAMES = ("localhost",)
TLS_FLAGS = ("tls_cert", "tls_key", "token_file")


def host_port(text: str) -> tuple[str, int]:
    """``HOST:PORT`` (PORT 0..65535) split; ArgumentTypeError naming the text otherwise."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (PORT 0..65535), got {text!r}")
    return host, int(port)


def listen_address(text: str) -> str:
    """``unix:PATH`` as is; ``HOST:PORT`` normalized (whether TLS is needed is checked by :func:`server_auth`)."""
    if text.startswith("unix:"):
        if len(text) == len("unix:"):
            raise argparse.ArgumentTypeError("expected unix:PATH with a non-empty PATH")
        return text
    host, port = host_port(text)
    return f"{host}:{port}"


def is_loopback(listen: str) -> bool:
    bare = listen.rpartition(":")[0].strip("[]")
    try:
        return bare in LOOPBACK_NAMES or ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def add_listen_arguments(parser: argparse.ArgumentParser) -> None:
    """``--listen`` (required) and the TLS group."""
    parser.add_argument(
        "--listen",
        type=listen_address,
        required=True,
        metavar="unix:PATH|HOST:PORT",
        help="where to serve gRPC: a unix socket, or TCP (beyond loopback only with TLS and a token; "
        "port 0 = any free port)",
    )
    tls = parser.add_argument_group("TLS and bearer token (TCP listening)")
    tls.add_argument("--tls-cert", type=Path, metavar="FILE", help="PEM certificate chain of this host")
    tls.add_argument("--tls-key", type=Path, metavar="FILE", help="PEM private key of --tls-cert")
    tls.add_argument(
        "--token-file",
        type=Path,
        metavar="FILE",
        help="file holding the bearer token callers must send (mode 600; never the token itself)",
    )


def auth_problem(args: argparse.Namespace) -> str | None:
    """Why the listen and TLS flags do not fit together; None when they do."""
    given = [f for f in TLS_FLAGS if getattr(args, f) is not None]
    if given and len(given) < len(TLS_FLAGS):
        return "--tls-cert, --tls-key and --token-file go together (TLS plus a bearer token)"
    if given and args.listen.startswith("unix:"):
        return "--tls-cert/--tls-key/--token-file apply to TCP listening; a unix socket uses file permissions"
    if not given and not args.listen.startswith("unix:") and not is_loopback(args.listen):
        return (
            f"--listen {args.listen}: TCP beyond loopback needs --tls-cert, --tls-key and --token-file "
            "(or use unix:PATH or a loopback address)"
        )
    return None


class BadListenFlags(Exception):
    """The listen/TLS flags cannot be used; the message says which and why (exit 2)."""


def server_auth(args: argparse.Namespace) -> Any:
    """The host's :class:`ktrdr.rpc.hostauth.ServerAuth` (None without TLS flags); BadListenFlags when
    the flags do not fit together or a file cannot be used."""
    from ktrdr.rpc.hostauth import HostAuthError, ServerAuth  # grpc: only once the host really starts

    problem = auth_problem(args)
    if problem is not None:
        raise BadListenFlags(problem)
    if args.tls_cert is None:
        return None
    try:
        return ServerAuth.load(args.tls_cert, args.tls_key, args.token_file)
    except HostAuthError as exc:
        raise BadListenFlags(str(exc)) from None


def server_auth_or_exit(args: argparse.Namespace, prog: str) -> Any:
    """:func:`server_auth`, or the reason on stderr and ``SystemExit(2)``."""
    try:
        return server_auth(args)
    except BadListenFlags as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        raise SystemExit(2) from None
