"""A backtest as a PNG: equity against buy-and-hold with the trades marked, and the drawdown below.

Rendered with matplotlib's object API on an Agg canvas (``Figure`` + ``FigureCanvasAgg``), never
through ``pyplot``: no global figure state and no GUI backend, so callers may render in worker
threads (the daemon and hosts do, off their event loops). CPU-bound, ~0.1–0.5 s.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from ktrdr.research.backtest.metrics import drawdown

if TYPE_CHECKING:  # the engine imports torch; rendering a result needs none of it
    from ktrdr.research.backtest.engine import BacktestResult


def plot_png(
    result: BacktestResult, *, title: str | None = None, width_px: int = 1400, height_px: int = 800
) -> bytes:
    """PNG bytes of ``result``: top, equity and buy-and-hold (one unit of the initial cash from the
    first close), entries (▲ long, ▼ short) and exits (×) on the equity line; bottom, the drawdown
    in percent. ``title``: default ``SYMBOL TF: total return, Sharpe, trades``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    bars, sim, m = result.bars, result.simulation, result.metrics
    when = bars.time.astype("datetime64[ns]")
    hold = sim.initial_cash * bars.close / bars.close[0]
    dpi = 100
    fig = Figure(figsize=(width_px / dpi, height_px / dpi), dpi=dpi)
    FigureCanvasAgg(fig)
    top, bottom = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    top.plot(when, sim.equity, color="tab:blue", linewidth=1.0, label="strategy")
    top.plot(when, hold, color="tab:gray", linewidth=0.8, alpha=0.8, label="buy and hold")
    trades = sim.trades
    for sides, marker, color, label in (
        (1, "^", "tab:green", "long entry"),
        (-1, "v", "tab:red", "short entry"),
    ):
        pick = trades.side == sides
        if pick.any():
            bar = trades.entry_bar[pick]
            top.scatter(when[bar], sim.equity[bar], marker=marker, color=color, s=24, zorder=3, label=label)
    if len(trades):
        bar = trades.exit_bar
        top.scatter(when[bar], sim.equity[bar], marker="x", color="black", s=18, zorder=3, label="exit")
    top.set_ylabel("equity")
    top.legend(loc="upper left", fontsize="small")
    top.grid(alpha=0.3)
    sharpe = m.get("sharpe")
    top.set_title(
        title
        or (
            f"{bars.symbol} {bars.timeframe}: return {m['total_return']:+.2%}, "
            f"Sharpe {'n/a' if sharpe is None else f'{sharpe:.2f}'}, {m['trades']} trades "
            f"(buy and hold {m['buy_and_hold_return']:+.2%})"
        )
    )
    bottom.fill_between(
        when, -100 * drawdown(sim.equity, sim.initial_cash), 0, color="tab:red", alpha=0.4, step="post"
    )
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.autofmt_xdate()
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()
