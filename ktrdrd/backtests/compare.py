"""Backtests beside model versions, for ``ModelsService.CompareModelVersions``: each version's
newest succeeded ``backtest`` operation (:func:`latest_backtests`) and the deflated Sharpe ratio
of the best backtested version among the compared ones (:func:`deflated_sharpe`, computed here so
that clients only print it)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ktrdr.wire import OperationState
from ktrdrd.backtests.kind import KIND
from ktrdrd.operations import OperationRecord, OperationsCore

#: The ``BacktestResult.metrics`` keys the deflated Sharpe ratio reads.
DEFLATED_INPUTS = ("sharpe", "bars_per_year", "bars", "return_skewness", "return_kurtosis")
PAGE = 1000


async def latest_backtests(core: OperationsCore, versions: set[str]) -> dict[str, OperationRecord]:
    """Version name → its newest SUCCEEDED ``backtest`` operation, for the ``versions`` that have one."""
    out: dict[str, OperationRecord] = {}
    token = ""
    while True:
        page, token = await core.list(
            kind=KIND, states=[OperationState.SUCCEEDED.name], page_size=PAGE, page_token=token
        )
        for record in page:
            version = (record.result or {}).get("modelVersion", "")
            if version in versions and version not in out:
                out[version] = record
        if not token or len(out) == len(versions):
            return out


def deflated_sharpe(trials: Sequence[tuple[str, dict[str, float]]]) -> dict[str, Any]:
    """The ``DeflatedSharpe`` message (proto3 JSON field names) of the trials (version name, its
    backtest's ``BacktestResult.metrics``), in the order compared: the best version's figures
    (:func:`ktrdr.research.backtest.deflated.deflated_best`), or ``unavailableReason`` when fewer
    than two versions have a backtest or a backtest lacks a figure the formula needs."""
    from ktrdr.research.backtest.deflated import DeflatedSharpeError, deflated_best

    out: dict[str, Any] = {"trials": len(trials)}
    if len(trials) < 2:
        out["unavailableReason"] = (
            f"{len(trials)} of the compared versions has a backtest; the deflated Sharpe ratio "
            "of the best needs at least two"
        )
        return out
    for name, metrics in trials:
        absent = [key for key in DEFLATED_INPUTS if key not in metrics]
        if absent:
            out["unavailableReason"] = (
                f"the backtest of {name} has no {', '.join(absent)} (a Sharpe ratio is unbounded "
                "when the returns have no variance)"
            )
            return out
    try:
        best = deflated_best([metrics for _name, metrics in trials])
    except DeflatedSharpeError as exc:
        out["unavailableReason"] = str(exc)
        return out
    out.update(
        bestVersion=trials[best["best"]][0],
        sharpe=best["sharpe"],
        expectedMaxSharpe=best["expected_max_sharpe"],
        deflatedSharpeRatio=best["deflated_sharpe_ratio"],
    )
    return out
