"""``hostd ib``: flags, checked before anything starts (a bad one exits 2 naming it).

``--listen unix:PATH`` or ``--listen HOST:PORT`` (TCP: on any address with ``--tls-cert``,
``--tls-key`` and ``--token-file`` — TLS plus a bearer token, :mod:`ktrdr.rpc.hostauth` — and
without them on a loopback address only), ``--gateway HOST:PORT`` (IB Gateway/TWS or ``hostd gateway-sim``),
``--client-id N`` (the one fixed client id). This module imports only the standard library at import
time (``hostd --help`` stays light); the host itself is :mod:`hostd.ib.process`.
"""

from __future__ import annotations

import argparse
import ipaddress
from pathlib import Path

LOOPBACK_NAMES = ("localhost",)


def _listen(text: str) -> str:
    """``unix:PATH`` as is; ``HOST:PORT`` normalized (whether TLS is needed is checked in :func:`run`)."""
    if text.startswith("unix:"):
        if len(text) == len("unix:"):
            raise argparse.ArgumentTypeError("expected unix:PATH with a non-empty PATH")
        return text
    host, port = _host_port(text)
    return f"{host}:{port}"


def _is_loopback(listen: str) -> bool:
    bare = listen.rpartition(":")[0].strip("[]")
    try:
        return bare in LOOPBACK_NAMES or ipaddress.ip_address(bare).is_loopback
    except ValueError:
        return False


def _auth_problem(args: argparse.Namespace) -> str | None:
    """Why the listen and TLS flags do not fit together; None when they do."""
    given = [f for f in ("tls_cert", "tls_key", "token_file") if getattr(args, f) is not None]
    if given and len(given) < 3:
        return "--tls-cert, --tls-key and --token-file go together (TLS plus a bearer token)"
    if given and args.listen.startswith("unix:"):
        return "--tls-cert/--tls-key/--token-file apply to TCP listening; a unix socket uses file permissions"
    if not given and not args.listen.startswith("unix:") and not _is_loopback(args.listen):
        return (
            f"--listen {args.listen}: TCP beyond loopback needs --tls-cert, --tls-key and --token-file "
            "(or use unix:PATH or a loopback address)"
        )
    return None


def _host_port(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (PORT 0..65535), got {text!r}")
    return host, int(port)


def _gateway(text: str) -> tuple[str, int]:
    host, port = _host_port(text)
    if port == 0:
        raise argparse.ArgumentTypeError(f"the gateway port must be 1..65535, got {text!r}")
    return host, port


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a number > 0, got {text!r}")
    return value


def _client_id(text: str) -> int:
    if not text.isdigit() or int(text) > 2**31 - 1:
        raise argparse.ArgumentTypeError(f"expected a client id 0..2147483647, got {text!r}")
    return int(text)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=_listen,
        required=True,
        metavar="unix:PATH|HOST:PORT",
        help="where to serve gRPC: a unix socket, or TCP (beyond loopback only with TLS and a token; "
        "port 0 = any free port)",
    )
    parser.add_argument(
        "--gateway",
        type=_gateway,
        required=True,
        metavar="HOST:PORT",
        help="IB Gateway/TWS or hostd gateway-sim",
    )
    parser.add_argument(
        "--client-id", type=_client_id, default=1, metavar="N", help="the fixed TWS API client id (default 1)"
    )
    parser.add_argument(
        "--clock-scale",
        type=_positive,
        default=1.0,
        metavar="K",
        help="divide the pacing windows by K, as hostd gateway-sim --clock-scale K (tests only; default 1)",
    )
    parser.add_argument(
        "--gateway-wait",
        type=_positive,
        default=30.0,
        metavar="S",
        help="how long a call waits for an absent gateway before UNAVAILABLE (default 30 s)",
    )
    parser.add_argument(
        "--request-timeout",
        type=_positive,
        default=60.0,
        metavar="S",
        help="how long the gateway has to answer one historical request (default 60 s)",
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
    parser.add_argument(
        "--simulated", action="store_true", help="the gateway is hostd gateway-sim (reported by GetStatus)"
    )
    parser.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")


def run(args: argparse.Namespace) -> int:
    import sys

    from hostd.ib.process import HostConfig, serve
    from ktrdr.rpc.hostauth import HostAuthError, ServerAuth

    problem = _auth_problem(args)
    if problem is not None:
        print(f"hostd ib: {problem}", file=sys.stderr)
        return 2
    try:
        auth = ServerAuth.load(args.tls_cert, args.tls_key, args.token_file) if args.tls_cert else None
    except HostAuthError as exc:
        print(f"hostd ib: {exc}", file=sys.stderr)
        return 2

    host, port = args.gateway
    config = HostConfig(
        listen=args.listen,
        gateway_host=host,
        gateway_port=port,
        client_id=args.client_id,
        clock_scale=args.clock_scale,
        gateway_wait_s=args.gateway_wait,
        request_timeout_s=args.request_timeout,
        simulated=args.simulated,
        auth=auth,
    )
    return serve(config, log_format=args.log_format, log_level=args.log_level)
