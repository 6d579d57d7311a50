"""``hostd ib``: flags, checked before anything starts (a bad one exits 2 naming it).

``--listen`` and the TLS flags as every host (:mod:`hostd.listen`), ``--gateway HOST:PORT`` (IB Gateway/TWS or ``hostd gateway-sim``),
``--client-id N`` (the one fixed client id). This module imports only the standard library at import
time (``hostd --help`` stays light); the host itself is :mod:`hostd.ib.process`.
"""

from __future__ import annotations

import argparse

from hostd.listen import add_listen_arguments, host_port, server_auth_or_exit


def _gateway(text: str) -> tuple[str, int]:
    host, port = host_port(text)
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
    add_listen_arguments(parser)
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
    parser.add_argument(
        "--simulated", action="store_true", help="the gateway is hostd gateway-sim (reported by GetStatus)"
    )
    parser.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")


def run(args: argparse.Namespace) -> int:
    from hostd import lifecycle
    from hostd.ib.process import HostConfig, IbHost

    auth = server_auth_or_exit(args, "hostd ib")
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
    return lifecycle.serve(
        lambda: IbHost(config), config, log_format=args.log_format, log_level=args.log_level
    )
