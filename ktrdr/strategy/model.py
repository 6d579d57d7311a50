"""The normalized strategy: what every consumer (features, labels, trainer, backtest) reads.

The loader (:mod:`ktrdr.strategy.loader`) turns a YAML file of the reference v2 grammar or of the
explicit form into one :class:`Strategy`; every field here has its default filled and is validated.
Consumers never look at raw YAML. Frozen dataclasses; tuples, not lists.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, fields, is_dataclass
from typing import Any, Union, get_args, get_origin, get_type_hints


@dataclass(frozen=True)
class IndicatorSpec:
    """One indicator instance.

    ``id``: unique within the strategy, the prefix of its feature names (``rsi``, ``rsi_fast``).
    In the v2 grammar the id is the lower-cased ``name``. ``type``: canonical registry name.
    ``params``: every parameter, defaults filled (see ``IndicatorDef.resolve_params``).
    """

    id: str
    type: str
    params: dict[str, Any]


@dataclass(frozen=True)
class MembershipSpec:
    """One fuzzy set: ``name`` (``oversold``), ``type`` (triangular, trapezoidal, gaussian, sigmoid,
    left_shoulder, right_shoulder) and its ``parameters`` in the order the type defines."""

    name: str
    type: str
    parameters: tuple[float, ...]


@dataclass(frozen=True)
class FuzzyInputSpec:
    """Fuzzy sets applied to one indicator output.

    ``key``: the name used in feature columns (``rsi``, or ``macd_signal`` for a non-default
    output). ``indicator``: an :class:`IndicatorSpec` id. ``output``: one of that indicator's
    outputs. ``sets``: in definition order. ``transform``: what is fuzzified — ``"none"``: the
    output itself; ``"close_ratio"``: ``close / output`` (the reference grammar's meaning for
    ``sma``/``ema``, whose sets are written around 1.0).
    """

    key: str
    indicator: str
    output: str
    sets: tuple[MembershipSpec, ...]
    transform: str = "none"


@dataclass(frozen=True)
class DataSpec:
    """What the strategy trains on. ``timeframes`` fastest first; ``base_timeframe`` is the sample
    grid (the fastest). ``history_required``: warm-up bars of the base timeframe."""

    symbols: tuple[str, ...]
    timeframes: tuple[str, ...]
    base_timeframe: str
    history_required: int = 200


@dataclass(frozen=True)
class FeatureSpecConfig:
    """``model.features``: lags and optional extra inputs."""

    lookback_periods: int = 0
    include_price_context: bool = False
    scale_features: bool = False


@dataclass(frozen=True)
class ModelSpec:
    """``model``: an MLP of ``hidden_layers`` with ``activation`` and ``dropout`` after each hidden
    layer; 3 logits out. ``symbol_embedding_dim`` 0 = no symbol embedding."""

    type: str = "mlp"
    hidden_layers: tuple[int, ...] = (50, 25)
    activation: str = "relu"
    dropout: float = 0.2
    symbol_embedding_dim: int = 0
    features: FeatureSpecConfig = field(default_factory=FeatureSpecConfig)


@dataclass(frozen=True)
class EarlyStoppingSpec:
    """Stop when ``monitor`` (``val_loss`` or ``val_accuracy``) has not improved by more than
    ``min_delta`` for ``patience`` epochs; then restore the best epoch's weights."""

    monitor: str = "val_loss"
    patience: int = 10
    min_delta: float = 1e-4
    restore_best: bool = True


@dataclass(frozen=True)
class LrSchedulerSpec:
    """``step`` (step_size, gamma), ``exponential`` (gamma) or ``reduce_on_plateau`` (factor, patience)."""

    type: str
    step_size: int = 30
    gamma: float = 0.1
    factor: float = 0.5
    patience: int = 5


@dataclass(frozen=True)
class OptimSpec:
    """``model.training``: optimisation settings."""

    learning_rate: float = 1e-3
    batch_size: int = 32
    epochs: int = 100
    optimizer: str = "adam"
    weight_decay: float = 1e-4
    momentum: float = 0.9
    gradient_clip: float = 0.0
    early_stopping: EarlyStoppingSpec | None = None
    lr_scheduler: LrSchedulerSpec | None = None
    class_weights: str = "none"  # "none" | "balanced"
    seed: int = 0


@dataclass(frozen=True)
class LabelSpec:
    """``training.labels``: ``source`` ``zigzag`` (segment labels, threshold a fraction) or
    ``forward`` (forward-window labeler over ``lookahead`` bars). ``lookahead``: bars."""

    source: str = "zigzag"
    zigzag_threshold: float = 0.03
    label_lookahead: int = 20


@dataclass(frozen=True)
class SplitSpec:
    """``training.data_split``: chronological fractions per symbol, summing to 1. ``embargo``: bars
    dropped between parts; None = the minimum (label horizon + lookback)."""

    train: float = 0.7
    validation: float = 0.15
    test: float = 0.15
    embargo: int | None = None


@dataclass(frozen=True)
class DecisionSpec:
    """``decisions``: how class probabilities become trades (:mod:`ktrdr.research.backtest.decisions`).
    ``min_signal_separation`` is in bars of the base timeframe. ``direction``: ``long_only`` (SELL
    closes a long) or ``long_short`` (SELL goes short). ``position_size``: the fraction of equity a
    new position is given, in (0, 1]."""

    output_format: str = "classification"
    confidence_threshold: float = 0.5
    position_awareness: bool = True
    min_signal_separation: int = 0
    volume_filter: bool = False
    direction: str = "long_only"
    position_size: float = 1.0


@dataclass(frozen=True)
class Strategy:
    """A loaded, validated strategy. ``source``: where it came from (file path or ``<string>``)."""

    name: str
    data: DataSpec
    indicators: tuple[IndicatorSpec, ...]
    fuzzy: tuple[FuzzyInputSpec, ...]
    model: ModelSpec
    optim: OptimSpec
    labels: LabelSpec
    split: SplitSpec
    decisions: DecisionSpec = field(default_factory=DecisionSpec)
    description: str = ""
    version: str = ""
    hypothesis: str = ""
    scope: str = ""
    source: str = "<string>"

    def indicator(self, id_: str) -> IndicatorSpec:
        """The indicator with this id; KeyError if absent."""
        for spec in self.indicators:
            if spec.id == id_:
                return spec
        raise KeyError(id_)

    def to_dict(self) -> dict[str, Any]:
        """The normalized strategy as JSON-able plain data (tuples become lists)."""
        return _plain(asdict(self))


class StrategyDictError(ValueError):
    """Plain data that is not a :meth:`Strategy.to_dict` result; the message names the field."""


def strategy_from_dict(data: Mapping[str, Any]) -> Strategy:
    """The inverse of :meth:`Strategy.to_dict` (what a model directory's ``strategy.json`` holds):
    ``strategy_from_dict(s.to_dict()) == s``, also after a JSON round trip. A missing field takes
    its default; an unknown field or one of the wrong shape raises :class:`StrategyDictError`
    naming it (``strategy.data.symbols``). Values are not re-validated: the data was a validated
    strategy when it was written."""
    return _build(Strategy, data, "strategy")


def _build(cls: Any, data: Any, path: str) -> Any:
    if not isinstance(data, Mapping):
        raise StrategyDictError(f"{path}: expected an object, got {type(data).__name__}")
    names = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - names)
    if unknown:
        raise StrategyDictError(f"{path}.{unknown[0]}: unknown field")
    hints = get_type_hints(cls)
    try:
        return cls(**{k: _value(hints[k], v, f"{path}.{k}") for k, v in data.items()})
    except TypeError as exc:  # a required field missing
        raise StrategyDictError(f"{path}: {exc}") from None


def _value(hint: Any, value: Any, path: str) -> Any:
    if get_origin(hint) in (Union, types.UnionType):
        if value is None:
            return None
        hint = next(a for a in get_args(hint) if a is not type(None))
    if is_dataclass(hint):
        return _build(hint, value, path)
    if get_origin(hint) is tuple:
        if not isinstance(value, list | tuple):
            raise StrategyDictError(f"{path}: expected a list, got {type(value).__name__}")
        item = get_args(hint)[0]
        return tuple(_value(item, v, f"{path}[{i}]") for i, v in enumerate(value))
    return value


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value
