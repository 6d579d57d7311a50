"""Backtesting: a trained model's decisions traded with honest fills and costs, and measured.

Modules, one job each: :mod:`.inference` (model + the shared feature builder → class
probabilities per bar, feature spec verified), :mod:`.decisions` (probabilities → target
positions under the strategy's ``decisions``), :mod:`.costs` (fees and slippage per asset class),
:mod:`.simulate` (fills at the next open → trades and equity), :mod:`.metrics` (the metric set),
:mod:`.uncertainty` (bootstrap intervals, permutation p-value), :mod:`.deflated` (deflated Sharpe
ratio for the best of many trials), :mod:`.engine` (all of it for one symbol: what a job calls),
:mod:`.plot` (PNG). Conventions and every formula: ``docs/backtesting.md``.

Usage::

    result = backtest_model(load_model_dir(path), strategy, {"1h": bars_1h, "1d": bars_1d},
                            BacktestSettings(calendar="forex", start_ns=start, end_ns=end))
    result.metrics["sharpe"], result.simulation.trades.records(), plot_png(result)
"""
