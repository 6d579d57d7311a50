"""``ktrdrctl strategies validate FILE…`` and ``ktrdrctl strategies show FILE``.

ktrdrctl reads the files and sends their text with the file name as ``source_name``; the daemon
opens no path (``ktrdr.daemon.v1.StrategiesService``). Imports only click and ktrdrctl at module
level, like :mod:`ktrdrctl.cli`; the socket client and renderers load when a command runs.

``--set PATH=VALUE`` (repeatable) overrides a value of each document before it is validated.
``validate``: for each file, one line per error ``FILE:LINE:COL: PATH: MESSAGE`` and per warning
``FILE:LINE:COL: warning: PATH: MESSAGE``, then ``FILE: valid|invalid (…)``; exit 0 when every
file is valid, 1 when any is not, 2 when a file cannot be read (nothing is sent then).
``show``: the normalized strategy, its warnings, the model's features and the bars each symbol ×
timeframe needs; an invalid file prints its errors on stderr and exits 1.
"""

from __future__ import annotations

import textwrap
from datetime import datetime
from typing import Any

import click

from ktrdrctl import args, exits
from ktrdrctl.args import TIME_FORMATS, utc_text
from ktrdrctl.files import FileProblem, read_text
from ktrdrctl.groups import Group

STRATEGIES = "ktrdr.daemon.v1.StrategiesService/"
ERROR = "ISSUE_SEVERITY_ERROR"
#: Top-level keys of the normalized strategy in display order; others follow alphabetically.
SECTION_ORDER = (
    "name", "description", "version", "hypothesis", "scope", "source", "data", "indicators", "fuzzy",
    "model", "optim", "labels", "split", "decisions",
)  # fmt: skip
#: What ``validate`` reports for an empty file (the daemon answers blank text the same way).
EMPTY_FILE_RESPONSE: dict[str, Any] = {
    "valid": False,
    "issues": [{"severity": ERROR, "line": 1, "column": 1, "message": "the document is empty"}],
}


def read_files(files: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(name, text)`` of each file; one usage failure (exit 2) naming every file that cannot be
    sent (unreadable, not a regular file, over :data:`ktrdrctl.files.MAX_FILE_BYTES`, not UTF-8)."""
    out, problems = [], []
    for name in files:
        try:
            out.append((name, read_text(name)))
        except FileProblem as e:
            problems.append(str(e))
    if problems:
        raise exits.CliFailure("\n".join(problems), exits.USAGE)
    return out


def source(name: str, text: str) -> dict[str, str]:
    return {"content": text, "sourceName": name}


# -- text for people (pure) -----------------------------------------------------------------------


def issue_line(name: str, issue: dict[str, Any]) -> str:
    """``file:3:5: path: message``; warnings get ``warning: `` before the path."""
    where = f"{name}:{issue.get('line', 0)}:{issue.get('column', 0)}: "
    kind = "" if issue.get("severity") == ERROR else "warning: "
    path = f"{issue['path']}: " if issue.get("path") else ""
    return f"{where}{kind}{path}{issue.get('message', '')}"


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def omitted_line(name: str, response: dict[str, Any]) -> str:
    """``file: … and 250 more issues`` when the daemon listed only the first issues; else ``""``."""
    omitted = int(response.get("omittedIssueCount", 0))
    return f"{name}: … and {plural(omitted, 'more issue')}" if omitted else ""


def validation_summary(name: str, response: dict[str, Any]) -> str:
    """``file: valid (2 warnings)`` / ``file: invalid (1 error)``; counts include omitted issues."""
    omitted = int(response.get("omittedIssueCount", 0))
    errors = sum(1 for i in response.get("issues", []) if i.get("severity") == ERROR)
    if response.get("valid"):
        return f"{name}: valid ({plural(len(response.get('issues', [])) + omitted, 'warning')})"
    return f"{name}: invalid ({plural(errors + omitted, 'error')})"


def scalar(value: Any) -> str:
    """A JSON scalar as YAML-ish text: integral numbers without ``.0``, null as ``null``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def tree_lines(value: Any, indent: int) -> list[str]:
    """A JSON object as indented ``key: value`` lines; lists of scalars stay on one line."""
    pad = " " * indent
    lines = []
    for key in sorted(value) if isinstance(value, dict) else []:
        item = value[key]
        if isinstance(item, dict) and item:
            lines += [f"{pad}{key}:", *tree_lines(item, indent + 2)]
        elif isinstance(item, list) and any(isinstance(x, dict) for x in item):
            lines.append(f"{pad}{key}:")
            for element in item:
                body = tree_lines(element, indent + 4)
                lines.append(f"{pad}  - {body[0].lstrip()}" if body else f"{pad}  - {{}}")
                lines += body[1:]
        elif isinstance(item, list):
            lines.append(f"{pad}{key}: [{', '.join(scalar(x) for x in item)}]")
        else:
            lines.append(f"{pad}{key}: {'{}' if isinstance(item, dict) else scalar(item)}")
    return lines


def ordered_sections(normalized: dict[str, Any]) -> list[str]:
    known = [k for k in SECTION_ORDER if k in normalized]
    return known + sorted(k for k in normalized if k not in SECTION_ORDER)


def description_text(name: str, response: dict[str, Any]) -> str:
    """The ``show`` view of a ``DescribeStrategyResponse``."""
    from ktrdrctl import render

    normalized = response.get("normalized") or {}
    lines = []
    for key in ordered_sections(normalized):
        lines += tree_lines({key: normalized[key]}, 0)
    warnings = response.get("issues", [])
    omitted = int(response.get("omittedIssueCount", 0))
    lines += ["", f"warnings ({len(warnings) + omitted}):"]
    lines += [f"  {issue_line(name, w)}" for w in warnings] or ["  none"]
    if omitted:
        lines.append(f"  … and {plural(omitted, 'more warning')}")
    features = response.get("featureNames", [])
    lines += ["", f"features ({len(features)}, in model input order):"]
    lines += textwrap.wrap(", ".join(features), 96, initial_indent="  ", subsequent_indent="  ")
    period = response.get("period") or {}
    lines += [
        "",
        f"data requirements for {period.get('startTime', '?')} .. {period.get('endTime', '?')} (end exclusive):",
    ]
    rows = [
        [
            r.get("series", {}).get("symbol", ""),
            r.get("series", {}).get("timeframe", ""),
            r.get("startTime", ""),
            r.get("endTime", ""),
            str(r.get("warmupBars", 0)),
        ]
        for r in response.get("dataRequirements", [])
    ]
    table = render.table(["SYMBOL", "TIMEFRAME", "LOAD FROM", "UNTIL", "WARM-UP BARS"], rows)
    lines += [f"  {line}" for line in table.splitlines()]
    return "\n".join(lines)


# -- commands ------------------------------------------------------------------------------------

set_option = click.option(
    "--set",
    "overrides",
    multiple=True,
    type=args.OVERRIDE,
    help="Override one value of the document before it is validated: PATH=VALUE, e.g. "
    "model.training.learning_rate=0.01, indicators[0].period=21, indicators[rsi].period=21 "
    "(VALUE is YAML); repeatable. See docs/strategies.md.",
)


@click.group(cls=Group)
def strategies() -> None:
    """Validate strategy files and show what they need.

    ktrdrctl reads the files and sends their text; the daemon opens no path.
    """


@strategies.command()
@click.argument("files", nargs=-1, required=True, metavar="FILE...")
@set_option
@click.option("-q", "--quiet", is_flag=True, help="Print errors only: no warnings, no summary lines.")
@click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print each file's response as canonical proto3 JSON, one per line.",
)
@click.pass_context
def validate(
    ctx: click.Context,
    files: tuple[str, ...],
    overrides: tuple[dict[str, str], ...],
    quiet: bool,
    as_json: bool,
) -> None:
    """Validate strategy files; exit 0 when all are valid, 1 when any is not.

    Prints every error as FILE:LINE:COL: PATH: MESSAGE and every warning as
    FILE:LINE:COL: warning: PATH: MESSAGE. An unreadable file exits 2 before anything is sent.
    --set applies to every file; an issue about an overridden value names the override.
    """
    from ktrdrctl.cli import print_json, session_of

    documents = read_files(files)
    session = session_of(ctx)
    invalid = 0
    for name, text in documents:
        if not text:  # the daemon refuses empty content as a bad request; answer as it would for blank text
            response = EMPTY_FILE_RESPONSE
        else:
            request = {"source": source(name, text), "overrides": list(overrides)}
            response = session.call(STRATEGIES + "ValidateStrategy", request)
        invalid += not response.get("valid")
        if as_json:
            print_json(response)
            continue
        for issue in response.get("issues", []):
            if not quiet or issue.get("severity") == ERROR:
                click.echo(issue_line(name, issue))
        more = omitted_line(name, response)
        if more and (not quiet or not response.get("valid")):  # an invalid file's omitted are errors
            click.echo(more)
        if not quiet:
            click.echo(validation_summary(name, response))
    if invalid:
        raise exits.CliFailure(
            f"{invalid} of {plural(len(documents), 'strategy file')} invalid", exits.FAILED
        )


@strategies.command()
@click.argument("file", metavar="FILE")
@click.option(
    "--start",
    type=click.DateTime(TIME_FORMATS),
    metavar="TIME",
    help="Start of the period for the data requirements (UTC; 2024-01-01 or 2024-01-01T09:30:00). "
    "Default: 365 days before --end, or before today 00:00 UTC.",
)
@click.option(
    "--end",
    type=click.DateTime(TIME_FORMATS),
    metavar="TIME",
    help="End of the period, exclusive (UTC). Default: 365 days after --start, or today 00:00 UTC.",
)
@set_option
@click.option("--json", "as_json", is_flag=True, help="Print the daemon's response as canonical proto3 JSON.")
@click.pass_context
def show(
    ctx: click.Context,
    file: str,
    start: datetime | None,
    end: datetime | None,
    overrides: tuple[dict[str, str], ...],
    as_json: bool,
) -> None:
    """Show a strategy normalized, its warnings, its features and the data it needs.

    An invalid file prints its errors (as `strategies validate` does) on stderr and exits 1.
    """
    from ktrdrctl.cli import print_json, session_of
    from ktrdrctl.ctl import CtlError, DaemonUnreachable, RequestTooLarge

    [(name, text)] = read_files((file,))
    if not text:
        raise exits.CliFailure(f"{name}:1:1: the document is empty", exits.FAILED)
    session = session_of(ctx)
    request: dict[str, Any] = {"source": source(name, text), "overrides": list(overrides)}
    for key, value in (("startTime", utc_text(start)), ("endTime", utc_text(end))):
        if value:
            request[key] = value
    try:
        response = session.client.call(STRATEGIES + "DescribeStrategy", request)
    except CtlError as e:
        if e.data.get("reason") != "STRATEGY_INVALID":
            raise session.failure(e) from None
        for _field, description in e.field_violations:
            click.echo(description, err=True)
        raise exits.CliFailure(f"{name}: invalid strategy; nothing to show", exits.FAILED) from None
    except DaemonUnreachable as e:
        raise session.failure(e) from None
    except RequestTooLarge as e:
        raise exits.CliFailure(f"{name}: {e}", exits.USAGE) from None
    if as_json:
        print_json(response)
        return
    click.echo(description_text(name, response))
