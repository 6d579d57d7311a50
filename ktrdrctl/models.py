"""``ktrdrctl models list|show|compare|delete|export|alias``: the daemon's model registry
(``ModelsService``).

A version is named ``STRATEGY`` (its newest version), ``STRATEGY/N``, ``STRATEGY@ALIAS``, or by
its resource name (``models/STRATEGY/versions/N``, ``models/STRATEGY@ALIAS``). ``show --plot`` and
``export`` write files the daemon produced (a PNG it rendered, a tar it streamed): ktrdrctl draws
nothing itself. Imports only click and ktrdrctl at module level; the client loads when a command runs.
"""

from __future__ import annotations

import base64
import os
import re
from typing import TYPE_CHECKING, Any

import click

from ktrdrctl import exits
from ktrdrctl.groups import Group

if TYPE_CHECKING:
    from ktrdrctl.session import Session

MODELS = "ktrdr.daemon.v1.ModelsService/"
_REF = re.compile(r"(?:models/)?([A-Za-z0-9][A-Za-z0-9._-]*?)(?:(?:/versions/|/)(\d+)|@(.+))?")


def version_ref(text: str) -> tuple[str, str]:
    """``(strategy, name)``: ``name`` is the version's resource name, or "" for the newest version.

    Raises a usage error (exit 2) for text that names no version."""
    match = _REF.fullmatch(text.strip())
    if match is None:
        raise click.BadParameter(
            f"{text!r} names no model version; expected STRATEGY, STRATEGY/N, STRATEGY@ALIAS "
            "or models/STRATEGY/versions/N"
        )
    strategy, number, alias = match.groups()
    if number:
        return strategy, f"models/{strategy}/versions/{int(number)}"
    return strategy, (f"models/{strategy}@{alias}" if alias else "")


class _VersionRef(click.ParamType):
    name = "VERSION"

    def convert(self, value: Any, param: Any, ctx: Any) -> tuple[str, str]:
        if isinstance(value, tuple):
            return value
        try:
            return version_ref(value)
        except click.BadParameter as e:
            self.fail(e.message, param, ctx)


VERSION = _VersionRef()


def resolve(session: Session, ref: tuple[str, str]) -> str:
    """The resource name of ``ref``, asking the daemon for the newest version when none is named."""
    strategy, name = ref
    if name:
        return name
    model = session.call(MODELS + "GetModel", {"name": f"models/{strategy}"})["model"]
    return str(model["latestVersion"])


def write_atomically(path: str, pieces: Any) -> int:
    """Write the byte ``pieces`` to ``path`` through ``path.part`` and a rename; returns the size."""
    part = f"{path}.part"
    size = 0
    try:
        with open(part, "wb") as fh:
            for piece in pieces:
                fh.write(piece)
                size += len(piece)
        os.replace(part, path)
    except OSError as e:
        if os.path.exists(part):
            os.unlink(part)
        raise exits.CliFailure(f"cannot write {path}: {e.strerror or e}", exits.FAILED) from None
    return size


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    help="Print the daemon's response as canonical proto3 JSON, one document per line.",
)


@click.group(cls=Group)
def models() -> None:
    """Trained models: versions, metrics, aliases, exports.

    A version is STRATEGY (its newest), STRATEGY/N, STRATEGY@ALIAS or models/STRATEGY/versions/N.
    """


@models.command("list")
@click.argument("strategy", required=False)
@click.option("--all", "all_pages", is_flag=True, help="Follow every page to the end.")
@click.option("--page-size", type=click.IntRange(1, 1000), help="Entries per request (daemon default 100).")
@json_option
@click.pass_context
def list_(
    ctx: click.Context, strategy: str | None, all_pages: bool, page_size: int | None, as_json: bool
) -> None:
    """List models, or the versions of STRATEGY (newest first) with their test metrics."""
    from ktrdrctl import modelview
    from ktrdrctl.cli import print_json, session_of

    session = session_of(ctx)
    method, key = ("ListModelVersions", "versions") if strategy else ("ListModels", "models")
    request: dict[str, Any] = {"parent": f"models/{strategy}"} if strategy else {}
    if page_size:
        request["pageSize"] = page_size
    collected: list[dict[str, Any]] = []
    while True:
        response = session.call(MODELS + method, request)
        collected.extend(response.get(key, []))
        if as_json:
            print_json(response)
        token = response.get("nextPageToken", "")
        if not token or not all_pages:
            break
        request["pageToken"] = token
    if as_json:
        return
    if not collected:
        click.echo("no models" if not strategy else f"no versions of {strategy}", err=True)
    else:
        click.echo(modelview.versions_table(collected) if strategy else modelview.models_table(collected))
    if token:
        click.echo("more: repeat with --all", err=True)


@models.command()
@click.argument("version", type=VERSION)
@click.option(
    "--plot",
    "plot_file",
    metavar="FILE.png",
    help="Also write the training curves (PNG, drawn by the daemon).",
)
@json_option
@click.pass_context
def show(ctx: click.Context, version: tuple[str, str], plot_file: str | None, as_json: bool) -> None:
    """Show a version: test metrics beside the majority and persistence baselines, skill verdict,
    confusion matrix, class distribution per split, training and manifest."""
    from ktrdrctl import modelview
    from ktrdrctl.cli import print_json, session_of

    session = session_of(ctx)
    name = resolve(session, version)
    response = session.call(MODELS + "GetModelVersion", {"name": name})
    if plot_file:
        plot = session.call(MODELS + "RenderModelPlot", {"name": name})
        size = write_atomically(plot_file, [base64.b64decode(plot.get("png", ""))])
        click.echo(
            f"wrote {plot_file} ({size:,} bytes, training curves of {plot.get('version', name)})", err=True
        )
    if as_json:
        print_json(response)
        return
    click.echo(modelview.version_detail(response.get("version", {})))


@models.command()
@click.argument("versions", nargs=-1, required=True, type=VERSION)
@json_option
@click.pass_context
def compare(ctx: click.Context, versions: tuple[tuple[str, str], ...], as_json: bool) -> None:
    """Compare versions: key metrics side by side (e.g. compare nmr/1 nmr/2 nmr@champion), with each
    version's newest backtest and the deflated Sharpe ratio of the best backtested one."""
    from ktrdrctl import modelview
    from ktrdrctl.cli import print_json, session_of

    session = session_of(ctx)
    response = session.call(
        MODELS + "CompareModelVersions", {"names": [resolve(session, ref) for ref in versions]}
    )
    if as_json:
        print_json(response)
        return
    found = response.get("versions", [])
    backtests = {b["version"]: b["result"] for b in response.get("backtests", []) if b.get("result")}
    click.echo(modelview.compare_table(found, backtests))
    line = modelview.deflated_line(found, response.get("deflatedSharpe") or {})
    if line:
        click.echo(line)


@models.command()
@click.argument("version", type=VERSION)
@json_option
@click.pass_context
def delete(ctx: click.Context, version: tuple[str, str], as_json: bool) -> None:
    """Delete a version (refused while an alias points at it). Give its number: STRATEGY/N."""
    from ktrdrctl.cli import print_json, session_of

    strategy, name = version
    if not name or "@" in name:
        raise click.UsageError(f"say which version to delete: {strategy}/N (an alias or 'newest' is refused)")
    response = session_of(ctx).call(MODELS + "DeleteModelVersion", {"name": name})
    if as_json:
        print_json(response)
        return
    click.echo(f"deleted {name}")


@models.command()
@click.argument("version", type=VERSION)
@click.option(
    "-o", "--output", metavar="FILE.tar", help="Where to write the archive. Default: STRATEGY-vN.tar here."
)
@json_option
@click.pass_context
def export(ctx: click.Context, version: tuple[str, str], output: str | None, as_json: bool) -> None:
    """Write a version's directory as a tar archive (entries STRATEGY-vN/FILE).

    --json prints {"name", "file", "totalBytes"} once the file is written.
    """
    from ktrdrctl.cli import print_json, session_of

    session = session_of(ctx)
    name = resolve(session, version)
    strategy, number = version[0], name.rsplit("/", 1)[-1]
    if "@" in name:  # the archive is named after the version the alias points at
        number = session.call(MODELS + "GetModelVersion", {"name": name})["version"]["name"].rsplit("/", 1)[
            -1
        ]
        name = f"models/{strategy}/versions/{number}"
    path = output or f"{strategy}-v{number}.tar"
    total = [0]

    def pieces():
        for message in session.stream(MODELS + "ExportModelVersion", {"name": name}):
            total[0] = int(message.get("totalBytes", 0))
            yield base64.b64decode(message.get("data", ""))

    size = write_atomically(path, pieces())
    if size != total[0]:
        os.unlink(path)
        raise exits.CliFailure(f"{name}: the archive arrived incomplete ({size} of {total[0]} bytes)")
    if as_json:
        print_json({"name": name, "file": path, "totalBytes": str(size)})
        return
    click.echo(f"wrote {path} ({size:,} bytes, {name})")


@models.command()
@click.argument("words", nargs=-1, required=True, metavar="STRATEGY VERSION NAME")
@click.option(
    "--delete", "remove", is_flag=True, help="Remove the alias instead: alias --delete STRATEGY NAME."
)
@json_option
@click.pass_context
def alias(ctx: click.Context, words: tuple[str, ...], remove: bool, as_json: bool) -> None:
    """Point alias NAME at a version (creates or moves it): alias neuro_mean_reversion 3 champion.

    With --delete: alias --delete STRATEGY NAME.
    """
    from ktrdrctl.cli import print_json, session_of

    expected = 2 if remove else 3
    if len(words) != expected:
        shape = "--delete STRATEGY NAME" if remove else "STRATEGY VERSION NAME"
        raise click.UsageError(f"expected {shape}, got {len(words)} argument(s)")
    session = session_of(ctx)
    strategy = words[0]
    if remove:
        response = session.call(
            MODELS + "DeleteModelAlias", {"model": f"models/{strategy}", "alias": words[1]}
        )
        message = f"removed alias {words[1]} of {strategy}"
    else:
        number = words[1].rsplit("/", 1)[-1]
        if not number.isdigit():
            raise click.UsageError(f"VERSION must be a version number, got {words[1]!r}")
        target = f"models/{strategy}/versions/{int(number)}"
        request = {"model": f"models/{strategy}", "alias": words[2], "version": target}
        response = session.call(MODELS + "SetModelAlias", request)
        message = f"{strategy}@{words[2]} -> {target}"
    if as_json:
        print_json(response)
        return
    click.echo(message)
