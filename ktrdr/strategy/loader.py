"""Load a strategy file into the normalized :class:`~ktrdr.strategy.model.Strategy`.

Grammar: the reference "v2" files of the predecessor load unchanged, and an explicit form is
accepted alongside (see :mod:`ktrdr.strategy.inputs` for indicators and fuzzy sets, and
``docs/strategies.md``). Every key is either honoured, reported as a warning saying why it has no
effect, or rejected as unknown with a "did you mean". All errors of a file are collected and raised
together as one :class:`~ktrdr.strategy.issues.StrategyError`.

Sections and what happens to each key:

* ``name`` (required), ``description``, ``version``, ``hypothesis``: identity, kept for display.
  ``scope``: checked (universal, symbol_group, symbol_specific), kept, warned (no effect).
* ``training_data.symbols``: a list, or ``{mode: single, symbol}`` / ``{mode: multi_symbol, list}``.
  ``training_data.timeframes``: a list, or ``{mode: single, timeframe}`` /
  ``{mode: multi_timeframe, list, base_timeframe}``; ``base_timeframe`` must be the fastest.
  ``history_required``: warm-up bars of the base timeframe (default 200).
* ``model``: ``type`` mlp; ``architecture.{hidden_layers, activation, dropout}``;
  ``symbol_embedding_dim``; ``features.{lookback_periods, include_price_context, scale_features}``;
  ``training.{learning_rate, batch_size, epochs, optimizer, weight_decay, momentum, gradient_clip,
  early_stopping{monitor, patience, min_delta, restore_best}, lr_scheduler{type, ...},
  class_weights (none|balanced), seed}``.
* ``decisions``: ``output_format`` classification, ``confidence_threshold`` [0, 1],
  ``position_awareness``, ``filters.min_signal_separation`` (bars of the base timeframe),
  ``direction`` (long_only | long_short), ``position_size`` (fraction of equity, (0, 1]).
* ``training``: ``method`` supervised; ``labels.{source zigzag|forward, zigzag_threshold (0, 1),
  label_lookahead}`` (``label_lookahead`` is warned as ignored with ``source: zigzag``, whose
  horizon is measured on the data); ``data_split.{train, validation, test}`` summing to 1 (±1e-6), ``embargo``.
* Warned, no effect: ``deployment``, ``orchestrator``, ``risk_management``, ``backtesting``,
  ``training_data.{start_date, end_date}``, ``training_data.symbols.selection_criteria``,
  ``model.input_size``, ``model.architecture.output_activation``,
  ``model.features.{include_volume_context, include_raw_indicators, scaling_method}``,
  ``model.training.analytics``, ``training.fitness_metrics``, ``decisions.filters.volume_filter``;
  and ``include_price_context: true`` / ``scale_features: true``, which ask for something the
  feature builder does not do (features are fuzzy memberships, already in [0, 1]).

Limits (errors when crossed), so that any strategy is described in a bounded answer:
:data:`MAX_INDICATORS` indicators; :data:`MAX_FEATURES` model inputs (timeframes × fuzzy sets ×
(1 + ``lookback_periods``)); :data:`MAX_SERIES` series (symbols × timeframes); names (indicator ids,
fuzzy keys and sets) of at most :data:`~ktrdr.strategy.inputs.MAX_NAME_CHARS` characters; symbols as
:mod:`ktrdr.symbols` has them (any case).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ktrdr import symbols, timeframes
from ktrdr.excerpts import echo
from ktrdr.strategy.inputs import read_fuzzy, read_indicators, warn_unused
from ktrdr.strategy.issues import StrategyError, StrategyIssue
from ktrdr.strategy.model import (
    DataSpec,
    DecisionSpec,
    EarlyStoppingSpec,
    FeatureSpecConfig,
    FuzzyInputSpec,
    LabelSpec,
    LrSchedulerSpec,
    ModelSpec,
    OptimSpec,
    SplitSpec,
    Strategy,
)
from ktrdr.strategy.overrides import Override, annotate, apply_overrides
from ktrdr.strategy.reader import Reader, listing
from ktrdr.strategy.yamltree import YamlSyntaxError, YNode, parse

#: Limits on what one strategy may ask for, so that describing it (its normalized form, features
#: and data requirements) stays a bounded answer: indicators listed; model input features
#: (timeframes × fuzzy sets × (1 + lookback_periods)); series to load (symbols × timeframes).
MAX_INDICATORS = 1_000
MAX_FEATURES = 5_000
MAX_SERIES = 1_000

_NOT_USED_BY_TRAINING = "ktrdr trains and backtests what the command names; this block is not read"


@dataclass(frozen=True)
class LoadedStrategy:
    """A loaded strategy and the warnings about keys it accepted without effect.

    ``warnings`` holds the first :data:`~ktrdr.strategy.reader.MAX_ISSUES` found, in file order;
    ``omitted_warnings`` counts the rest.
    """

    strategy: Strategy
    warnings: list[StrategyIssue] = field(default_factory=list)
    omitted_warnings: int = 0

    def normalized(self) -> dict[str, Any]:
        """The normalized strategy as JSON-able data (every default filled)."""
        return self.strategy.to_dict()


def load_strategy_file(path: str | Path) -> LoadedStrategy:
    """Load a strategy file. Raises :class:`StrategyError` (also for an unreadable file)."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise StrategyError([StrategyIssue(str(p), 1, 1, "", f"cannot read file: {exc}")]) from None
    return load_strategy_text(text, source=str(p))


def load_strategy_text(
    text: str, source: str = "<string>", overrides: Sequence[Override] = ()
) -> LoadedStrategy:
    """Load a strategy from YAML text; ``source`` names it in messages. Raises :class:`StrategyError`.

    ``overrides`` (``--set``, :mod:`ktrdr.strategy.overrides`) replace values of the parsed
    document before it is read; issues about them name the override.
    """
    try:
        root = parse(text)
    except YamlSyntaxError as exc:
        raise StrategyError([StrategyIssue(source, exc.line, exc.column, "", str(exc))]) from None
    if root is None:
        raise StrategyError([StrategyIssue(source, 1, 1, "", "the document is empty")])
    r = Reader(source)
    applied = apply_overrides(root, overrides, r)
    strategy = _read_document(r, root)
    if r.errors or strategy is None:
        raise StrategyError(
            annotate(r.errors, applied) or [StrategyIssue(source, 1, 1, "", "invalid strategy")],
            r.omitted_errors,
        )
    warnings = sorted(annotate(r.warnings, applied), key=lambda i: (i.line, i.column))
    return LoadedStrategy(strategy, warnings, r.omitted_warnings)


def _read_document(r: Reader, root: YNode) -> Strategy | None:
    f = r.fields(
        root,
        (
            "name",
            "description",
            "version",
            "hypothesis",
            "scope",
            "training_data",
            "indicators",
            "fuzzy_sets",
            "model",
            "decisions",
            "training",
        ),
        {
            "deployment": "deployment targets are not used: a model runs on the symbols a command gives it",
            "orchestrator": _NOT_USED_BY_TRAINING,
            "risk_management": _NOT_USED_BY_TRAINING,
            "backtesting": "backtest settings come from the backtest command",
        },
    )
    if root.kind != "map":
        return None
    name = r.scalar(r.require(root, f, "name"), "str")
    if name is not None and not name:
        r.error(f["name"], "name must not be empty")
    scope = r.scalar(f.get("scope"), "str", "", choices=("universal", "symbol_group", "symbol_specific"))
    if "scope" in f:
        r.warn(f["scope"], "accepted but has no effect: informational only")
    data = _read_data(r, root, r.require(root, f, "training_data"))
    indicators = read_indicators(r, r.require(root, f, "indicators"))
    fuzzy = read_fuzzy(r, r.require(root, f, "fuzzy_sets"), indicators)
    warn_unused(r, indicators)
    model, optim = _read_model(r, f.get("model"))
    _check_extent(r, f, data, len(indicators), fuzzy, model.features.lookback_periods)
    labels, split = _read_training(r, f.get("training"))
    decisions = _read_decisions(r, f.get("decisions"), legacy="scope" in f or "deployment" in root_keys(root))
    if r.errors or name is None or data is None:
        return None
    return Strategy(
        name=name,
        data=data,
        indicators=tuple(i.spec for i in indicators.values() if i is not None),
        fuzzy=tuple(fuzzy),
        model=model,
        optim=optim,
        labels=labels,
        split=split,
        decisions=decisions,
        description=r.scalar(f.get("description"), "str", ""),
        version=_text(f.get("version")),
        hypothesis=r.scalar(f.get("hypothesis"), "str", ""),
        scope=scope,
        source=r.source,
    )


def _check_extent(
    r: Reader,
    f: dict[str, YNode],
    data: DataSpec | None,
    indicator_count: int,
    fuzzy: list[FuzzyInputSpec],
    lookback: int,
) -> None:
    """Errors for a strategy over :data:`MAX_INDICATORS`, :data:`MAX_FEATURES` or :data:`MAX_SERIES`."""
    if indicator_count > MAX_INDICATORS:
        r.error(f["indicators"], f"{indicator_count:,} indicators, over the limit of {MAX_INDICATORS:,}")
    if data is None:
        return
    sets = sum(len(fi.sets) for fi in fuzzy)
    features = len(data.timeframes) * sets * (1 + lookback)
    if features > MAX_FEATURES:
        r.error(
            f["fuzzy_sets"],
            f"the model would have {features:,} input features (timeframes × fuzzy sets × "
            f"(1 + lookback_periods) = {len(data.timeframes)} × {sets:,} × (1 + {lookback:,})), "
            f"over the limit of {MAX_FEATURES:,}",
        )
    series = len(data.symbols) * len(data.timeframes)
    if series > MAX_SERIES:
        r.error(
            f["training_data"],
            f"{series:,} series to load (symbols × timeframes = {len(data.symbols):,} × "
            f"{len(data.timeframes)}), over the limit of {MAX_SERIES:,}",
        )


def root_keys(root: YNode) -> set[str]:
    return {str(e.key) for e in root.entries()}


def _text(node: YNode | None) -> str:
    """A free-text scalar that YAML may have typed as a number (``version: 2.0``)."""
    if node is None or node.kind != "scalar":
        return ""
    value = node.value()
    return "" if value is None else str(value)


def _read_data(r: Reader, root: YNode, node: YNode | None) -> DataSpec | None:
    f = r.fields(
        node,
        ("symbols", "timeframes", "history_required"),
        {
            "start_date": "the date range comes from the command (--start/--end)",
            "end_date": "the date range comes from the command (--start/--end)",
        },
    )
    if node is None or node.kind != "map":
        return None
    symbols = _read_list_or_mode(r, node, f, "symbols", "symbol", ("single", "multi_symbol"))
    tfs = _read_list_or_mode(r, node, f, "timeframes", "timeframe", ("single", "multi_timeframe"))
    history = r.scalar(f.get("history_required"), "int", 200, minimum=0)
    symbol_list = _checked_items(r, symbols, "symbol", _check_symbol)
    tf_list = _checked_items(r, tfs, "timeframe", _check_timeframe)
    if not symbol_list or not tf_list:
        return None
    ordered = timeframes.sort_fastest_first(tf_list)
    base = ordered[0]
    base_node = tfs.fields.get("base_timeframe") if tfs is not None else None
    written = r.scalar(base_node, "str")
    if base_node is not None and written is not None:
        if written not in ordered:
            r.error(base_node, f"base_timeframe {echo(written)} is not in the list ({listing(ordered)})")
        elif written != base:
            r.error(
                base_node, f"base_timeframe must be the fastest timeframe ({base!r}): samples are its bars"
            )
    return DataSpec(tuple(symbol_list), tuple(ordered), base, history)


@dataclass
class _Listed:
    """Items of a ``symbols``/``timeframes`` entry; ``at`` is where to point when it is empty."""

    at: YNode
    items: list[YNode]
    fields: dict[str, YNode]


def _read_list_or_mode(
    r: Reader, parent: YNode, f: dict[str, YNode], key: str, single_key: str, modes: tuple[str, str]
) -> _Listed | None:
    """A plain list, or the reference ``{mode, <single_key> | list}`` mapping."""
    node = r.require(parent, f, key)
    if node is None:
        return None
    if node.kind == "seq":
        return _Listed(node, node.items(), {})
    known = ["mode", single_key, "list"] + (["base_timeframe"] if key == "timeframes" else [])
    no_effect = {"selection_criteria": "criteria are not evaluated; the listed symbols are used"}
    sub = r.fields(node, known, no_effect if key == "symbols" else {})
    if node.kind != "map":
        return None
    mode = r.scalar(sub.get("mode"), "str", choices=modes)
    if mode == modes[0] or (mode is None and single_key in sub):
        if "list" in sub:
            r.error(sub["list"], f"mode {modes[0]!r} takes '{single_key}', not 'list'")
        one = r.require(node, sub, single_key)
        return _Listed(node, [one], sub) if one is not None else None
    if single_key in sub:
        r.error(sub[single_key], f"mode {mode or modes[1]!r} takes 'list', not '{single_key}'")
    list_node = r.require(node, sub, "list")
    items = r.seq(list_node)
    return None if items is None else _Listed(list_node, items, sub)


def _check_symbol(s: str) -> str:
    """Any case is accepted (``eurusd``: the daemon stores ``EURUSD``); blanks around it are not."""
    if symbols.is_symbol(s.upper()):
        return ""
    return f"symbol {echo(s)} must be {symbols.RULE}"


def _check_timeframe(t: str) -> str:
    try:
        timeframes.parse(t)
    except timeframes.TimeframeError as exc:
        return str(exc)
    return ""


def _checked_items(r: Reader, listed: _Listed | None, what: str, check) -> list[str]:
    """The distinct valid strings of ``listed``; errors for bad, duplicate or no items."""
    if listed is None:
        return []
    if not listed.items:
        r.error(listed.at, f"empty {what} list: a strategy needs at least one {what}")
        return []
    out: dict[str, None] = {}  # ordered, with constant-time membership
    for n in listed.items:
        s = r.scalar(n, "str")
        if s is None:
            continue
        problem = check(s)
        if problem:
            r.error(n, problem)
        elif s in out:
            r.error(n, f"{what} {echo(s)} listed twice")
        else:
            out[s] = None
    return list(out)


def _read_model(r: Reader, node: YNode | None) -> tuple[ModelSpec, OptimSpec]:
    f = r.fields(
        node,
        ("type", "architecture", "features", "training", "symbol_embedding_dim"),
        {"input_size": "the input size is computed from the features"},
    )
    d = ModelSpec()
    r.scalar(f.get("type"), "str", choices=("mlp",))
    a = r.fields(
        f.get("architecture"),
        ("hidden_layers", "activation", "dropout"),
        {"output_activation": "the network outputs logits; probabilities are their softmax"},
    )
    hidden = _int_list(r, a.get("hidden_layers"), d.hidden_layers)
    x = r.fields(
        f.get("features"),
        ("lookback_periods", "include_price_context", "scale_features"),
        {
            "include_volume_context": "features are fuzzy memberships only",
            "include_raw_indicators": "features are fuzzy memberships only",
            "scaling_method": "features are fuzzy memberships, already in [0, 1]",
        },
    )
    features = FeatureSpecConfig(
        lookback_periods=r.scalar(x.get("lookback_periods"), "int", 0, minimum=0),
        include_price_context=r.scalar(x.get("include_price_context"), "bool", False),
        scale_features=r.scalar(x.get("scale_features"), "bool", False),
    )
    if features.include_price_context:
        r.warn(x["include_price_context"], "accepted but has no effect: features are fuzzy memberships only")
    if features.scale_features:
        r.warn(x["scale_features"], "accepted but has no effect: fuzzy memberships are already in [0, 1]")
    model = ModelSpec(
        hidden_layers=hidden,
        activation=r.scalar(a.get("activation"), "str", d.activation, choices=_ACTIVATIONS),
        dropout=r.scalar(a.get("dropout"), "float", d.dropout, minimum=0.0, below=1.0),
        symbol_embedding_dim=r.scalar(f.get("symbol_embedding_dim"), "int", 0, minimum=0),
        features=features,
    )
    return model, _read_optim(r, f.get("training"))


_ACTIVATIONS = ("relu", "tanh", "sigmoid", "leaky_relu")
_SCHEDULER_KEYS = {
    "step": ("step_size", "gamma"),
    "exponential": ("gamma",),
    "reduce_on_plateau": ("factor", "patience"),
}


def _int_list(r: Reader, node: YNode | None, default: tuple[int, ...]) -> tuple[int, ...]:
    items = r.seq(node)
    if items is None:
        return default
    if not items:
        r.error(node, "expected at least one hidden layer size")
        return default
    values = [r.scalar(n, "int", minimum=1) for n in items]
    return default if any(v is None for v in values) else tuple(values)


def _read_optim(r: Reader, node: YNode | None) -> OptimSpec:
    f = r.fields(
        node,
        (
            "learning_rate",
            "batch_size",
            "epochs",
            "optimizer",
            "weight_decay",
            "momentum",
            "gradient_clip",
            "early_stopping",
            "lr_scheduler",
            "class_weights",
            "seed",
        ),
        {"analytics": "training diagnostics are reported as metrics, not exported separately"},
    )
    d = OptimSpec()
    return OptimSpec(
        learning_rate=r.scalar(f.get("learning_rate"), "float", d.learning_rate, above=0.0),
        batch_size=r.scalar(f.get("batch_size"), "int", d.batch_size, minimum=1),
        epochs=r.scalar(f.get("epochs"), "int", d.epochs, minimum=1),
        optimizer=r.scalar(
            f.get("optimizer"), "str", d.optimizer, choices=("adam", "adamw", "sgd", "rmsprop")
        ),
        weight_decay=r.scalar(f.get("weight_decay"), "float", d.weight_decay, minimum=0.0),
        momentum=r.scalar(f.get("momentum"), "float", d.momentum, minimum=0.0, below=1.0),
        gradient_clip=r.scalar(f.get("gradient_clip"), "float", d.gradient_clip, minimum=0.0),
        early_stopping=_read_early_stopping(r, f.get("early_stopping")),
        lr_scheduler=_read_scheduler(r, f.get("lr_scheduler")),
        class_weights=r.scalar(f.get("class_weights"), "str", d.class_weights, choices=("none", "balanced")),
        seed=r.scalar(f.get("seed"), "int", d.seed, minimum=0),
    )


def _read_early_stopping(r: Reader, node: YNode | None) -> EarlyStoppingSpec | None:
    """A mapping, or ``true`` (defaults) / ``false`` (off). Absent = off."""
    if node is not None and node.kind == "scalar" and isinstance(node.value(), bool):
        return EarlyStoppingSpec() if node.value() else None
    f = r.fields(node, ("monitor", "patience", "min_delta", "restore_best", "enabled"))
    if node is None or node.kind != "map" or not r.scalar(f.get("enabled"), "bool", True):
        return None
    d = EarlyStoppingSpec()
    return EarlyStoppingSpec(
        monitor=r.scalar(f.get("monitor"), "str", d.monitor, choices=("val_loss", "val_accuracy")),
        patience=r.scalar(f.get("patience"), "int", d.patience, minimum=1),
        min_delta=r.scalar(f.get("min_delta"), "float", d.min_delta, minimum=0.0),
        restore_best=r.scalar(f.get("restore_best"), "bool", d.restore_best),
    )


def _read_scheduler(r: Reader, node: YNode | None) -> LrSchedulerSpec | None:
    if node is None or node.kind != "map":
        r.fields(node, ())  # reports a non-mapping
        return None
    entries = {str(e.key): e.value for e in node.entries()}
    type_ = r.scalar(r.require(node, entries, "type"), "str", choices=tuple(_SCHEDULER_KEYS))
    if type_ is None:
        return None
    f = r.fields(node, ("type", *_SCHEDULER_KEYS[type_]))
    d = LrSchedulerSpec(type_)
    return LrSchedulerSpec(
        type=type_,
        step_size=r.scalar(f.get("step_size"), "int", d.step_size, minimum=1),
        gamma=r.scalar(f.get("gamma"), "float", d.gamma, above=0.0, maximum=1.0),
        factor=r.scalar(f.get("factor"), "float", d.factor, above=0.0, below=1.0),
        patience=r.scalar(f.get("patience"), "int", d.patience, minimum=0),
    )


def _read_decisions(r: Reader, node: YNode | None, legacy: bool) -> DecisionSpec:
    """``legacy``: the file is written for the predecessor (has ``scope``/``deployment``), whose
    ``min_signal_separation`` meant hours; say that it now means bars."""
    f = r.fields(
        node,
        (
            "output_format",
            "confidence_threshold",
            "position_awareness",
            "filters",
            "direction",
            "position_size",
        ),
    )
    x = r.fields(
        f.get("filters"),
        ("min_signal_separation",),
        {"volume_filter": "no volume filter exists; signals are not filtered by volume"},
    )
    d = DecisionSpec()
    sep_node = x.get("min_signal_separation")
    sep = r.scalar(sep_node, "int", d.min_signal_separation, minimum=0)
    if sep_node is not None and sep and legacy:
        r.warn(sep_node, "counted in bars of the base timeframe (the predecessor counted hours)")
    r.scalar(f.get("output_format"), "str", choices=("classification",))
    return DecisionSpec(
        confidence_threshold=r.scalar(
            f.get("confidence_threshold"), "float", d.confidence_threshold, minimum=0.0, maximum=1.0
        ),
        position_awareness=r.scalar(f.get("position_awareness"), "bool", d.position_awareness),
        min_signal_separation=sep,
        direction=r.scalar(f.get("direction"), "str", d.direction, choices=("long_only", "long_short")),
        position_size=r.scalar(f.get("position_size"), "float", d.position_size, above=0.0, maximum=1.0),
    )


def _read_training(r: Reader, node: YNode | None) -> tuple[LabelSpec, SplitSpec]:
    f = r.fields(
        node,
        ("method", "labels", "data_split"),
        {"fitness_metrics": "the reported metrics are fixed (accuracy, per-class precision/recall/F1, ...)"},
    )
    r.scalar(f.get("method"), "str", choices=("supervised",))
    lf = r.fields(f.get("labels"), ("source", "zigzag_threshold", "label_lookahead"))
    dl = LabelSpec()
    labels = LabelSpec(
        source=r.scalar(lf.get("source"), "str", dl.source, choices=("zigzag", "forward")),
        zigzag_threshold=r.scalar(
            lf.get("zigzag_threshold"), "float", dl.zigzag_threshold, above=0.0, below=1.0
        ),
        label_lookahead=r.scalar(lf.get("label_lookahead"), "int", dl.label_lookahead, minimum=1),
    )
    if labels.source == "zigzag" and "label_lookahead" in lf:
        r.warn(
            lf["label_lookahead"],
            "ignored by ZigZag labels: a ZigZag label waits as long as its segment lasts; the "
            "horizon is measured on the data when training and stated in the training report",
        )
    split_node = f.get("data_split")
    sf = r.fields(split_node, ("train", "validation", "test", "embargo"))
    ds = SplitSpec()
    parts = {
        k: r.scalar(sf.get(k), "float", getattr(ds, k), minimum=0.0, maximum=1.0)
        for k in ("train", "validation", "test")
    }
    total = sum(parts.values())
    if split_node is not None and abs(total - 1.0) > 1e-6:
        shown = " + ".join(f"{parts[k]:g}" for k in parts)
        r.error(split_node, f"split fractions must sum to 1, got {shown} = {total:g}")
    if parts["train"] <= 0:
        r.error(sf.get("train") or split_node or node, "the train fraction must be > 0")
    embargo = r.scalar(sf.get("embargo"), "int", None, minimum=0)
    return labels, SplitSpec(parts["train"], parts["validation"], parts["test"], embargo)
