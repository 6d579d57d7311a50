"""The ``hostd`` command: one subcommand per host.

Each subcommand lives in a module with ``add_arguments(parser)`` and ``run(args) -> int`` (the exit
status). Those modules import only the standard library at import time, so ``hostd --help`` is cheap;
the host's real work is imported inside ``run``.
"""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from hostd.gatewaysim import cli as gatewaysim_cli
from hostd.ib import cli as ib_cli
from hostd.training import cli as training_cli
from ktrdr import logs

#: subcommand → (its module, one-line help)
SUBCOMMANDS: dict[str, tuple[ModuleType, str]] = {
    "gateway-sim": (
        gatewaysim_cli,
        "TWS gateway simulator: the TWS API subset ib_async uses, bars from files or a seeded generator",
    ),
    "ib": (
        ib_cli,
        "IB host: one paced ib_async connection to IB Gateway/TWS served as MarketDataService",
    ),
    "training": (
        training_cli,
        "training host: TrainingHostService, jobs in warm worker processes on CPU or CUDA",
    ),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="hostd", description="ktrdr hosts: long-running services.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in SUBCOMMANDS.items():
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logs.quiet_grpc_core()  # before a host's run() imports grpc
    return int(args._run(args))


if __name__ == "__main__":
    sys.exit(main())
