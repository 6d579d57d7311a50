"""``ktrdrctl backtest STRATEGY[@VERSION|@ALIAS]``: backtest a model version through the daemon.

A ``backtest`` operation (StartBacktest) followed like ``ktrdrctl train`` (progress per symbol and
step; Ctrl-C cancels). The summary prints, per symbol, each metric beside buy-and-hold over the same
bars, the bootstrap intervals of Sharpe and total return, the permutation p-value against
random-entry strategies, and the classifier's accuracy beside its baselines on the same period.
``--plot``/``--trades`` write the first symbol's PNG and trade list (GetBacktestArtifact).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

import click

from ktrdrctl.models import VERSION, resolve, write_atomically
from ktrdrctl.strategies import TIME_FORMATS, utc_text

BACKTESTS = "ktrdr.daemon.v1.BacktestsService/"


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
    lines = [f"model: {result.get('modelVersion', '-')}"]
    for symbol in report.get("symbols", []):
        lines += symbol_lines(symbol, report["per_symbol"][symbol])
        lines += [f"warning: {w}" for w in report["per_symbol"][symbol].get("warnings", [])]
    return lines


def version_name(ref: tuple[str, str]) -> tuple[str, str]:
    """``STRATEGY@N`` names version N (an alias is never all digits); other refs as ``models`` reads them."""
    strategy, name = ref
    alias = name.removeprefix(f"models/{strategy}@") if "@" in name else ""
    return (strategy, f"models/{strategy}/versions/{int(alias)}") if alias.isdigit() else ref


def fetch(session: Any, name: str, artifact: str, path: str) -> int:
    """Write an artifact of the finished backtest ``name`` (its first symbol) to ``path``."""
    items = session.stream(BACKTESTS + "GetBacktestArtifact", {"name": name, "artifact": artifact})
    return write_atomically(path, (base64.b64decode(i["data"]) for i in items if "data" in i))


@click.command()
@click.argument("model", type=VERSION, metavar="STRATEGY[@VERSION|@ALIAS]")
@click.option("--start", "start", type=click.DateTime(TIME_FORMATS), required=True, metavar="TIME",
              help="First bar of the period (UTC).")  # fmt: skip
@click.option("--end", "end", type=click.DateTime(TIME_FORMATS), required=True, metavar="TIME",
              help="End of the period, exclusive (UTC).")  # fmt: skip
@click.option(
    "--symbol", "symbols", multiple=True, help="Backtest this symbol instead of the model's; repeatable."
)
@click.option(
    "--fees", type=float, metavar="BP", help="Fee per fill in basis points (default: the asset class's)."
)
@click.option("--slippage", type=float, metavar="BP", help="Slippage per fill in basis points (default: the asset class's).")  # fmt: skip
@click.option("--plot", "plot_file", metavar="FILE.png", help="Write the equity/drawdown/trades plot here.")
@click.option("--trades", "trades_file", metavar="FILE.csv", help="Write the trade list here.")
@click.option("--request-id", default="", help="Idempotency key: the same key returns the same operation.")
@click.option("--json", "as_json", is_flag=True, help="Print the start response, then each WatchOperation message, as proto3 JSON.")  # fmt: skip
@click.pass_context
def backtest(
    ctx: click.Context,
    model: tuple[str, str],
    start: datetime,
    end: datetime,
    symbols: tuple[str, ...],
    fees: float | None,
    slippage: float | None,
    plot_file: str | None,
    trades_file: str | None,
    request_id: str,
    as_json: bool,
) -> None:
    """Backtest a model version (newest when none is named) through the daemon (docs/backtesting.md).

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
    request = {
        "modelVersion": resolve(session, version_name(model)),
        "symbols": list(symbols),
        "startTime": utc_text(start),
        "endTime": utc_text(end),
        "settings": settings,
        "requestId": request_id,
    }
    response = session.call(BACKTESTS + "StartBacktest", request)
    op = response["operation"]
    name = op["name"]
    if as_json:
        print_json(response)
    else:
        click.echo(f"started {name}")
    final = follow(session, name, as_json, int(op.get("lastSeq", 0) or 0))
    if render_state(final) == "SUCCEEDED":
        if not as_json:
            for line in summary_lines(final):
                click.echo(line)
        for path, artifact in ((plot_file, "plot.png"), (trades_file, "trades.csv")):
            if path:
                size = fetch(session, name, artifact, path)
                if not as_json:
                    click.echo(f"wrote {path} ({size} bytes)")
    operation_outcome(final)
