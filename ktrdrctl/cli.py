"""The ktrdrctl command tree (click): the root group, ``status``, ``hosts``, ``version``; the other
commands' modules (``ops``, ``data``, ``strategies``, ``models``, ``train``, ``backtest``) load when run.

Only click and ktrdrctl's own light modules are imported here, so ``--help`` and usage errors
never load the socket client; each command imports what it needs when it runs. Every command
prints a view for people, or with ``--json`` JSON documents, one per line (:func:`print_json`: each
response message of the daemon as canonical proto3 JSON). Exit codes: see ``ktrdrctl.exits``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import click

import ktrdr
from ktrdr import wire
from ktrdrctl import args, exits
from ktrdrctl.groups import LazyGroup

if TYPE_CHECKING:
    from ktrdrctl.session import Session

json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the daemon's response as canonical proto3 JSON, one document per line.",
)
operation_argument = click.argument("operation", type=args.OPERATION)

SYSTEM = "ktrdr.daemon.v1.SystemService/"
OPERATIONS = "ktrdr.daemon.v1.OperationsService/"


def print_json(document: dict[str, Any]) -> None:
    """Print one ``--json`` document: compact, UTF-8 (no ``\\u`` escapes), on one line, flushed.

    The convention of every ``--json`` (docs/cli.md): stdout holds only such lines, each one
    response message of the method called in canonical proto3 JSON, as the daemon sent it — one for
    a unary call, one per stream message, one per input file; errors stay text on stderr.
    """
    import json  # only the commands that print JSON pay for it

    click.echo(json.dumps(document, ensure_ascii=False, separators=(",", ":")))


def session_of(ctx: click.Context) -> Session:
    """The command's :class:`~ktrdrctl.session.Session`, opened on first use and closed on exit."""
    root = ctx.find_root()
    if "session" not in root.meta:
        from ktrdrctl.session import Session

        explicit = root.get_parameter_source("runtime_dir") == click.core.ParameterSource.COMMANDLINE
        session = Session(root.params["runtime_dir"], root.params["call_timeout"], explicit)
        root.call_on_close(session.close)
        root.meta["session"] = session
    return root.meta["session"]


def operation_outcome(op: dict[str, Any]) -> None:
    """Exit 1 (with the error on stderr) when a finished operation did not succeed: FAILED,
    CANCELLED or INTERRUPTED."""
    from ktrdrctl import render

    state = render.state_name(op)
    if state in wire.UNSUCCESSFUL_STATES:
        detail = render.status_text(op["error"]).removeprefix(state + ": ") if op.get("error") else ""
        detail = f": {detail}" if detail else ""
        raise exits.CliFailure(f"{op.get('name', '')} {state}{detail}", exits.FAILED)


def _print_version(ctx: click.Context, param: click.Parameter, value: bool) -> None:
    """``--version``: ktrdrctl's version (no daemon asked; ``ktrdrctl version`` asks it too)."""
    if value and not ctx.resilient_parsing:
        click.echo(f"ktrdrctl, version {ktrdr.__version__}")
        ctx.exit()


@click.group(
    cls=LazyGroup,
    lazy_commands={
        "ops": "ktrdrctl.ops:ops",
        "strategies": "ktrdrctl.strategies:strategies",
        "data": "ktrdrctl.data:data",
        "models": "ktrdrctl.models:models",
        "train": "ktrdrctl.train:train",
        "backtest": "ktrdrctl.backtest:backtest",
    },
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.option(
    "--runtime-dir",
    envvar="KTRDR_RUNTIME_DIR",
    metavar="DIR",
    help="The daemon's runtime dir (holds ctl.sock). Default: $XDG_RUNTIME_DIR/ktrdr, "
    "or /run/ktrdr as root or when only the system service is running.",
)
@click.option(
    "--call-timeout",
    envvar="KTRDR_CALL_TIMEOUT",
    type=args.DURATION,
    default="30s",
    show_default=True,
    help="Bound on connecting and on each request (30, 30s, 2m, ...).",
)
@click.option(
    "--version",
    is_flag=True,
    expose_value=False,
    is_eager=True,
    callback=_print_version,
    help="Show ktrdrctl's version and exit.",
)
def cli(runtime_dir: str | None, call_timeout: float) -> None:
    """Control ktrdrd, the ktrdr daemon, over its ctl socket.

    Exit codes: 0 ok; 1 operation failed, cancelled or interrupted, or another daemon error; 2 usage error;
    3 daemon unreachable; 4 not found; 124 `ops wait --timeout` elapsed; 130 Ctrl-C.

    Shell completion (bash; zsh and fish likewise): eval "$(_KTRDRCTL_COMPLETE=bash_source ktrdrctl)".
    """


@cli.command()
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> None:
    """Show the daemon: version, instance, uptime, sockets, hosts."""
    session = session_of(ctx)
    response = session.call(SYSTEM + "GetInfo", {})
    if as_json:
        print_json(response)
        return
    from ktrdrctl import render

    click.echo(render.info_detail(response))


@cli.command()
@json_option
@click.pass_context
def hosts(ctx: click.Context, as_json: bool) -> None:
    """Show the daemon's hosts: address, state, version, round-trip time, and why one is not READY.

    Exit 0 whatever the hosts' states (they are shown, not judged); --json prints the GetInfo
    response (its "hosts" list holds them).
    """
    response = session_of(ctx).call(SYSTEM + "GetInfo", {})
    if as_json:
        print_json(response)
        return
    from ktrdrctl import render

    hosts = response.get("hosts") or []
    click.echo(render.hosts_table(hosts) if hosts else "no hosts configured")


@cli.command()
@json_option
@click.pass_context
def version(ctx: click.Context, as_json: bool) -> None:
    """Show the versions of ktrdrctl and of the daemon it reaches.

    The client's version is printed first, even when the daemon cannot be reached (then exit 3).
    --json: {"client": {"version": ...}, "daemon": GetInfoResponse}.
    """
    client = {"version": ktrdr.__version__}
    session = session_of(ctx)
    try:
        info = session.call(SYSTEM + "GetInfo", {})
    except exits.CliFailure:
        if as_json:
            print_json({"client": client})
        else:
            click.echo(f"client: ktrdrctl {client['version']}")
        raise
    if as_json:
        print_json({"client": client, "daemon": info})
        return
    click.echo(f"client: ktrdrctl {client['version']}")
    click.echo(
        f"daemon: ktrdrd {info.get('version', '?')} (pid {info.get('pid', '?')}, {session.runtime_dir})"
    )
