"""``hostd gateway-sim``: run the TWS gateway simulator as a service.

Lifecycle: parse and check the flags (a bad one exits 2 naming it) → start (calendars, bind) →
print the bound address on stdout as one JSON line ``{"listening": "HOST:PORT"}`` and send sd_notify
``READY=1`` (its STATUS names the address) → serve until SIGTERM or SIGINT → ``STOPPING=1``, close every
connection, exit 0. Logs are structured (JSON when stderr is not a terminal), as ktrdrd's.

This module imports only the standard library at import time (``hostd --help`` stays light).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hostd.gatewaysim.faults import Faults
    from hostd.gatewaysim.server import SimConfig

ASSET_CLASSES = ("stock", "forex", "crypto")


def _listen(text: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or int(port) > 65535:
        raise argparse.ArgumentTypeError(
            f"expected HOST:PORT (PORT 0..65535, 0 = any free port), got {text!r}"
        )
    return host, int(port)


def _declaration(text: str) -> tuple[str, str]:
    symbol, sep, asset_class = text.partition("=")
    if not sep or not symbol or asset_class not in ASSET_CLASSES:
        raise argparse.ArgumentTypeError(
            f"expected SYMBOL=CLASS with CLASS one of {', '.join(ASSET_CLASSES)}, got {text!r}"
        )
    return symbol.upper(), asset_class


def _outage(text: str) -> tuple[float, float]:
    at, sep, length = text.partition(":")
    try:
        values = (float(at), float(length))
    except ValueError:
        values = (-1.0, -1.0)
    if not sep or values[0] < 0 or values[1] <= 0:
        raise argparse.ArgumentTypeError(f"expected AT:FOR in seconds (AT >= 0, FOR > 0), got {text!r}")
    return values


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--listen",
        type=_listen,
        default=("127.0.0.1", 7497),
        metavar="HOST:PORT",
        help="TCP address to listen on; port 0 picks a free one (default 127.0.0.1:7497)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="serve bars from DIR/{SERIES}_{TF}.csv|parquet; without it, from the seeded generator",
    )
    parser.add_argument("--seed", type=int, default=0, help="generator seed (default 0)")
    parser.add_argument(
        "--asset-class",
        type=_declaration,
        action="append",
        default=[],
        metavar="SYMBOL=CLASS",
        help="declare a symbol's asset class (stock, forex, crypto) for requests without secType",
    )
    parser.add_argument(
        "--server-version", type=int, default=176, help="TWS server version to announce (166..178)"
    )
    parser.add_argument("--account", default="DU0000001", help="the managed account reported at connect")
    pacing = parser.add_argument_group("pacing")
    pacing.add_argument(
        "--clock-scale",
        type=float,
        default=1.0,
        metavar="K",
        help="divide the pacing windows by K (15 s, 2 s, 10 min) to test them quickly (default 1)",
    )
    faults = parser.add_argument_group("fault injection")
    faults.add_argument(
        "--latency-ms", type=float, default=0.0, help="delay every data answer by this many ms"
    )
    faults.add_argument(
        "--drop-after-requests",
        type=int,
        metavar="N",
        help="close each connection when its (N+1)-th data request arrives",
    )
    faults.add_argument(
        "--drop-after-seconds",
        type=float,
        metavar="S",
        help="close each connection S seconds after its API started",
    )
    faults.add_argument(
        "--unknown-symbol",
        action="append",
        default=[],
        metavar="SERIES",
        help="answer requests for SERIES (AAPL, EURUSD) with error 200; repeatable",
    )
    faults.add_argument(
        "--reject-321",
        type=int,
        default=0,
        metavar="N",
        help="answer the first N historical-data requests with error 321",
    )
    faults.add_argument(
        "--reserved-client-id",
        type=int,
        action="append",
        default=[],
        metavar="ID",
        help="refuse this client id with error 326 (as if in use); repeatable",
    )
    faults.add_argument(
        "--outage",
        type=_outage,
        action="append",
        default=[],
        metavar="AT:FOR",
        help="AT s after start send 1100 (connectivity lost), FOR s later 1102; repeatable",
    )
    parser.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")


def config_from(args: argparse.Namespace) -> tuple[SimConfig, Faults]:
    """The simulator's settings and fault knobs from parsed flags; ValueError names a bad one."""
    from hostd.gatewaysim.faults import Faults
    from hostd.gatewaysim.server import SimConfig
    from ktrdr.calendars import AssetClass

    host, port = args.listen
    config = SimConfig(
        host=host,
        port=port,
        data_dir=args.data,
        seed=args.seed,
        declared={symbol: AssetClass(asset_class) for symbol, asset_class in args.asset_class},
        server_version=args.server_version,
        account=args.account,
        clock_scale=args.clock_scale,
    )
    faults = Faults(
        latency_s=args.latency_ms / 1000,
        drop_after_requests=args.drop_after_requests,
        drop_after_s=args.drop_after_seconds,
        unknown_symbols={symbol.upper() for symbol in args.unknown_symbol},
        reject_321=args.reject_321,
        reserved_client_ids=set(args.reserved_client_id),
    )
    config.check()
    faults.check()
    return config, faults


def run(args: argparse.Namespace) -> int:
    import sys

    try:
        config, faults = config_from(args)
    except ValueError as exc:
        print(f"hostd gateway-sim: {exc}", file=sys.stderr)
        return 2
    from hostd.gatewaysim.service import serve

    return serve(config, faults, outages=args.outage, log_format=args.log_format, log_level=args.log_level)
