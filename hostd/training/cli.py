"""``hostd training``: flags, checked before anything starts (a bad one exits 2 naming it).

``--listen`` and the TLS flags as every host (:mod:`hostd.listen`: TCP beyond loopback only with TLS
and a bearer token), ``--state-dir
DIR`` (job table, blobs, job outputs), ``--slots N`` (jobs at once; default: a quarter of the cores,
at least 1), ``--threads-per-job N`` (torch CPU threads of each job; default: the cores divided by the
slots), ``--device auto|cpu|cuda``, ``--max-blob-bytes``, ``--max-store-bytes``. Imports only the
standard library at import time; the host itself is :mod:`hostd.training.process`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from hostd.listen import add_listen_arguments, server_auth_or_exit

DEFAULT_MAX_BLOB_BYTES = 2 * 1024**3
DEFAULT_MAX_STORE_BYTES = 20 * 1024**3


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}")
    return int(text)


def default_slots(cores: int) -> int:
    return max(1, cores // 4)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_listen_arguments(parser)
    parser.add_argument(
        "--state-dir", type=Path, required=True, metavar="DIR", help="job table, input blobs and job outputs"
    )
    parser.add_argument(
        "--slots", type=_positive_int, metavar="N", help="jobs at once (default: cores / 4, at least 1)"
    )
    parser.add_argument(
        "--threads-per-job",
        type=_positive_int,
        metavar="N",
        help="torch CPU threads per job (default: cores / slots)",
    )
    parser.add_argument(
        "--device", choices=("auto", "cpu", "cuda"), default="auto", help="auto = CUDA when present, else CPU"
    )
    parser.add_argument(
        "--max-blob-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_BLOB_BYTES,
        metavar="N",
        help="largest input blob",
    )
    parser.add_argument(
        "--max-store-bytes",
        type=_positive_int,
        default=DEFAULT_MAX_STORE_BYTES,
        metavar="N",
        help="total size of the input store; least recently used blobs of finished jobs are evicted",
    )
    parser.add_argument("--log-format", choices=("auto", "json", "text"), default="auto")
    parser.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")


def run(args: argparse.Namespace) -> int:
    from hostd import lifecycle
    from hostd.training.process import HostConfig, TrainingHost

    auth = server_auth_or_exit(args, "hostd training")
    cores = os.cpu_count() or 1
    slots = args.slots or default_slots(cores)
    config = HostConfig(
        listen=args.listen,
        state_dir=args.state_dir,
        slots=slots,
        threads_per_job=args.threads_per_job or max(1, cores // slots),
        device=args.device,
        max_blob_bytes=args.max_blob_bytes,
        max_store_bytes=args.max_store_bytes,
        auth=auth,
    )
    return lifecycle.serve(
        lambda: TrainingHost(config), config, log_format=args.log_format, log_level=args.log_level
    )
