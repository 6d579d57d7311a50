"""The one indicator registry: names, aliases, parameters, outputs, warm-up.

Every indicator is an :class:`IndicatorDef` registered here. Lookup is case-insensitive and knows
aliases (``bbands`` = ``bollinger_bands`` = ``BollingerBands``). Strategy validation, feature
building, training and inference all resolve indicators through :func:`lookup`, so there is one
name table in the whole system.

Contract of ``IndicatorDef.compute(bars, **params)``: returns a dict output-name → float64 array of
``len(bars)``; values before the indicator is defined are NaN; the value at bar ``t`` depends only on
bars ``0..t`` (no look-ahead).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ktrdr.research.bars import Bars


class UnknownIndicatorError(KeyError):
    """An indicator name that is neither a registered name nor an alias."""

    def __init__(self, name: str, known: list[str]):
        self.name = name
        self.known = known
        super().__init__(f"unknown indicator {name!r}; known: {', '.join(known)}")

    def __str__(self) -> str:
        return self.args[0]


class IndicatorParamError(ValueError):
    """A parameter that the indicator does not take, or a value of the wrong type or range."""


@dataclass(frozen=True)
class Param:
    """One indicator parameter. ``kind`` is ``int``, ``float``, ``str`` or ``bool``; bounds are inclusive."""

    name: str
    kind: type
    default: Any
    minimum: float | None = None
    maximum: float | None = None
    choices: tuple[str, ...] | None = None
    aliases: tuple[str, ...] = ()
    doc: str = ""
    inert: bool = False  # accepted (predecessor files write it) but has no effect; loaders warn


@dataclass(frozen=True)
class IndicatorDef:
    """An indicator: canonical lower-case ``name``, ``aliases``, ``params``, ordered ``outputs``."""

    name: str
    compute: Callable[..., dict[str, np.ndarray]]
    params: tuple[Param, ...]
    outputs: tuple[str, ...]
    default_output: str
    warmup: Callable[[Mapping[str, Any]], int]
    aliases: tuple[str, ...] = ()
    doc: str = ""
    #: Constraints between parameters (MACD's fast < slow): raises IndicatorParamError, or None.
    check: Callable[[Mapping[str, Any]], None] | None = None
    param_index: dict[str, Param] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        idx: dict[str, Param] = {}
        for p in self.params:
            for key in (p.name, *p.aliases):
                idx[key] = p
        object.__setattr__(self, "param_index", idx)

    def resolve_param(self, key: str, value: Any) -> tuple[str, Any]:
        """One parameter on its own: (canonical name, checked value). Constraints between
        parameters are not checked here (see :meth:`resolve_params`)."""
        p = self.param_index.get(key)
        if p is None:
            takes = ", ".join(q.name for q in self.params) or "none"
            raise IndicatorParamError(f"{self.name}: unknown parameter {key!r}; takes {takes}")
        return p.name, _check(self.name, p, value)

    def resolve_params(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """Defaults filled, aliases mapped to canonical names, types and ranges checked, then the
        constraints between parameters (``check``).

        Raises :class:`IndicatorParamError` naming the parameter and what was expected.
        """
        out = {p.name: p.default for p in self.params}
        for key, value in given.items():
            name, checked = self.resolve_param(key, value)
            out[name] = checked
        if self.check is not None:
            self.check(out)
        return out

    def __call__(self, bars: Bars, **params: Any) -> dict[str, np.ndarray]:
        return self.compute(bars, **self.resolve_params(params))


def _check(indicator: str, p: Param, value: Any) -> Any:
    where = f"{indicator}.{p.name}"
    if value is None:
        raise IndicatorParamError(
            f"{where}: no value given (null); leave the key out for the default {p.default!r}"
        )
    if p.kind is str:
        if not isinstance(value, str):
            raise IndicatorParamError(f"{where}: expected a string, got {value!r}")
        v = value.lower()
        if p.choices is not None and v not in p.choices:
            raise IndicatorParamError(f"{where}: expected one of {', '.join(p.choices)}, got {value!r}")
        return v
    if p.kind is bool:
        if not isinstance(value, bool):
            raise IndicatorParamError(f"{where}: expected true or false, got {value!r}")
        return value
    if isinstance(value, bool) or not isinstance(value, int | float):
        hint = " (a quoted number is text: write it without quotes)" if _is_number_text(value) else ""
        raise IndicatorParamError(f"{where}: expected a number, got {value!r}{hint}")
    if not math.isfinite(value):
        raise IndicatorParamError(f"{where}: expected a finite number, got {value!r}")
    if p.kind is int:
        if float(value) != int(value):
            raise IndicatorParamError(f"{where}: expected an integer, got {value!r}")
        value = int(value)
    else:
        value = float(value)
    if p.minimum is not None and value < p.minimum:
        raise IndicatorParamError(f"{where}: must be >= {p.minimum}, got {value!r}")
    if p.maximum is not None and value > p.maximum:
        raise IndicatorParamError(f"{where}: must be <= {p.maximum}, got {value!r}")
    return value


def _is_number_text(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        float(value)
    except ValueError:
        return False
    return True


#: What an indicator name or alias looks like.
NAME_PATTERN = re.compile(r"[A-Za-z][A-Za-z0-9_\-]+")

_REGISTRY: dict[str, IndicatorDef] = {}
_BY_KEY: dict[str, IndicatorDef] = {}


def _key(name: str) -> str:
    """Normalise a name for lookup: case-insensitive, ignoring ``_``, ``-`` and spaces."""
    return re.sub(r"[\s_\-]", "", name.lower())


def register(defn: IndicatorDef) -> IndicatorDef:
    """Add an indicator. Names and aliases must be unique after normalisation.

    Every name and alias must be a registered-style name (:data:`NAME_PATTERN`: a letter, then
    letters, digits, ``_`` or ``-``; at least two characters), and ``aliases`` a tuple of them (a
    bare string would be split into letters). A clash or a bad name raises ``ValueError`` and
    registers nothing.
    """
    if not isinstance(defn.aliases, tuple):
        raise ValueError(f"{defn.name}: aliases must be a tuple of names, got {defn.aliases!r}")
    for key in (defn.name, *defn.aliases):
        if not isinstance(key, str) or not NAME_PATTERN.fullmatch(key):
            raise ValueError(
                f"{defn.name}: indicator name {key!r} must match {NAME_PATTERN.pattern} "
                "(a letter, then letters, digits, '_' or '-')"
            )
    keys = {_key(key): key for key in (defn.name, *defn.aliases)}
    for k, key in keys.items():
        if k in _BY_KEY:
            raise ValueError(f"indicator name {key!r} already registered by {_BY_KEY[k].name}")
    for k in keys:
        _BY_KEY[k] = defn
    _REGISTRY[defn.name] = defn
    return defn


def lookup(name: str) -> IndicatorDef:
    """The indicator for a name or alias (case-insensitive). Raises :class:`UnknownIndicatorError`."""
    _load_catalogue()
    if not isinstance(name, str):
        raise UnknownIndicatorError(repr(name), known_names())
    defn = _BY_KEY.get(_key(name))
    if defn is None:
        raise UnknownIndicatorError(name, known_names())
    return defn


def known_names() -> list[str]:
    """Canonical names, sorted."""
    _load_catalogue()
    return sorted(_REGISTRY)


def _load_catalogue() -> None:
    # The catalogue modules register themselves on import.
    from ktrdr.research.indicators import catalogue  # noqa: F401
