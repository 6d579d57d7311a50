"""``ktrdrctl backtest STRATEGY[@VERSION|@ALIAS]``: backtest a model version through the daemon.

A ``backtest`` operation (StartBacktest) followed like ``ktrdrctl train`` (progress per symbol and
step; Ctrl-C cancels). The summary prints, per symbol, each metric beside buy-and-hold over the same
bars, the bootstrap intervals of Sharpe and total return, the permutation p-value against
random-entry strategies, and the classifier's accuracy beside its baselines on the same period.
``--plot``/``--trades`` write the first symbol's PNG and trade list (GetBacktestArtifact).

``--walk-forward`` (STRATEGY is then a strategy file): a ``backtest.walkforward`` operation
(StartWalkForward) that trains a model per rolling ``--train-window`` and backtests each following
``--test-window`` out of sample; the summary is the window table (train and test periods, model
version, return, Sharpe, trades) and the stitched backtest as above.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import click

from ktrdrctl import exits
from ktrdrctl.args import TIME_FORMATS, utc_text
from ktrdrctl.groups import Command
from ktrdrctl.models import resolve, version_ref, write_atomically
from ktrdrctl.strategies import read_files, source

BACKTESTS = "ktrdr.daemon.v1.BacktestsService/"
#: Request fields of StartBacktest/StartWalkForward → the flag that sets them (named in refusals).
FLAGS = {
    "train_window": "--train-window",
    "test_window": "--test-window",
    "start_time": "--start",
    "end_time": "--end",
    "settings.fee_bps": "--fees",
    "settings.slippage_bps": "--slippage",
}


def _pct(x: Any) -> str:
    return "n/a" if x is None else f"{float(x):+.2%}"


def _num(x: Any, spec: str = ".2f") -> str:
    return "unbounded" if x is None else format(float(x), spec)


def _interval(ci: Any, fmt: Any) -> str:
    return "" if not ci else f"  (95% CI {fmt(ci[0])} .. {fmt(ci[1])})"


def symbol_lines(symbol: str, r: dict[str, Any]) -> list[str]:
    """The summary of one symbol's backtest (a job result, ``ktrdr.jobs.backtest.RESULT_KEYS``)."""
    m, u, c = r["metrics"], r["metrics"]["uncertainty"], r["classifier"]
    span = r["range"]
    return [
        f"{symbol} {r['timeframe']}: {span['first']} .. {span['last']} ({int(span['bars'])} bars, "
        f"{r['calendar']}, fee {_num(m['costs']['fee_bps'], 'g')} bp, slippage {_num(m['costs']['slippage_bps'], 'g')} bp)",
        f"{'':22}{'strategy':>14}{'buy and hold':>16}",
        f"{'total return':22}{_pct(m['total_return']):>14}{_pct(m['buy_and_hold_return']):>16}"
        + _interval(u.get("total_return_ci"), _pct),
        f"{'annualized return':22}{_pct(m['annualized_return']):>14}{_pct(m['buy_and_hold_annualized_return']):>16}",
        f"{'sharpe':22}{_num(m['sharpe']):>14}{_num(m['buy_and_hold_sharpe']):>16}"
        + _interval(u.get("sharpe_ci"), _num),
        f"{'max drawdown':22}{_pct(-m['max_drawdown']):>14}{_pct(-m['buy_and_hold_max_drawdown']):>16}",
        f"sortino {_num(m['sortino'])}  calmar {_num(m['calmar'])}  volatility {_pct(m['volatility'])}  "
        f"longest drawdown {int(m['max_drawdown_bars'])} bars",
        f"trades {int(m['trades'])}  win rate {float(m['win_rate']):.1%}  profit factor {_num(m['profit_factor'])}  "
        f"expectancy {_num(m['expectancy'])}  SQN {_num(m['sqn'])}  exposure {float(m['exposure']):.1%}  "
        f"avg holding {float(m['avg_holding_bars']):.1f} bars  fees {_num(m['fees_paid'])}",
        f"permutation p-value {float(u['permutation_p_value']):.3f} (against {int(u['permutations'])} "
        "random-entry strategies with the same trades)",
        f"classifier: accuracy {float(c['accuracy']):.4f}  majority baseline {float(c['baseline_accuracy']):.4f}  "
        f"persistence baseline {float(c['persistence_accuracy']):.4f}  ({int(c['samples'])} bars)",
    ]


def summary_lines(op: dict[str, Any]) -> list[str]:
    result = op.get("result") or {}
    report = result.get("report") or {}
    lines = [f"model: {result.get('modelVersion') or result.get('model', '-')}"]
    for symbol in report.get("symbols", []):
        lines += symbol_lines(symbol, report["per_symbol"][symbol])
        lines += [f"warning: {w}" for w in report["per_symbol"][symbol].get("warnings", [])]
    return lines


def window_lines(op: dict[str, Any]) -> list[str]:
    """The walk-forward table: per window its train and test periods, model version and, per
    symbol, the test window's return, Sharpe and trades."""
    from ktrdrctl import render

    result = op.get("result") or {}
    report = result.get("report") or {}
    windows = result.get("windows") or []
    lines = [f"walk-forward of {result.get('model', '-')}: {len(windows)} windows, test windows stitched"]
    for symbol in report.get("symbols", []):
        rows = []
        per_window = report["per_symbol"][symbol].get("windows") or []
        for w, figures in zip(windows, per_window, strict=False):
            rows.append(
                [
                    str(render.as_int(w.get("index"))),
                    f"{w['trainStartTime'][:10]}..{w['trainEndTime'][:10]}",
                    f"{w['testStartTime'][:10]}..{w['testEndTime'][:10]}",
                    w.get("modelVersion", "").removeprefix("models/").replace("/versions/", "/")
                    + (" (reused)" if w.get("reused") else ""),
                    _pct(figures.get("total_return")),
                    _num(figures.get("sharpe")),
                    str(render.as_int(figures.get("trades"))),
                ]
            )
        headers = ["WINDOW", "TRAIN", f"TEST ({symbol})", "MODEL", "RETURN", "SHARPE", "TRADES"]
        lines += render.table(headers, rows).splitlines()
    return lines


def flagged(failure: exits.CliFailure) -> exits.CliFailure:
    """``failure`` with the flag named beside the request field it names (``train_window`` →
    ``--train-window``)."""
    text = failure.format_message()
    named = [flag for field, flag in FLAGS.items() if f"{field}:" in text or f"{field} " in text]
    if not named:
        return failure
    return exits.CliFailure(f"{text}\n  flag: {named[0]}", failure.exit_code)


def version_name(ref: tuple[str, str]) -> tuple[str, str]:
    """``STRATEGY@N`` names version N (an alias is never all digits); other refs as ``models`` reads them."""
    strategy, name = ref
    alias = name.removeprefix(f"models/{strategy}@") if "@" in name else ""
    return (strategy, f"models/{strategy}/versions/{int(alias)}") if alias.isdigit() else ref


def fetch(session: Any, name: str, artifact: str, path: str) -> int:
    """Write an artifact of the finished backtest ``name`` (its first symbol) to ``path``."""
    items = session.stream(BACKTESTS + "GetBacktestArtifact", {"name": name, "artifact": artifact})
    return write_atomically(path, (base64.b64decode(i["data"]) for i in items if "data" in i))


@click.command(cls=Command)
@click.argument("model", metavar="STRATEGY[@VERSION|@ALIAS]|STRATEGY.yaml")
@click.option("--start", "start", type=click.DateTime(TIME_FORMATS), required=True, metavar="TIME",
              help="First bar of the period (UTC); with --walk-forward, where the first train window starts.")  # fmt: skip
@click.option("--end", "end", type=click.DateTime(TIME_FORMATS), required=True, metavar="TIME",
              help="End of the period, exclusive (UTC).")  # fmt: skip
@click.option(
    "--symbol", "symbols", multiple=True, help="Backtest this symbol instead of the model's; repeatable."
)
@click.option(
    "--fees", type=float, metavar="BP", help="Fee per fill in basis points (default: the asset class's)."
)
@click.option("--slippage", type=float, metavar="BP", help="Slippage per fill in basis points (default: the asset class's).")  # fmt: skip
@click.option("--walk-forward", "walk_forward", is_flag=True,
              help="Train STRATEGY.yaml on each rolling train window and backtest the following test window out of sample; one stitched result.")  # fmt: skip
@click.option("--train-window", metavar="LEN", help="Walk-forward train window: 12M, 1Y, 2W, 30D (months, years, weeks, days).")  # fmt: skip
@click.option("--test-window", metavar="LEN", help="Walk-forward test window (and step), e.g. 1M.")  # fmt: skip
@click.option("--seed", type=int, help="Walk-forward training seed (default: the strategy's).")
@click.option("--plot", "plot_file", metavar="FILE.png", help="Write the equity/drawdown/trades plot here.")
@click.option("--trades", "trades_file", metavar="FILE.csv", help="Write the trade list here.")
@click.option("--request-id", default="", help="Idempotency key: the same key returns the same operation.")
@click.option("--json", "as_json", is_flag=True, help="Print the start response, then each WatchOperation message, as proto3 JSON.")  # fmt: skip
@click.pass_context
def backtest(
    ctx: click.Context,
    model: str,
    start: datetime,
    end: datetime,
    symbols: tuple[str, ...],
    fees: float | None,
    slippage: float | None,
    walk_forward: bool,
    train_window: str | None,
    test_window: str | None,
    seed: int | None,
    plot_file: str | None,
    trades_file: str | None,
    request_id: str,
    as_json: bool,
) -> None:
    """Backtest a model version (newest when none is named) through the daemon; with
    --walk-forward, retrain STRATEGY.yaml on rolling windows and backtest each out of sample
    (docs/backtesting.md).

    Exit 0 when it succeeded; 1 when it failed or was cancelled.
    """
    from ktrdrctl.cli import operation_outcome, print_json, session_of
    from ktrdrctl.train import follow, render_state

    session = session_of(ctx)
    settings: dict[str, Any] = {}
    if fees is not None:
        settings["feeBps"] = fees
    if slippage is not None:
        settings["slippageBps"] = slippage
    period = {"symbols": list(symbols), "startTime": utc_text(start), "endTime": utc_text(end)}
    if walk_forward:
        for flag, value in (("--train-window", train_window), ("--test-window", test_window)):
            if not value:
                raise click.UsageError(f"--walk-forward needs {flag} (e.g. 12M, 1M, 2W or 30D)")
        [(file_name, text)] = read_files((model,))
        request = {
            "strategy": source(file_name, text),
            **period,
            "trainWindow": train_window,
            "testWindow": test_window,
            "settings": settings,
            "requestId": request_id,
        }
        if seed is not None:
            request["seed"] = str(seed)
        method = "StartWalkForward"
    else:
        given = {"--train-window": train_window, "--test-window": test_window, "--seed": seed}
        for flag in (f for f, value in given.items() if value is not None):
            raise click.UsageError(f"{flag} is for --walk-forward")
        ref = version_name(version_ref(model))
        request = {
            "modelVersion": resolve(session, ref),
            **period,
            "settings": settings,
            "requestId": request_id,
        }
        method = "StartBacktest"
    try:
        response = session.call(BACKTESTS + method, request)
    except exits.CliFailure as failure:
        raise flagged(failure) from None
    op = response["operation"]
    name = op["name"]
    if as_json:
        print_json(response)
    else:
        click.echo(f"started {name}")
    final = follow(session, name, as_json, int(op.get("lastSeq", 0) or 0))
    if render_state(final) == "SUCCEEDED":
        if not as_json:
            for line in (window_lines(final) if walk_forward else []) + summary_lines(final):
                click.echo(line)
        for path, artifact in ((plot_file, "plot.png"), (trades_file, "trades.csv")):
            if path:
                size = fetch(session, name, artifact, path)
                if not as_json:
                    click.echo(f"wrote {path} ({size} bytes)")
    operation_outcome(final)
