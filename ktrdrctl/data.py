"""``ktrdrctl data import|show|coverage|delete|export|load|gaps``: the daemon's bar cache (``DataService``).

``import`` reads only a regular file and streams its bytes (``ImportBars``, a client stream over
ctl); the daemon parses and validates them, so bad rows come back as its INVALID_ARGUMENT naming
the file's line (exit 1) and nothing is imported. ``show`` prints bars as a table, as CSV (which
``import`` reads back) or, with ``--format json``, one ``GetBarsResponse`` per line (the ``--json``
convention). ``export`` writes what the daemon renders (``ExportBars``: CSV, Parquet or JSON Lines)
to a file through a temporary one renamed at the end, or to stdout. ``import --repair``/``--fix``
name the fixes the daemon applies, and print each with its rows. ``load`` starts a ``data.load``
operation and follows it like ``ops watch``, except that Ctrl-C cancels it (and says how many bars
were kept); ``gaps`` lists what a load would fetch. Imports only click, ktrdrctl and ktrdr.wire at
module level; the client loads when a command runs.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import click

from ktrdr import wire
from ktrdrctl import exits
from ktrdrctl.args import TIME_FORMATS, utc_text
from ktrdrctl.cli import OPERATIONS
from ktrdrctl.files import FileProblem, read_chunks
from ktrdrctl.groups import Group

DATA = "ktrdr.daemon.v1.DataService/"
#: File bytes per ctl frame: base64 makes 4/3 of it, well under the 4 MiB frame cap.
CHUNK_BYTES = 1024 * 1024
COLUMNS = ("open", "high", "low", "close", "volume")


@click.group(cls=Group)
def data() -> None:
    """The daemon's bar cache: import and export files, load from IB, show bars, coverage and gaps, delete."""


def series(symbol: str, timeframe: str) -> dict[str, str]:
    return {"symbol": symbol, "timeframe": timeframe}


def iso_ns(ns: int) -> str:
    """UTC ns since the epoch as ``2024-01-05T13:00:00Z``."""
    seconds, nanos = divmod(ns, 10**9)
    text = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{text}.{nanos:09d}Z" if nanos else f"{text}Z"


def coverage_line(coverage: dict[str, Any]) -> str:
    """``AAPL 1d IMPORT: 252 bars 2024-01-02T00:00:00Z .. 2024-12-31T00:00:00Z``."""
    key = coverage.get("series", {})
    source = str(coverage.get("source", "DATA_SOURCE_UNSPECIFIED")).removeprefix("DATA_SOURCE_")
    return (
        f"{key.get('symbol', '')} {key.get('timeframe', '')} {source}: {int(coverage.get('barCount', 0))} bars "
        f"{coverage.get('firstBarTime', '')} .. {coverage.get('lastBarTime', '')}"
    )


def coverage_rows(entries: list[dict[str, Any]]) -> list[list[str]]:
    return [
        [
            e["series"]["symbol"],
            e["series"]["timeframe"],
            str(e.get("source", "")).removeprefix("DATA_SOURCE_"),
            str(int(e.get("barCount", 0))),
            e.get("firstBarTime", ""),
            e.get("lastBarTime", ""),
            str(len(e.get("covered", []))),
            str(len(e.get("knownEmpty", []))),
            e.get("digest", "")[:12],
        ]
        for e in entries
    ]


def bar_rows(chunk: dict[str, Any]) -> Iterator[list[str]]:
    """One row per bar of a ``BarsChunk`` (proto3 JSON): ISO time, then the five columns."""
    times = chunk.get("timeNs", [])
    values = [chunk.get(name, [0.0] * len(times)) for name in COLUMNS]
    for i, t in enumerate(times):
        yield [iso_ns(int(t)), *(repr(float(column[i])) for column in values)]


def repair_line(fixed: dict[str, Any]) -> str:
    """``repaired sort: 3 rows (line 5, line 9, line 12)`` from an ``ImportRepair``."""
    rows = int(fixed.get("rows", 0))
    examples = ", ".join(fixed.get("examples", []))
    more = ", …" if rows > len(fixed.get("examples", [])) else ""
    return f"repaired {fixed.get('name', '')}: {rows} row{'s' if rows != 1 else ''} ({examples}{more})"


@data.command("import")
@click.argument("file", metavar="FILE")
@click.option("--symbol", required=True, help="The series' symbol (AAPL, EURUSD, BTCUSD).")
@click.option("--timeframe", required=True, type=click.Choice(wire.TIMEFRAMES), help="The bars' timeframe.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "parquet"]),
    help="The file's format. Default: parquet for *.parquet, else csv.",
)
@click.option(
    "--mode",
    type=click.Choice(["merge", "replace", "create"]),
    default="merge",
    show_default=True,
    help="merge: the file's bars replace stored bars from its first to its last bar, the rest is kept; "
    "replace: the series becomes the file; create: refuse if the series exists.",
)
@click.option(
    "--calendar",
    type=click.Choice(["XNYS", "forex", "crypto"], case_sensitive=False),
    help="Trading calendar for known-empty intervals. Default: guessed from the symbol (docs/data.md).",
)
@click.option(
    "--timezone",
    metavar="ZONE",
    help="IANA time zone (America/New_York) of the file's times written without an offset. Default: UTC.",
)
@click.option(
    "--repair",
    is_flag=True,
    help=f"Apply the standard fixes ({', '.join(wire.STANDARD_FIXES)}) and report them (docs/data.md).",
)
@click.option(
    "--fix",
    "fixes",
    multiple=True,
    type=click.Choice(wire.IMPORT_FIXES),
    help="Apply this named fix (repeatable), dedupe-keep-last included (docs/data.md).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's response as canonical proto3 JSON.")
@click.pass_context
def import_(
    ctx: click.Context,
    file: str,
    symbol: str,
    timeframe: str,
    fmt: str | None,
    mode: str,
    calendar: str | None,
    timezone: str | None,
    repair: bool,
    fixes: tuple[str, ...],
    as_json: bool,
) -> None:
    """Import bars from a CSV or Parquet FILE into the cache (one atomic write; bad rows change nothing
    unless --repair or --fix name the fixes to apply)."""
    import base64  # only import and export carry file bytes

    from ktrdrctl.cli import print_json, session_of
    from ktrdrctl.ctl import CtlError, DaemonUnreachable, RequestTooLarge

    try:
        pieces = read_chunks(file, CHUNK_BYTES)
    except FileProblem as e:
        raise exits.CliFailure(str(e), exits.USAGE) from None
    header: dict[str, Any] = {
        "series": series(symbol, timeframe),
        "mode": f"IMPORT_MODE_{mode.upper()}",
        "sourceName": file,
    }
    if fmt:
        header["format"] = f"IMPORT_FORMAT_{fmt.upper()}"
    if calendar:
        header["calendar"] = calendar
    if timezone:
        header["timezone"] = timezone
    if repair or fixes:
        header["repairs"] = (["standard"] if repair else []) + list(fixes)
    session = session_of(ctx)
    rest = ({"data": base64.b64encode(piece).decode("ascii")} for piece in pieces)
    try:
        response = session.client.client_stream(DATA + "ImportBars", {"header": header}, rest)
    except FileProblem as e:
        raise exits.CliFailure(str(e), exits.FAILED) from None
    except (CtlError, DaemonUnreachable) as e:
        raise session.failure(e) from None
    except RequestTooLarge as e:
        raise exits.CliFailure(str(e), exits.USAGE) from None
    if as_json:
        print_json(response)
        return
    coverage = response.get("coverage", {})
    click.echo(f"imported {int(response.get('barsImported', 0))} bars from {file}")
    for fixed in response.get("repairs", []):
        click.echo(repair_line(fixed))
    click.echo(f"{coverage_line(coverage)}  digest {coverage.get('digest', '')}")
    naive = int(response.get("naiveTimesAsUtc", 0))
    if naive:
        click.echo(
            f"note: {naive:,} times had no UTC offset and were read as UTC; if they are local times, "
            f"import again with --timezone ZONE --mode replace",
            err=True,
        )


@data.command()
@click.argument("symbol")
@click.argument("timeframe", type=click.Choice(wire.TIMEFRAMES))
@click.option("--start", type=click.DateTime(TIME_FORMATS), metavar="TIME", help="First bar open time (UTC).")
@click.option("--end", type=click.DateTime(TIME_FORMATS), metavar="TIME", help="End, exclusive (UTC).")
@click.option("--tail", type=click.IntRange(min=1), metavar="N", help="Only the last N bars of the range.")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["table", "csv", "json"]),
    default="table",
    show_default=True,
    help="json: one GetBarsResponse per line (proto3 JSON).",
)
@click.pass_context
def show(
    ctx: click.Context,
    symbol: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    tail: int | None,
    fmt: str,
) -> None:
    """Show the cached bars of SYMBOL TIMEFRAME, oldest first."""
    from ktrdrctl import render
    from ktrdrctl.cli import print_json, session_of

    request: dict[str, Any] = {"series": series(symbol, timeframe)}
    for key, value in (("startTime", utc_text(start)), ("endTime", utc_text(end))):
        if value:
            request[key] = value
    if tail:
        request["tail"] = tail
    responses = session_of(ctx).stream(DATA + "GetBars", request)
    headers = ["time", *COLUMNS]
    if fmt == "json":
        for response in responses:
            print_json(response)
    elif fmt == "csv":
        click.echo(",".join(headers))
        for response in responses:
            click.echo("\n".join(",".join(row) for row in bar_rows(response.get("chunk", {}))))
    else:
        rows = [row for response in responses for row in bar_rows(response.get("chunk", {}))]
        click.echo(render.table(headers, rows) if rows else f"no bars of {symbol} {timeframe} in that range")


@data.command()
@click.argument("symbol", required=False, default="")
@click.option("--json", "as_json", is_flag=True, help="Print each ListSeries response as proto3 JSON.")
@click.pass_context
def coverage(ctx: click.Context, symbol: str, as_json: bool) -> None:
    """List the cached series (of SYMBOL only, if given): source, bars, range, intervals, digest."""
    from ktrdrctl import render
    from ktrdrctl.cli import print_json, session_of

    session = session_of(ctx)
    entries: list[dict[str, Any]] = []
    token = ""
    while True:
        response = session.call(DATA + "ListSeries", {"symbol": symbol, "pageSize": 1000, "pageToken": token})
        if as_json:
            print_json(response)
        entries += response.get("series", [])
        token = response.get("nextPageToken", "")
        if not token:
            break
    if not entries and symbol:
        raise exits.CliFailure(f"no series of {symbol} in the cache", exits.NOT_FOUND)
    if as_json:
        return
    if not entries:
        click.echo("the cache holds no series")
        return
    headers = ["SYMBOL", "TF", "SOURCE", "BARS", "FIRST", "LAST", "COVERED", "KNOWN-EMPTY", "DIGEST"]
    click.echo(render.table(headers, coverage_rows(entries)))


@data.command()
@click.argument("symbol")
@click.argument("timeframe", type=click.Choice(wire.TIMEFRAMES))
@click.pass_context
def delete(ctx: click.Context, symbol: str, timeframe: str) -> None:
    """Delete the series SYMBOL TIMEFRAME from the cache (its file and catalog entry)."""
    from ktrdrctl.cli import session_of

    response = session_of(ctx).call(DATA + "DeleteSeries", {"series": series(symbol, timeframe)})
    click.echo(f"deleted {coverage_line(response.get('coverage', {}))}")


#: ``--format`` of ``export`` → the wire's ExportFormat; a file name's suffix picks it by default.
EXPORT_FORMATS = {
    "csv": "EXPORT_FORMAT_CSV",
    "parquet": "EXPORT_FORMAT_PARQUET",
    "json": "EXPORT_FORMAT_JSONL",
}
_SUFFIX_FORMATS = {".parquet": "parquet", ".json": "json", ".jsonl": "json"}


@data.command()
@click.argument("symbol")
@click.argument("timeframe", type=click.Choice(wire.TIMEFRAMES))
@click.option("--start", type=click.DateTime(TIME_FORMATS), metavar="TIME", help="First bar open time (UTC).")
@click.option("--end", type=click.DateTime(TIME_FORMATS), metavar="TIME", help="End, exclusive (UTC).")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(sorted(EXPORT_FORMATS)),
    help="csv: the predecessor's layout, which import reads back exactly; parquet: the cache's columns; "
    "json: one object per bar and line. Default: from the output's suffix, else csv.",
)
@click.option(
    "-o", "--output", default="-", show_default=True, metavar="FILE", help="Where to write; - is stdout."
)
@click.pass_context
def export(
    ctx: click.Context,
    symbol: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    fmt: str | None,
    output: str,
) -> None:
    """Write the cached bars of SYMBOL TIMEFRAME to FILE or stdout (the daemon renders them; a file
    appears whole or not at all)."""
    import base64  # only import and export carry file bytes
    import os
    import sys

    from ktrdrctl.cli import session_of
    from ktrdrctl.files import FileProblem, write_replacing

    fmt = fmt or _SUFFIX_FORMATS.get(os.path.splitext(output)[1].lower(), "csv")
    if output == "-" and fmt == "parquet" and sys.stdout.isatty():
        raise exits.CliFailure("refusing to write Parquet to a terminal; pass -o FILE", exits.USAGE)
    request: dict[str, Any] = {"series": series(symbol, timeframe), "format": EXPORT_FORMATS[fmt]}
    for key, value in (("startTime", utc_text(start)), ("endTime", utc_text(end))):
        if value:
            request[key] = value
    pieces = (
        base64.b64decode(r.get("data", "")) for r in session_of(ctx).stream(DATA + "ExportBars", request)
    )
    if output == "-":
        for piece in pieces:
            sys.stdout.buffer.write(piece)
        sys.stdout.buffer.flush()
        return
    try:
        size = write_replacing(output, pieces)
    except FileProblem as e:
        raise exits.CliFailure(str(e), exits.FAILED) from None
    click.echo(f"wrote {size:,} bytes of {symbol.upper()} {timeframe} ({fmt}) to {output}", err=True)


LOAD_MODES = {"full": "LOAD_MODE_MISSING", "tail": "LOAD_MODE_TAIL", "backfill": "LOAD_MODE_BACKFILL",
              "refresh": "LOAD_MODE_REFRESH"}  # fmt: skip


def time_range(start: datetime | None, end: datetime | None) -> dict[str, str]:
    """``startTime``/``endTime`` for the ones given (naive times are UTC)."""
    return {key: text for key, text in (("startTime", utc_text(start)), ("endTime", utc_text(end))) if text}


def kept_text(op: dict[str, Any]) -> str:
    """``12,345 bars kept (merged into the cache)`` from a load's progress metrics."""
    metrics = (op.get("progress") or {}).get("metrics") or {}
    return f"{int(float(metrics.get('bars_merged', 0))):,} bars kept (merged into the cache)"


def load_summary(result: dict[str, Any]) -> list[str]:
    """One line per loaded series, then the totals, from a ``LoadDataResult`` (proto3 JSON)."""
    lines = [coverage_line(coverage) for coverage in result.get("series", [])]
    lines.append(
        f"{int(result.get('barsFetched', 0)):,} bars fetched in {int(result.get('requestsDone', 0))} requests"
    )
    return lines


@data.command()
@click.argument("symbols", nargs=-1, required=True)
@click.option(
    "--timeframe", "timeframes", multiple=True, required=True, type=click.Choice(wire.TIMEFRAMES),
    help="A timeframe to load; repeat for several (every symbol × timeframe is one series).",
)  # fmt: skip
@click.option("--start", required=True, type=click.DateTime(TIME_FORMATS), metavar="TIME",
              help="First bar open time wanted (UTC).")  # fmt: skip
@click.option("--end", type=click.DateTime(TIME_FORMATS), metavar="TIME",
              help="End, exclusive (UTC). Default: now.")  # fmt: skip
@click.option(
    "--mode", type=click.Choice(list(LOAD_MODES)), default="full", show_default=True,
    help="full: every hole in the range; tail: after the last stored bar; backfill: before the first; "
    "refresh: the whole range again.",
)  # fmt: skip
@click.option("--request-id", default="", help="Idempotency key: the same key returns the same load.")
@click.option("--detach", is_flag=True, help="Start the load, print its name and return at once.")
@click.option("--json", "as_json", is_flag=True,
              help="Print the LoadData response, then each WatchOperation message, as proto3 JSON.")  # fmt: skip
@click.pass_context
def load(
    ctx: click.Context,
    symbols: tuple[str, ...],
    timeframes: tuple[str, ...],
    start: datetime,
    end: datetime | None,
    mode: str,
    request_id: str,
    detach: bool,
    as_json: bool,
) -> None:
    """Load bars of SYMBOL… from the IB host into the cache (only what is missing), following progress.

    One operation (data.load) with a child per symbol × timeframe. Ctrl-C cancels it and keeps the
    bars merged so far; run the same command again to fetch the rest.
    """
    from ktrdrctl import watch
    from ktrdrctl.cli import operation_outcome, print_json, session_of

    session = session_of(ctx)
    request: dict[str, Any] = {
        "symbols": list(symbols),
        "timeframes": list(timeframes),
        "mode": LOAD_MODES[mode],
        **time_range(start, end),
        **({"requestId": request_id} if request_id else {}),
    }
    response = session.call(DATA + "LoadData", request)
    name = response["operation"]["name"]
    if as_json:
        print_json(response)
    if detach:
        if not as_json:
            click.echo(name)
            click.echo(
                f"  follow it: {session.command('ops', 'watch', name.removeprefix(wire.NAME_PREFIX))}",
                err=True,
            )
        return
    tracker = watch.Tracker(name)
    view = watch.TtyView(sys.stdout) if sys.stdout.isatty() else watch.LineView(sys.stdout)
    try:
        for item in session.stream(OPERATIONS + "WatchOperation", {"name": name}):
            event = tracker.apply(item)
            if as_json:
                print_json(item)
            else:
                view.show(tracker, event)
    except KeyboardInterrupt:
        view.close()
        raise cancel_load(session, name) from None
    view.close()
    if not tracker.done:
        follow = session.command("ops", "watch", name.removeprefix(wire.NAME_PREFIX))
        raise exits.CliFailure(
            f"the watch of {name} ended early; follow it with: {follow}", exits.UNREACHABLE
        )
    final = session.call(OPERATIONS + "GetOperation", {"name": name})["operation"]
    if not as_json and final.get("result"):
        for line in load_summary(final["result"]):
            click.echo(line)
    operation_outcome(final)


def cancel_load(session: Any, name: str) -> exits.CliFailure:
    """Cancel the load ``name`` (Ctrl-C), wait for it to end; the failure that says what was kept."""
    session.reconnect()  # the interrupted stream left frames on the old connection
    click.echo(f"cancelling {name} …", err=True)
    try:
        session.call(OPERATIONS + "CancelOperation", {"name": name})
        op = session.call(OPERATIONS + "WaitOperation", {"name": name, "timeout": "60s"})["operation"]
    except KeyboardInterrupt:
        show = session.command("ops", "show", name.removeprefix(wire.NAME_PREFIX))
        return exits.CliFailure(f"{name} is being cancelled; see: {show}", exits.CTRL_C)
    except exits.CliFailure as e:  # it ended meanwhile (OPERATION_DONE) or the daemon went away
        return exits.CliFailure(f"{name}: {e.message}", exits.CTRL_C)
    from ktrdrctl import render

    return exits.CliFailure(f"{name} {render.state_name(op)}: {kept_text(op)}", exits.CTRL_C)


@data.command()
@click.argument("symbol")
@click.argument("timeframe", type=click.Choice(wire.TIMEFRAMES))
@click.option("--start", type=click.DateTime(TIME_FORMATS), metavar="TIME",
              help="Start (UTC). Default: the series' first bar.")  # fmt: skip
@click.option(
    "--end", type=click.DateTime(TIME_FORMATS), metavar="TIME", help="End, exclusive (UTC). Default: now."
)
@click.option("--mode", type=click.Choice(list(LOAD_MODES)), default="full", show_default=True,
              help="As `data load --mode`.")  # fmt: skip
@click.option("--json", "as_json", is_flag=True, help="Print the GetGaps response as proto3 JSON.")
@click.pass_context
def gaps(
    ctx: click.Context,
    symbol: str,
    timeframe: str,
    start: datetime | None,
    end: datetime | None,
    mode: str,
    as_json: bool,
) -> None:
    """List what `data load` would fetch for SYMBOL TIMEFRAME: holes, less closed-market time, with the
    bars the trading calendar expects in each."""
    from ktrdrctl import render
    from ktrdrctl.cli import print_json, session_of

    request = {"series": series(symbol, timeframe), "mode": LOAD_MODES[mode], **time_range(start, end)}
    response = session_of(ctx).call(DATA + "GetGaps", request)
    if as_json:
        print_json(response)
        return
    found = response.get("gaps", [])
    calendar = response.get("calendar", "")
    if not found:
        click.echo(f"no gaps: {symbol} {timeframe} holds everything the {calendar} calendar expects there")
        return
    rows = [
        [gap["range"]["startTime"], gap["range"]["endTime"], f"{int(gap.get('expectedBars', 0)):,}"]
        for gap in found
    ]
    click.echo(render.table(["START", "END", "EXPECTED BARS"], rows))
    click.echo(
        f"{len(found)} gaps, {int(response.get('expectedBars', 0)):,} bars expected ({calendar} calendar)"
    )
