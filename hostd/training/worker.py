"""A warm worker: the process one training job runs in, started ahead of the job.

The host starts it with the ``spawn`` method (a fresh interpreter: nothing of the host's gRPC
state, threads or locks is inherited) and it never imports grpc. Before it says it is ready it has
imported torch and the trainer and set its torch thread count, so a job pays no import or start-up.
It runs exactly one job, then exits; the host starts a replacement.

Messages over the pipe (tuples, pickled by :mod:`multiprocessing`):

* worker → host: ``("ready", info)`` (``pid``, ``device``, ``description``, ``memory_bytes``,
  ``grpc_modules``: any ``grpc`` module loaded, which must be none), then for the job
  ``("stage", name)``, progress — ``("progress", fields of ktrdr.research.trainer.Progress)``
  for a train job, ``("step", {"current", "total", "name"})`` for a backtest job — and one of
  ``("done", result)``, ``("stopped", {"why": "cancel"|"shutdown", "checkpoint": bool})``,
  ``("failed", {"reason": ..., "message": ...})``.
* host → worker: ``("job", order)`` (:func:`run_job`'s ``order``), ``("cancel", why)``.

Failure reasons: ``BAD_INPUT`` (spec, strategy, bars, model files), ``FEATURE_SPEC_MISMATCH``
(a backtest whose strategy builds other features than its model's), ``TRAINING_FAILED``.

The worker's stderr goes to a file the host names, whose tail the host reports when the worker
dies. SIGINT is ignored (a terminal's Ctrl-C reaches the host, which decides); SIGTERM, or the host
going away (end of file on the pipe), stops the job after a checkpoint, like ``("cancel",
"shutdown")``.
"""

from __future__ import annotations

import dataclasses
import os
import signal
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

#: The job's output inside its directory, per job kind: a train job's model directory, a backtest
#: job's artifacts (``ktrdr.jobs.backtest.ARTIFACTS``).
MODEL_DIR = "model"
BACKTEST_DIR = "backtest"
OUTPUT_DIRS = {"train": MODEL_DIR, "backtest": BACKTEST_DIR}


def _redirect_stderr(path: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
    os.dup2(fd, 2)
    os.close(fd)


def _device_info(device: str) -> dict[str, Any]:
    import torch

    from ktrdr.research.trainer import resolve_device

    resolved = resolve_device(None if device == "auto" else device)
    if resolved.type == "cuda":
        index = resolved.index or 0
        props = torch.cuda.get_device_properties(index)
        return {"device": f"cuda:{index}", "description": props.name, "memory_bytes": int(props.total_memory)}
    pages, page_size = os.sysconf("SC_PHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    return {"device": "cpu", "description": f"{os.cpu_count()} CPU cores", "memory_bytes": pages * page_size}


class _Stop:
    """The job's cancel token: set by a ``cancel`` message, SIGTERM or the host going away."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.why = "cancel"

    def set(self, why: str) -> None:
        if not self.event.is_set():
            self.why = why
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()


def _listen(conn: Connection, stop: _Stop) -> None:
    while True:
        try:
            kind, arg = conn.recv()
        except (EOFError, OSError):
            stop.set("shutdown")
            return
        if kind == "cancel":
            stop.set(str(arg))


def run_job(order: dict[str, Any], conn: Connection, stop: _Stop, threads: int) -> None:
    """Run one job. ``order``: ``kind`` (``train`` or ``backtest``), ``job_id``, ``spec`` (dict),
    ``inputs`` (role → file path), ``job_dir`` (the output goes to ``job_dir/OUTPUT_DIRS[kind]``,
    a train job's checkpoint to ``job_dir/checkpoint.pt``), ``device`` (``cpu``, ``cuda:0``).
    Sends the job's messages (module docstring)."""
    if order["kind"] == "backtest":
        run_backtest_job(order, conn, stop)
        return
    from ktrdr.jobs import train as wire
    from ktrdr.research.train import select_bars, train_on_bars, with_overrides
    from ktrdr.research.trainer import Cancelled, Progress, TrainingError, TrainOptions
    from ktrdr.strategy import StrategyError, load_strategy_text

    t0 = time.perf_counter()
    conn.send(("stage", "load"))
    job_dir = Path(order["job_dir"])
    inputs: dict[str, str] = order["inputs"]
    try:
        spec = wire.parse_spec(order["spec"])
        text = Path(inputs[wire.ROLE_STRATEGY]).read_text(encoding="utf-8")
        loaded = load_strategy_text(text, source=spec.strategy_source)
        strategy = with_overrides(loaded.strategy, seed=spec.seed, epochs=spec.epochs)

        def read(symbol: str, timeframe: str) -> tuple[Any, str]:
            role = wire.bars_role(symbol, timeframe)
            if role not in inputs:
                raise wire.JobSpecError("inputs", f"missing {role}")
            return wire.read_bars_blob(Path(inputs[role]), symbol, timeframe, role=role), f"input {role}"

        data = select_bars(strategy, spec.start_ns, spec.end_ns, read)
    except (StrategyError, ValueError, UnicodeDecodeError) as exc:
        conn.send(("failed", {"reason": "BAD_INPUT", "message": str(exc)}))
        return
    checkpoint = job_dir / wire.CHECKPOINT
    options = TrainOptions(
        device=order["device"],
        threads=threads,
        mixed_precision=spec.options.mixed_precision,
        progress_interval_s=spec.options.progress_interval_s,
        checkpoint_path=checkpoint,
        checkpoint_every=spec.options.checkpoint_every,
    )

    def progress(p: Progress) -> None:
        conn.send(("progress", dataclasses.asdict(p)))

    conn.send(("stage", "train"))
    resume = inputs.get(wire.ROLE_CHECKPOINT)
    try:
        trained = train_on_bars(
            loaded,
            data,
            spec.start_ns,
            spec.end_ns,
            job_dir / MODEL_DIR,
            seed=spec.seed,
            epochs=spec.epochs,
            options=options,
            progress=progress,
            cancel=stop,
            resume=None if resume is None else Path(resume),
            load_s=time.perf_counter() - t0,
        )
    except Cancelled as exc:
        conn.send(("stopped", {"why": stop.why, "checkpoint": exc.checkpoint is not None}))
        return
    except TrainingError as exc:
        conn.send(("failed", {"reason": "TRAINING_FAILED", "message": str(exc)}))
        return
    except ValueError as exc:  # a dataset that cannot be built from these bars
        conn.send(("failed", {"reason": "BAD_INPUT", "message": str(exc)}))
        return
    summary = {k: v for k, v in trained.summary.items() if k != "model_dir"}
    conn.send(("done", summary))


def run_backtest_job(order: dict[str, Any], conn: Connection, stop: _Stop) -> None:
    """Run one backtest job (:mod:`ktrdr.jobs.backtest`) with
    :func:`ktrdr.research.backtest.job.run_backtest`; the model files are linked into
    ``job_dir/model-in`` under their own names (a walk-forward's window k's into ``model-in/<k>/``); without a ``strategy`` input the model's own
    strategy decides. Inference runs on the CPU (a forward pass of a
    small network over the period's bars)."""
    from ktrdr.jobs import backtest as wire
    from ktrdr.jobs.train import ROLE_STRATEGY, read_bars_blob
    from ktrdr.research.backtest.job import (
        Cancelled,
        model_strategy,
        run_backtest,
        select_symbol_bars,
        steps_of,
    )
    from ktrdr.research.features import FeatureSpecMismatch
    from ktrdr.strategy import StrategyError, load_strategy_text

    conn.send(("stage", "load"))
    job_dir = Path(order["job_dir"])
    inputs: dict[str, str] = order["inputs"]
    try:
        spec = wire.parse_spec(order["spec"])
        model_dir = job_dir / "model-in"  # a walk-forward's: model-in/<k>/ per window
        for role in (r for model in wire.model_roles(len(spec.windows)) for r in model):
            link = model_dir / role.removeprefix(wire.MODEL_PREFIX)
            link.parent.mkdir(parents=True, exist_ok=True)
            if not link.exists():
                link.symlink_to(inputs[role])
        if ROLE_STRATEGY in inputs:
            text = Path(inputs[ROLE_STRATEGY]).read_text(encoding="utf-8")
            loaded = load_strategy_text(text, source=spec.strategy_source)
            strategy, warnings = loaded.strategy, [str(w) for w in loaded.warnings]
        else:
            first = model_dir / "0" if spec.windows else model_dir
            strategy, warnings = model_strategy(first), []

        def read(symbol: str, timeframe: str) -> tuple[Any, str]:
            role = wire.bars_role(symbol, timeframe)
            if role not in inputs:
                raise wire.JobSpecError("inputs", f"missing {role}")
            return read_bars_blob(Path(inputs[role]), symbol, timeframe, role=role), f"input {role}"

        bars = select_symbol_bars(strategy, spec.symbol, spec.start_ns, spec.end_ns, read)
    except (StrategyError, ValueError, UnicodeDecodeError) as exc:
        conn.send(("failed", {"reason": "BAD_INPUT", "message": str(exc)}))
        return

    def step(current: int, name: str) -> None:
        conn.send(("stage", name))
        conn.send(("step", {"current": current, "total": len(steps_of(spec)), "name": name}))

    try:
        result = run_backtest(
            strategy, model_dir, bars, spec, job_dir / BACKTEST_DIR, warnings=warnings, step=step, cancel=stop
        )
    except Cancelled:
        conn.send(("stopped", {"why": stop.why, "checkpoint": False}))
        return
    except FeatureSpecMismatch as exc:
        conn.send(("failed", {"reason": "FEATURE_SPEC_MISMATCH", "message": str(exc)}))
        return
    except ValueError as exc:
        conn.send(("failed", {"reason": "BAD_INPUT", "message": str(exc)}))
        return
    conn.send(("done", result))


def worker_main(conn: Connection, device: str, threads: int, stderr_path: str) -> None:
    """The worker process's entry point (module docstring). ``device``: ``auto``, ``cpu`` or
    ``cuda``; ``threads``: torch CPU threads for the job."""
    _redirect_stderr(stderr_path)
    stop = _Stop()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, lambda _signum, _frame: stop.set("shutdown"))
    import torch

    import ktrdr.research.backtest.job  # the backtest stack too (matplotlib stays lazy)
    import ktrdr.research.train  # noqa: F401  (the whole training stack, imported while idle)
    from ktrdr.research.allocator import keep_freed_memory

    keep_freed_memory()
    torch.set_num_threads(threads)
    info = _device_info(device)
    info["pid"] = os.getpid()
    info["grpc_modules"] = sorted(m for m in sys.modules if m == "grpc" or m.startswith("grpc."))
    conn.send(("ready", info))
    try:
        kind, order = conn.recv()
    except (EOFError, OSError):
        return
    if kind != "job":
        return
    threading.Thread(target=_listen, args=(conn, stop), daemon=True).start()
    run_job(order, conn, stop, threads)
    conn.close()
