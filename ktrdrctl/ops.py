"""``ktrdrctl ops list|show|watch|wait|cancel|delete|resume``: the daemon's operations
(``OperationsService``). Loaded only when ``ops`` runs (or is listed by ``--help``)."""

from __future__ import annotations

import contextlib
import sys
import time
from typing import Any

import click

from ktrdr import wire
from ktrdrctl import args, exits
from ktrdrctl.cli import (
    OPERATIONS,
    json_option,
    operation_argument,
    operation_outcome,
    print_json,
    session_of,
)
from ktrdrctl.groups import Group


@click.group(cls=Group)
def ops() -> None:
    """Inspect and control operations (training, backtests, data loads)."""


@ops.command("list")
@click.option("--kind", default="", help="Only operations of this kind (train, backtest, data.load, ...).")
@click.option(
    "--state",
    "states",
    multiple=True,
    type=args.STATE,
    help="Only operations in this state (pending, running, succeeded, failed, cancelled, "
    "interrupted); repeat for any of several.",
)
@click.option(
    "--label", "labels", multiple=True, type=args.LABEL, help="Only those labelled KEY=VALUE; repeatable."
)
@click.option("--parent", type=args.OPERATION, help="Only children of this operation.")
@click.option(
    "--limit", type=click.IntRange(min=1), help="Show at most this many, following pages as needed."
)
@click.option(
    "--page-size", type=click.IntRange(1, 1000), help="Operations per request (daemon default 100)."
)
@click.option("--page-token", default="", help="Start from this token (from an earlier page).")
@click.option("--all", "all_pages", is_flag=True, help="Follow every page to the end.")
@json_option
@click.pass_context
def ops_list(
    ctx: click.Context,
    kind: str,
    states: tuple[str, ...],
    labels: tuple[str, ...],
    parent: str | None,
    limit: int | None,
    page_size: int | None,
    page_token: str,
    all_pages: bool,
    as_json: bool,
) -> None:
    """List operations, newest first.

    Without --limit or --all one page is shown; when there are more, the token for the next page
    is printed on stderr (and is nextPageToken in --json output).
    """
    if limit is not None and all_pages:
        raise click.UsageError("--limit and --all exclude each other")
    session = session_of(ctx)
    flt = {"kind": kind, "state": list(states), "label": list(labels), "parent": parent or ""}
    flt = {key: value for key, value in flt.items() if value}
    collected: list[dict[str, Any]] = []
    token, response = page_token, {}
    while True:
        size = page_size or 0
        if limit is not None:
            size = min(size or limit, limit - len(collected))
        request: dict[str, Any] = {"filter": flt} if flt else {}
        if not as_json:  # the table shows no results: leave them out (a run's report can be KiB)
            request["view"] = "OPERATION_VIEW_BASIC"
        if size:
            request["pageSize"] = size
        if token:
            request["pageToken"] = token
        response = session.call(OPERATIONS + "ListOperations", request)
        collected.extend(response.get("operations", []))
        token = response.get("nextPageToken", "")
        wants_more = all_pages or (limit is not None and len(collected) < limit)
        if not token or not wants_more:
            break
    if as_json:
        if limit is None and not all_pages:
            print_json(response)  # one page: exactly what the daemon sent
        else:
            print_json({"operations": collected, **({"nextPageToken": token} if token else {})})
        return
    from ktrdrctl import render

    if collected:
        click.echo(render.operations_table(collected, time.time()))
    else:
        click.echo("no operations", err=True)
    if token:
        click.echo(f"more: {session.command('ops', 'list', '--page-token', token)} (or --all)", err=True)


@ops.command("show")
@operation_argument
@json_option
@click.pass_context
def ops_show(ctx: click.Context, operation: str, as_json: bool) -> None:
    """Show one operation: state, progress, times, error or result."""
    session = session_of(ctx)
    response = session.call(OPERATIONS + "GetOperation", {"name": operation})
    if as_json:
        print_json(response)
        return
    from ktrdrctl import render

    click.echo(render.operation_detail(response.get("operation", {}), time.time()))


@ops.command("wait")
@operation_argument
@click.option(
    "--timeout", type=args.DURATION, help="Give up after this long (30, 90s, 5m, 2h); default: until done."
)
@json_option
@click.pass_context
def ops_wait(ctx: click.Context, operation: str, timeout: float | None, as_json: bool) -> None:
    """Wait until an operation is done; exit 1 if it ended FAILED, CANCELLED or INTERRUPTED.

    If --timeout passes first, exits 124 and the operation keeps running.
    """
    session = session_of(ctx)
    method = OPERATIONS + "WaitOperation"
    deadline = None if timeout is None else time.monotonic() + timeout
    # The daemon is asked for bounded waits, so a vanished daemon is noticed within one slice.
    slice_s = 60.0
    while True:
        left = slice_s if deadline is None else max(min(deadline - time.monotonic(), slice_s), 0.0)
        request = {"name": operation, "timeout": f"{left:.3f}s"}
        response = session.call(method, request, timeout=left + session.call_timeout)
        op = response.get("operation", {})
        if op.get("done") or (deadline is not None and time.monotonic() >= deadline):
            break
    from ktrdrctl import render

    if as_json:
        print_json(response)
    else:
        click.echo(render.operation_detail(op, time.time()))
    if not op.get("done"):
        raise exits.CliFailure(
            f"{operation} is still {render.state_name(op)} after {render.human_duration(timeout or 0)}; "
            "it keeps running",
            exits.WAIT_TIMEOUT,
        )
    operation_outcome(op)


@ops.command("watch")
@operation_argument
@click.option(
    "--after-seq",
    type=click.IntRange(min=0),
    default=0,
    help="Resume: only events after this sequence number (the snapshot always comes first).",
)
@json_option
@click.pass_context
def ops_watch(ctx: click.Context, operation: str, after_seq: int, as_json: bool) -> None:
    """Follow an operation live until it is done; exit 1 if it ends FAILED, CANCELLED or INTERRUPTED.

    On a terminal one progress line is redrawn in place; otherwise one line per event. Ctrl-C
    detaches (the operation keeps running) and prints the command that re-attaches.
    """
    from ktrdrctl import watch

    session = session_of(ctx)
    tracker = watch.Tracker(operation, after_seq)
    view = watch.TtyView(sys.stdout) if sys.stdout.isatty() else watch.LineView(sys.stdout)
    reattach = session.command("ops", "watch", operation.removeprefix(wire.NAME_PREFIX), "--after-seq")
    request = {"name": operation, "afterSeq": str(after_seq)}
    try:
        for item in session.stream(OPERATIONS + "WatchOperation", request):
            event = tracker.apply(item)
            if as_json:
                print_json(item)  # click.echo flushes: each line leaves at once
            else:
                view.show(tracker, event)
    except KeyboardInterrupt:
        view.close()
        raise exits.CliFailure(
            f"detached from {operation} (it keeps running); re-attach with: {reattach} {tracker.last_seq}",
            exits.CTRL_C,
        ) from None
    except exits.CliFailure as e:
        view.close()
        if e.exit_code == exits.UNREACHABLE:
            hint = f"\n  re-attach later with: {reattach} {tracker.last_seq}"
            raise exits.CliFailure(e.message + hint, e.exit_code) from None
        raise
    view.close()
    if not tracker.done:
        raise exits.CliFailure(
            f"the watch of {operation} ended early; re-attach with: {reattach} {tracker.last_seq}",
            exits.UNREACHABLE,
        )
    final = tracker.op
    if tracker.state in wire.UNSUCCESSFUL_STATES:
        # Events carry no error status; the operation itself does (unless deleted meanwhile).
        with contextlib.suppress(exits.CliFailure):
            final = session.call(OPERATIONS + "GetOperation", {"name": operation})["operation"]
    elif not as_json:
        from ktrdrctl import render

        took = render.elapsed(final, time.time())
        click.echo(f"{operation} {tracker.state}" + (f" after {render.human_duration(took)}" if took else ""))
    operation_outcome(final)


@ops.command("cancel")
@operation_argument
@json_option
@click.pass_context
def ops_cancel(ctx: click.Context, operation: str, as_json: bool) -> None:
    """Ask the daemon to cancel an operation (it ends CANCELLED; see `ops wait`)."""
    session = session_of(ctx)
    response = session.call(OPERATIONS + "CancelOperation", {"name": operation})
    if as_json:
        print_json(response)
        return
    from ktrdrctl import render

    op = response.get("operation", {})
    click.echo(f"cancel requested: {op.get('name', operation)} (now {render.state_name(op)})")


@ops.command("delete")
@operation_argument
@json_option
@click.pass_context
def ops_delete(ctx: click.Context, operation: str, as_json: bool) -> None:
    """Forget a finished operation and its events."""
    session = session_of(ctx)
    response = session.call(OPERATIONS + "DeleteOperation", {"name": operation})
    if as_json:
        print_json(response)
        return
    click.echo(f"deleted {operation}")


@ops.command("resume")
@operation_argument
@click.option(
    "--request-id",
    default="",
    help="Idempotency key: repeating the command with the same key returns the same new operation.",
)
@json_option
@click.pass_context
def ops_resume(ctx: click.Context, operation: str, request_id: str, as_json: bool) -> None:
    """Continue a CANCELLED, FAILED or INTERRUPTED operation from its last checkpoint.

    The continuation is a new operation (labelled resumed-from); its name is printed.
    """
    session = session_of(ctx)
    request = {"name": operation, **({"requestId": request_id} if request_id else {})}
    response = session.call(OPERATIONS + "ResumeOperation", request)
    if as_json:
        print_json(response)
        return
    new_name = response.get("operation", {}).get("name", "")
    click.echo(f"resumed {operation} as {new_name}")
    click.echo(
        f"  follow it: {session.command('ops', 'watch', new_name.removeprefix(wire.NAME_PREFIX))}", err=True
    )
