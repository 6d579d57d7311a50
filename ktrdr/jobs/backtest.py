"""The ``backtest`` job on the wire: what the daemon sends a training host and what it gets back.

Both sides import this module (standard library only; the bars helpers of :mod:`ktrdr.jobs.train`
import pyarrow when called). A training host runs the job with
:func:`ktrdr.research.backtest.job.run_backtest`, which the library can call directly too.

One job backtests **one symbol** (a multi-symbol backtest is one job per symbol: each has its own
trades, equity curve, plot and metrics, and the jobs run in parallel on the hosts' slots).

**Spec** (``StartJobRequest.spec``, a ``google.protobuf.Struct``; unknown keys are refused):

* ``strategy_source`` (string, optional, default ``"strategy"``): the strategy file's name, for messages.
* ``symbol`` (required): the symbol to trade (``AAPL``, ``EURUSD``).
* ``start_ns``, ``end_ns`` (required): the simulated base bars open in ``[start_ns, end_ns)``,
  int ns since the epoch UTC as decimal strings (ints accepted), ``start_ns < end_ns``.
* ``calendar`` (optional): ``XNYS``, ``forex`` or ``crypto`` — cost defaults and annualisation;
  default :func:`ktrdr.calendars.guess` of the symbol.
* ``fee_bps``, ``slippage_bps`` (numbers ≥ 0, optional): default the asset class's
  (:mod:`ktrdr.research.backtest.costs`). Negative → :class:`JobSpecError` (INVALID_ARGUMENT).
* ``initial_cash`` (number > 0, default 100000).
* ``position_size`` (number in (0, 1], optional): fraction of equity per position; default the
  strategy's ``decisions.position_size``.
* ``direction`` (optional): ``long_only`` or ``long_short``; default the strategy's.
* ``permutations`` (int ≥ 0, default 1000) and ``seed`` (int ≥ 0, default 0): the permutation test.

**Inputs** (``JobInput.role`` → a content-addressed blob):

* ``strategy`` (optional): a strategy document (UTF-8 YAML) to backtest the model with — e.g. the
  same features under other ``decisions``; absent = the strategy the model was trained with (its
  ``strategy.json``). Either way its feature builder must produce the model's feature spec exactly
  (else the job is refused, reason ``FEATURE_SPEC_MISMATCH``) and its ``decisions`` section decides.
* ``model/<FILE>``: each file of the model directory (:data:`MODEL_ROLES`, the
  :mod:`ktrdr.research.artifacts` format a registry version stores), all required.
* ``bars/<SYMBOL>/<TF>``: as for the train job (:func:`ktrdr.jobs.train.bars_to_parquet`), one per
  timeframe of the strategy for ``symbol``; bars before ``start_ns`` warm the features up.

**Artifacts** (:data:`ARTIFACTS`): ``report.json`` (the result plus the trade list),
``trades.csv`` (:data:`TRADE_COLUMNS`), ``equity.csv`` (:data:`EQUITY_COLUMNS`, one row per
simulated bar), ``plot.png`` (equity vs buy-and-hold, trades, drawdown).

**Result** (``Job.result``): :data:`RESULT_KEYS`: ``metrics`` is the backtest metric set
(docs/backtesting.md) with ``uncertainty`` and ``costs``; ``classifier`` the model's
classification metrics on the same bars (accuracy beside the majority and persistence baselines,
as in training's evaluation).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ktrdr.jobs.train import (
    BARS_PREFIX,
    MODEL_FILES,
    ROLE_STRATEGY,
    JobSpecError,
    bars_role,
    missing_bars_roles,
    parse_bars_role,
    refuse_unknown,
    spec_int,
    spec_period_and_source,
)

KIND = "backtest"

MODEL_PREFIX = "model/"
#: The model directory's files as input roles.
MODEL_ROLES = tuple(MODEL_PREFIX + name for name in MODEL_FILES)

REPORT, TRADES, EQUITY, PLOT = "report.json", "trades.csv", "equity.csv", "plot.png"
ARTIFACTS = (REPORT, TRADES, EQUITY, PLOT)

#: Columns of ``trades.csv`` (times: ISO-8601 UTC; prices are fill prices; see
#: :class:`ktrdr.research.backtest.simulate.Trades`).
TRADE_COLUMNS = (
    "side",
    "units",
    "entry_time",
    "exit_time",
    "entry_price",
    "exit_price",
    "fees",
    "slippage",
    "pnl",
    "return",
    "holding_bars",
    "closed_at_end",
)
#: Columns of ``equity.csv``: bar open time (ISO-8601 UTC), equity at the close, signed units held,
#: the bar's close, buy-and-hold equity (the initial cash in one unit of the asset from the first close).
EQUITY_COLUMNS = ("time", "equity", "position", "close", "buy_and_hold")

RESULT_KEYS = (
    "strategy",
    "symbol",
    "timeframe",
    "calendar",
    "range",
    "decisions",
    "metrics",
    "classifier",
    "model",
    "timings",
    "warnings",
)

SPEC_KEYS = (
    "strategy_source",
    "symbol",
    "start_ns",
    "end_ns",
    "calendar",
    "fee_bps",
    "slippage_bps",
    "initial_cash",
    "position_size",
    "direction",
    "permutations",
    "seed",
)
CALENDARS = ("XNYS", "forex", "crypto")
DIRECTIONS = ("long_only", "long_short")
_SYMBOL = re.compile(r"[A-Z0-9][A-Z0-9._-]{0,31}")


@dataclass(frozen=True)
class BacktestSpec:
    """A validated spec (module docstring); None = the default named there."""

    symbol: str
    start_ns: int
    end_ns: int
    strategy_source: str = "strategy"
    calendar: str | None = None
    fee_bps: float | None = None
    slippage_bps: float | None = None
    initial_cash: float = 100_000.0
    position_size: float | None = None
    direction: str | None = None
    permutations: int = 1000
    seed: int = 0

    def to_struct_dict(self) -> dict[str, Any]:
        """The spec as Struct-safe data (what :func:`parse_spec` reads back); None values left out."""
        out: dict[str, Any] = {
            "strategy_source": self.strategy_source,
            "symbol": self.symbol,
            "start_ns": str(self.start_ns),
            "end_ns": str(self.end_ns),
            "initial_cash": self.initial_cash,
            "permutations": self.permutations,
            "seed": self.seed,
        }
        for key in ("calendar", "fee_bps", "slippage_bps", "position_size", "direction"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out


def _number(
    key: str, value: Any, *, minimum: float, inclusive: bool = True, maximum: float | None = None
) -> float:
    """A finite number ≥ ``minimum`` (> when not ``inclusive``), ≤ ``maximum`` when given."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise JobSpecError(key, f"expected a finite number, got {value!r}")
    low_ok = value >= minimum if inclusive else value > minimum
    if not low_ok:
        raise JobSpecError(key, f"must be {'>=' if inclusive else '>'} {minimum:g}, got {value!r}")
    if maximum is not None and value > maximum:
        raise JobSpecError(key, f"must be <= {maximum:g}, got {value!r}")
    return float(value)


def _choice(key: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise JobSpecError(key, f"expected one of {', '.join(choices)}, got {value!r}")
    return str(value)


def parse_spec(spec: Mapping[str, Any]) -> BacktestSpec:
    """Validate a spec (a dict, e.g. ``json_format.MessageToDict`` of the Struct). Raises
    :class:`JobSpecError` naming the first bad key."""
    refuse_unknown("", spec, SPEC_KEYS)
    for key in ("symbol", "start_ns", "end_ns"):
        if key not in spec:
            raise JobSpecError(key, "required")
    symbol = spec["symbol"]
    if not isinstance(symbol, str) or not _SYMBOL.fullmatch(symbol):
        raise JobSpecError("symbol", f"expected a symbol like AAPL or EURUSD, got {symbol!r}")
    start, end, source = spec_period_and_source(spec)

    def optional(key: str, parse: Any) -> Any:
        return None if spec.get(key) is None else parse(key, spec[key])

    return BacktestSpec(
        symbol=symbol,
        start_ns=start,
        end_ns=end,
        strategy_source=source,
        calendar=optional("calendar", lambda k, v: _choice(k, v, CALENDARS)),
        fee_bps=optional("fee_bps", lambda k, v: _number(k, v, minimum=0.0)),
        slippage_bps=optional("slippage_bps", lambda k, v: _number(k, v, minimum=0.0)),
        initial_cash=_number(
            "initial_cash", spec.get("initial_cash", 100_000.0), minimum=0.0, inclusive=False
        ),
        position_size=optional(
            "position_size", lambda k, v: _number(k, v, minimum=0.0, inclusive=False, maximum=1.0)
        ),
        direction=optional("direction", lambda k, v: _choice(k, v, DIRECTIONS)),
        permutations=spec_int("permutations", spec.get("permutations", 1000), minimum=0),
        seed=spec_int("seed", spec.get("seed", 0), minimum=0),
    )


def check_roles(roles: Iterable[str]) -> None:
    """Every role known and given once; every model file present (``strategy`` is optional).
    Raises :class:`JobSpecError` (key ``inputs``)."""
    seen: set[str] = set()
    for role in roles:
        if role in seen:
            raise JobSpecError("inputs", f"role {role!r} given twice")
        seen.add(role)
        if role.startswith(BARS_PREFIX):
            parse_bars_role(role)
        elif role != ROLE_STRATEGY and role not in MODEL_ROLES:
            raise JobSpecError(
                "inputs",
                f"unknown role {role!r}; known: strategy, {', '.join(MODEL_ROLES)}, bars/<SYMBOL>/<TF>",
            )
    absent = [r for r in MODEL_ROLES if r not in seen]
    if absent:
        raise JobSpecError("inputs", f"required input(s) missing: {', '.join(absent)}")


def missing_bars(symbol: str, timeframes: Iterable[str], roles: Iterable[str]) -> list[str]:
    """The ``bars/<symbol>/<TF>`` roles a strategy with ``timeframes`` needs that ``roles`` lacks."""
    return missing_bars_roles((bars_role(symbol, tf) for tf in timeframes), roles)
