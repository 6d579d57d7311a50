"""``ktrdrctl train STRATEGY.yaml…``: train through the daemon and follow it.

One file and no comma-separated ``--set`` value: a ``train`` operation (StartTraining). Several
files, or a ``--set path=v1,v2,…`` sweep: a ``train.batch`` (StartTrainingBatch) with one run per
file × sweep point. The stream shows the stage, epoch x/y, loss, validation accuracy, samples/s,
ETA and, while it waits for a host, its queue position or the reason. Ctrl-C cancels the operation
(the host checkpoints first) and prints how to resume it. The summary prints the model version,
the test metrics beside the majority and persistence baselines, the skill verdict, and says so when
early stopping is off.
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

import click

from ktrdr import wire
from ktrdrctl import args, exits
from ktrdrctl.args import TIME_FORMATS, utc_text
from ktrdrctl.cli import OPERATIONS
from ktrdrctl.groups import Command
from ktrdrctl.strategies import read_files, source

TRAINING = "ktrdr.daemon.v1.TrainingService/"


def metric_text(progress: dict[str, Any]) -> str:
    """``loss 0.6931  val acc 0.5123  1,234 samples/s`` from a training progress's metrics."""
    metrics = progress.get("metrics") or {}
    parts = []
    if "loss" in metrics:
        parts.append(f"loss {float(metrics['loss']):.4f}")
    if "val_accuracy" in metrics:
        parts.append(f"val acc {float(metrics['val_accuracy']):.4f}")
    if "samples_per_s" in metrics:
        parts.append(f"{float(metrics['samples_per_s']):,.0f} samples/s")
    return "  ".join(parts)


def summary_lines(op: dict[str, Any]) -> list[str]:
    result = op.get("result") or {}
    metrics, report = result.get("metrics") or {}, result.get("report") or {}
    lines = [
        f"model: {result.get('modelVersion', '-')}"
        + ("  (reused: an identical run made it)" if report.get("reused") else "")
    ]
    for split in ("validation", "test"):
        if f"{split}.accuracy" in metrics:
            lines.append(
                f"{split:>10}: accuracy {metrics[f'{split}.accuracy']:.4f}  majority baseline "
                f"{metrics.get(f'{split}.baseline_accuracy', float('nan')):.4f}  persistence baseline "
                f"{metrics.get(f'{split}.persistence_accuracy', float('nan')):.4f}"
            )
    if report.get("verdict"):
        lines.append(f"verdict ({report.get('verdict_split', '')} split): {report['verdict']}")
    if report.get("early_stopping") is False:
        lines.append(
            f"early stopping is off: all {int(report.get('epochs', 0))} epochs ran; the weights are the last epoch's"
        )
    return lines


def batch_lines(op: dict[str, Any]) -> list[str]:
    result = op.get("result") or {}
    lines = [
        f"runs: {result.get('succeeded', 0)} succeeded, {result.get('failed', 0)} failed, {result.get('cancelled', 0)} cancelled"
    ]
    ranking = (result.get("report") or {}).get("ranking") or []
    if ranking:
        lines.append(f"{'rank':>4}  {'val acc':>8}  {'model':<40}  strategy / overrides")
        for i, row in enumerate(ranking, 1):
            lines.append(
                f"{i:>4}  {float(row.get('validation_accuracy', float('nan'))):>8.4f}  "
                f"{row.get('model_version', ''):<40}  {row.get('strategy', '')} {row.get('overrides', '')}"
            )
    return lines


def status_line(op: dict[str, Any]) -> str:
    from ktrdrctl import render

    progress = op.get("progress") or {}
    parts = [
        render.state_name(op),
        op.get("stage", "") or "-",
        render.progress_details(progress),
        metric_text(progress),
    ]
    return "  ".join(p for p in parts if p)


@click.command(cls=Command)
@click.argument("files", nargs=-1, required=True, metavar="STRATEGY.yaml...")
@click.option(
    "--start-date",
    type=click.DateTime(TIME_FORMATS),
    metavar="TIME",
    help="First bar of the period (UTC). Default: 365 days before --end-date.",
)
@click.option(
    "--end-date",
    type=click.DateTime(TIME_FORMATS),
    metavar="TIME",
    help="End of the period, exclusive (UTC). Default: today 00:00 UTC.",
)
@click.option(
    "--symbol", "symbols", multiple=True, help="Train on this symbol instead of the strategy's; repeatable."
)
@click.option(
    "--set",
    "overrides",
    multiple=True,
    type=args.OVERRIDE,
    help="PATH=VALUE override (docs/strategies.md); PATH=V1,V2,... sweeps: one run per value.",
)
@click.option("--seed", type=int, help="Random seed (default: the strategy's).")
@click.option("--force", is_flag=True, help="Train even when an identical run already made a model.")
@click.option(
    "--max-parallel",
    type=click.IntRange(min=0),
    default=0,
    help="Batch: runs at once (0: as the hosts allow).",
)
@click.option("--request-id", default="", help="Idempotency key: the same key returns the same operation.")
@click.option("--detach", is_flag=True, help="Start, print the operation's name and return.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the start response, then each WatchOperation message, as proto3 JSON.",
)
@click.pass_context
def train(
    ctx: click.Context,
    files: tuple[str, ...],
    start_date: datetime | None,
    end_date: datetime | None,
    symbols: tuple[str, ...],
    overrides: tuple[dict[str, str], ...],
    seed: int | None,
    force: bool,
    max_parallel: int,
    request_id: str,
    detach: bool,
    as_json: bool,
) -> None:
    """Train a model from STRATEGY.yaml through the daemon and follow it (see docs/training.md).

    Exit 0 when it succeeded; 1 when it failed, was cancelled or interrupted.
    """
    from ktrdrctl.cli import print_json, session_of

    documents = read_files(files)
    try:
        split = [(o, wire.split_sweep_values(o["value"])) for o in overrides]
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--set") from None
    fixed = [o for o, values in split if len(values) == 1]
    sweeps = [{"path": o["path"], "values": values} for o, values in split if len(values) > 1]
    settings: dict[str, Any] = {"symbols": list(symbols), "overrides": fixed, "force": force}
    for key, value in (("startTime", utc_text(start_date)), ("endTime", utc_text(end_date))):
        if value:
            settings[key] = value
    if seed is not None:
        settings["seed"] = str(seed)
    session = session_of(ctx)
    is_batch = len(documents) > 1 or bool(sweeps)
    if is_batch:
        request = {
            "strategies": [source(name, text) for name, text in documents],
            "settings": settings,
            "sweeps": sweeps,
            "maxParallel": max_parallel,
            "requestId": request_id,
        }
        response = session.call(TRAINING + "StartTrainingBatch", request)
    else:
        [(name, text)] = documents
        request = {"strategy": source(name, text), "settings": settings, "requestId": request_id}
        response = session.call(TRAINING + "StartTraining", request)
    op = response["operation"]
    name = op["name"]
    short = name.removeprefix(wire.NAME_PREFIX)
    if as_json:
        print_json(response)
    else:
        click.echo(f"started {name}")
    if detach:
        if not as_json:
            click.echo(f"  follow it: {session.command('ops', 'watch', short)}", err=True)
        return
    final = follow(session, name, as_json, int(op.get("lastSeq", 0) or 0))
    if not as_json:
        lines = batch_lines(final) if is_batch else summary_lines(final)
        if render_state(final) == "SUCCEEDED":
            for line in lines:
                click.echo(line)
    from ktrdrctl.cli import operation_outcome

    if render_state(final) in ("CANCELLED", "INTERRUPTED") and not is_batch:
        click.echo(
            f"resume it from its last checkpoint with: {session.command('ops', 'resume', short)}", err=True
        )
    operation_outcome(final)


def render_state(op: dict[str, Any]) -> str:
    from ktrdrctl import render

    return render.state_name(op)


def follow(session: Any, name: str, as_json: bool, after_seq: int = 0) -> dict[str, Any]:
    """Watch (events after ``after_seq``) until done (Ctrl-C: cancel, then keep watching to the
    end); the final operation."""
    from ktrdrctl import watch
    from ktrdrctl.cli import print_json

    tracker = watch.Tracker(name, after_seq)
    tty = sys.stdout.isatty() and not as_json
    last = ""
    cancelled = False
    while True:
        try:
            for item in session.stream(
                OPERATIONS + "WatchOperation", {"name": name, "afterSeq": str(tracker.last_seq)}
            ):
                event = tracker.apply(item)
                if as_json:
                    print_json(item)
                    continue
                if event is not None and event.get("message"):
                    click.echo(("\r\x1b[K" if tty else "") + event["message"])
                line = status_line(tracker.op)
                if tty:
                    sys.stdout.write("\r\x1b[K" + line[:200])
                    sys.stdout.flush()
                elif line != last:
                    click.echo(line)
                last = line
            break
        except KeyboardInterrupt:
            if cancelled:
                raise exits.CliFailure(f"stopped following {name}", exits.CTRL_C) from None
            cancelled = True
            session.close()  # the interrupted stream's frames stay on that connection
            click.echo(f"\ncancelling {name} (the host checkpoints first)…", err=True)
            session.call(OPERATIONS + "CancelOperation", {"name": name})
    if tty:
        sys.stdout.write("\n")
    return session.call(OPERATIONS + "GetOperation", {"name": name})["operation"]
