"""``ktrdrd`` / ``python -m ktrdrd``: parse flags, build the configuration, run the daemon on uvloop.

Exit codes: 0 clean stop (or ``--print-config``, ``--version``), 1 startup failed (another instance, unreadable
journal, bad directory), 2 configuration or usage error.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from ktrdr import __version__
from ktrdrd import config as config_mod

if TYPE_CHECKING:
    from ktrdrd.app import Extension

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ktrdrd",
        description="The ktrdr daemon: operations journal, gRPC (grpc.sock) and ctl (ctl.sock) servers.",
        epilog="Precedence: defaults < --config FILE (or KTRDR_CONFIG) < KTRDR_* environment < flags.",
    )
    parser.add_argument("--config", type=Path, metavar="FILE", help="TOML configuration file")
    parser.add_argument("--print-config", action="store_true", help="print the effective config and exit")
    parser.add_argument("--version", action="version", version=f"ktrdrd {__version__}")
    for key in config_mod.KEYS:
        shape = {"choices": key.choices} if key.choices else {"metavar": key.kind.upper()}
        parser.add_argument(key.flag, dest=key.name, help=key.help, **shape)
    return parser


def main(argv: list[str] | None = None, *, extensions: Sequence[Extension] = ()) -> int:
    """Run the daemon with ``argv`` (default: the command line); ``extensions`` are an embedding
    program's additions (see :data:`ktrdrd.app.Extension`; the product passes none)."""
    args = _parser().parse_args(argv)  # usage errors exit 2 (argparse)
    flags = {k.name: getattr(args, k.name) for k in config_mod.KEYS if getattr(args, k.name) is not None}

    def load() -> config_mod.Config:
        return config_mod.load(config_file=args.config, flags=flags)

    try:
        config = load()
    except config_mod.ConfigError as exc:
        print(f"ktrdrd: configuration error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    if args.print_config:
        config_mod.render(config, sys.stdout.write)
        return 0

    import uvloop

    from ktrdrd import nopandas

    nopandas.refuse()  # before anything the daemon loads can import it (pyarrow would)
    # Arrow's buffers from glibc malloc, not Arrow's default mimalloc, which keeps the pages each
    # short thread-pool task touched: bench train_daemon (a)+(b) 154 -> 123 MiB RSS. Read by Arrow
    # at its first allocation; an explicit setting wins; the embedded hosts inherit it.
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    from ktrdr import logs

    logs.quiet_grpc_core()  # before grpc is imported (by ktrdrd.app)
    from ktrdrd import app

    logs.setup(config["log_format"], config["log_level"])
    os.umask(0o027)  # files 0640, dirs 0750; sockets are chmod-ed to 0660 by the servers
    return uvloop.run(app.Daemon(config, extensions=extensions, reload=load).serve())


if __name__ == "__main__":
    sys.exit(main())
