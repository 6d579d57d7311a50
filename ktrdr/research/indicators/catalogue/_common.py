"""Helpers shared by catalogue modules: standard parameters, price sources, registration."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ktrdr.research.bars import Bars
from ktrdr.research.indicators.registry import IndicatorDef, IndicatorParamError, Param, register

SOURCES = ("close", "open", "high", "low", "hl2", "hlc3", "ohlc4", "volume")


def source_param(default: str = "close", *, inert: bool = False) -> Param:
    """The ``source`` parameter: which price series the indicator reads."""
    doc = "ignored: this indicator is defined on high/low/close" if inert else "price series to use"
    return Param("source", str, default, choices=SOURCES, doc=doc, inert=inert)


def inert_flag(name: str, default: bool, doc: str) -> Param:
    """A true/false option the predecessor's files write that changes nothing here (``doc`` says
    why); the strategy loader reports it as a warning."""
    return Param(name, bool, default, doc=doc, inert=True)


def period(default: int, name: str = "period", minimum: int = 1, aliases: tuple[str, ...] = ()) -> Param:
    """An integer look-back length in bars."""
    return Param(name, int, default, minimum=minimum, maximum=100_000, aliases=aliases, doc="bars")


def price(bars: Bars, source: str) -> np.ndarray:
    """The price series named by ``source`` as float64 (a view for plain columns)."""
    if source in ("close", "open", "high", "low", "volume"):
        return np.asarray(getattr(bars, source), dtype=np.float64)
    if source == "hl2":
        return (bars.high + bars.low) / 2.0
    if source == "hlc3":
        return (bars.high + bars.low + bars.close) / 3.0
    return (bars.open + bars.high + bars.low + bars.close) / 4.0


def require_less(name: str, small: str, a: int, large: str, b: int) -> None:
    """Raise :class:`IndicatorParamError` unless ``a < b`` (e.g. MACD's fast < slow period)."""
    if not a < b:
        raise IndicatorParamError(f"{name}: {small} ({a}) must be less than {large} ({b})")


def define(
    name: str,
    compute: Callable[..., dict[str, np.ndarray]],
    params: tuple[Param, ...],
    outputs: tuple[str, ...],
    warmup: Callable[[Mapping[str, Any]], int],
    *,
    aliases: tuple[str, ...] = (),
    doc: str = "",
    check: Callable[[Mapping[str, Any]], None] | None = None,
) -> IndicatorDef:
    """Register an indicator whose outputs are all NaN before ``warmup(params)`` and defined after.

    ``compute`` returns the outputs in any order; the wrapper orders them as ``outputs`` (the first
    is the default), converts to float64 and blanks the warm-up so every output of an indicator
    becomes defined at the same bar. ``compute`` is not given the *inert* parameters.
    """
    inert = {p.name for p in params if p.inert}

    def run(bars: Bars, **p: Any) -> dict[str, np.ndarray]:
        raw = compute(bars, **{key: value for key, value in p.items() if key not in inert})
        w = min(warmup(p), len(bars))
        result = {}
        for out in outputs:
            arr = np.asarray(raw[out], dtype=np.float64)
            if not arr.flags.writeable:
                arr = arr.copy()
            arr[:w] = np.nan
            result[out] = arr
        return result

    return register(
        IndicatorDef(
            name=name,
            compute=run,
            params=params,
            outputs=outputs,
            default_output=outputs[0],
            warmup=warmup,
            aliases=aliases,
            doc=doc or (compute.__doc__ or "").strip(),
            check=check,
        )
    )
