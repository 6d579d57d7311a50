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
* ``windows`` (optional, a walk-forward): the test windows ``[{"start_ns", "end_ns"}, …]`` (decimal
  strings), contiguous, the first starting at ``start_ns`` and the last ending at ``end_ns``, at
  most :data:`MAX_WINDOWS`. Window k is backtested with model k (inputs ``model/<k>/<FILE>``) and
  the windows are stitched into one backtest (:func:`ktrdr.research.backtest.walkforward.stitch`).

**Inputs** (``JobInput.role`` → a content-addressed blob):

* ``strategy`` (optional): a strategy document (UTF-8 YAML) to backtest the model with — e.g. the
  same features under other ``decisions``; absent = the strategy the model was trained with (its
  ``strategy.json``). Either way its feature builder must produce the model's feature spec exactly
  (else the job is refused, reason ``FEATURE_SPEC_MISMATCH``) and its ``decisions`` section decides.
* ``model/<FILE>``: each file of the model directory (:data:`MODEL_ROLES`, the
  :mod:`ktrdr.research.artifacts` format a registry version stores), all required; with
  ``windows``, ``model/<k>/<FILE>`` for every window k instead (:func:`model_roles`). Every model
  must have the strategy's feature spec.
* ``bars/<SYMBOL>/<TF>``: as for the train job (:func:`ktrdr.jobs.train.bars_to_parquet`), one per
  timeframe of the strategy for ``symbol``; bars before ``start_ns`` warm the features up.

**Artifacts** (:data:`ARTIFACTS`): ``report.json`` (the result plus the trade list),
``trades.csv`` (:data:`TRADE_COLUMNS`), ``equity.csv`` (:data:`EQUITY_COLUMNS`, one row per
simulated bar), ``plot.png`` (equity vs buy-and-hold, trades, drawdown).

**Result** (``Job.result``): :data:`RESULT_KEYS`: ``metrics`` is the backtest metric set
(docs/backtesting.md) with ``uncertainty`` and ``costs``; ``classifier`` the model's
classification metrics on the same bars (accuracy beside the majority and persistence baselines,
as in training's evaluation). With ``windows``, all of it is the stitched backtest's, and
``windows`` adds per test window its ``range`` (first, last, bars), ``total_return``, ``sharpe``
(null when unbounded) and ``trades``.
"""

from __future__ import annotations

import math
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
from ktrdr.symbols import is_symbol

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
    "windows",
)
#: Most test windows one walk-forward job takes.
MAX_WINDOWS = 1000
CALENDARS = ("XNYS", "forex", "crypto")
DIRECTIONS = ("long_only", "long_short")


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
    #: Walk-forward test windows ``(start_ns, end_ns)``; empty = one plain backtest.
    windows: tuple[tuple[int, int], ...] = ()

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
        if self.windows:
            out["windows"] = [{"start_ns": str(lo), "end_ns": str(hi)} for lo, hi in self.windows]
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
    if not is_symbol(symbol):
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
        windows=_windows(spec.get("windows"), start, end),
    )


def _windows(value: Any, start_ns: int, end_ns: int) -> tuple[tuple[int, int], ...]:
    """The ``windows`` of the module docstring, checked (JobSpecError naming ``windows[k]``)."""
    if value is None:
        return ()
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_WINDOWS:
        raise JobSpecError("windows", f"expected a list of 1 to {MAX_WINDOWS} windows, got {value!r}")
    out: list[tuple[int, int]] = []
    cursor = start_ns
    for k, window in enumerate(value):
        key = f"windows[{k}]"
        if not isinstance(window, Mapping):
            raise JobSpecError(key, f"expected an object with start_ns and end_ns, got {window!r}")
        refuse_unknown(key, window, ("start_ns", "end_ns"))
        lo = spec_int(f"{key}.start_ns", window.get("start_ns"))
        hi = spec_int(f"{key}.end_ns", window.get("end_ns"))
        if lo != cursor:
            raise JobSpecError(
                f"{key}.start_ns", f"must be {cursor} (where the previous window ends), got {lo}"
            )
        if hi <= lo:
            raise JobSpecError(f"{key}.end_ns", f"must be after its start_ns ({lo}), got {hi}")
        out.append((lo, hi))
        cursor = hi
    if cursor != end_ns:
        raise JobSpecError("windows", f"the last window must end at end_ns ({end_ns}), got {cursor}")
    return tuple(out)


def model_roles(windows: int = 0) -> list[tuple[str, ...]]:
    """The model input roles, per model: :data:`MODEL_ROLES` for a plain backtest, or
    ``model/<k>/<FILE>`` for each of ``windows`` walk-forward windows."""
    if not windows:
        return [MODEL_ROLES]
    return [tuple(f"{MODEL_PREFIX}{k}/{name}" for name in MODEL_FILES) for k in range(windows)]


def check_roles(roles: Iterable[str], windows: int = 0) -> None:
    """Every role known and given once; every model file present (:func:`model_roles` of
    ``windows``; ``strategy`` is optional). Raises :class:`JobSpecError` (key ``inputs``)."""
    wanted = [role for model in model_roles(windows) for role in model]
    seen: set[str] = set()
    for role in roles:
        if role in seen:
            raise JobSpecError("inputs", f"role {role!r} given twice")
        seen.add(role)
        if role.startswith(BARS_PREFIX):
            parse_bars_role(role)
        elif role != ROLE_STRATEGY and role not in wanted:
            known = ", ".join(MODEL_ROLES) if not windows else f"model/<0..{windows - 1}>/<FILE>"
            raise JobSpecError(
                "inputs", f"unknown role {role!r}; known: strategy, {known}, bars/<SYMBOL>/<TF>"
            )
    absent = [r for r in wanted if r not in seen]
    if absent:
        raise JobSpecError("inputs", f"required input(s) missing: {', '.join(absent)}")


def missing_bars(symbol: str, timeframes: Iterable[str], roles: Iterable[str]) -> list[str]:
    """The ``bars/<symbol>/<TF>`` roles a strategy with ``timeframes`` needs that ``roles`` lacks."""
    return missing_bars_roles((bars_role(symbol, tf) for tf in timeframes), roles)
