"""The pure work of a training request, run in worker threads (yaml, numpy, pyarrow load here).

:func:`prepare`: the strategy text with its ``--set`` overrides (and a symbols override) applied
and validated — an invalid document is INVALID_ARGUMENT, reason ``STRATEGY_INVALID``, one field
violation per issue as ``file:line:col: path: message`` — giving the document the host will load
(YAML, the overrides written in), the series the run needs and whether early stopping is on.

:func:`bar_blobs`: the cached bars of exactly the required ranges as Parquet blobs
(:func:`ktrdr.jobs.train.bars_to_parquet`) and their digests. :func:`request_digest`: what makes
two training requests the same (the document, the cached bars, the seed, the code version).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ktrdr import __version__
from ktrdr.excerpts import clip
from ktrdr.rpc.errors import ApiError, FieldViolation
from ktrdr.wire import StatusCode


@dataclass(frozen=True)
class Requirement:
    """One series the run needs: bars opening in ``[start_ns, end_ns)`` (warm-up included): the
    ``warmup_bars`` bars before ``run_start_ns`` warm indicators, lags and history up."""

    symbol: str
    timeframe: str
    start_ns: int
    end_ns: int
    run_start_ns: int = 0
    warmup_bars: int = 0

    @classmethod
    def of(cls, r: Any) -> Requirement:
        """From a :class:`ktrdr.strategy.SeriesRequirement`."""
        return cls(r.symbol, r.timeframe, r.start, r.end, r.run_start, r.warmup_bars)


@dataclass(frozen=True)
class Prepared:
    name: str
    document: str
    requirements: tuple[Requirement, ...]
    early_stopping: bool
    epochs: int


def invalid_strategy(messages: Sequence[str], omitted: int = 0) -> ApiError:
    """STRATEGY_INVALID with one ``source.content`` violation per message."""
    violations = [FieldViolation("strategy.content", m) for m in messages]
    if omitted:
        violations.append(FieldViolation("strategy.content", f"... and {omitted} more errors"))
    first = messages[0] if messages else "invalid strategy"
    return ApiError(StatusCode.INVALID_ARGUMENT, f"invalid strategy: {first}", "STRATEGY_INVALID", violations)


def prepare(
    text: str,
    source: str,
    overrides: Sequence[Mapping[str, str]],
    symbols: Sequence[str],
    start_ns: int,
    end_ns: int,
) -> Prepared:
    """See the module docstring. ``overrides``: ``{"path", "value"}`` items (already checked for form)."""
    import yaml  # type: ignore[import-untyped]

    from ktrdr.research.features import FeatureError, feature_spec
    from ktrdr.strategy import StrategyError, data_requirements, load_strategy_text
    from ktrdr.strategy.overrides import Override, apply_overrides
    from ktrdr.strategy.reader import Reader
    from ktrdr.strategy.yamltree import parse

    wanted = [Override(o["path"], o["value"]) for o in overrides]
    if symbols:
        # The whole entry becomes a plain list: a reference file's {mode: single, symbol: X} would
        # refuse a 'list' key, and a plain list means the same for every other spelling.
        wanted.append(Override("training_data.symbols", json.dumps(list(symbols))))
    try:
        loaded = load_strategy_text(text, source=source, overrides=wanted)
        feature_spec(loaded.strategy)
    except StrategyError as exc:
        raise invalid_strategy([str(i) for i in exc.issues], exc.omitted) from None
    except FeatureError as exc:
        raise invalid_strategy([clip(f"{source}: {exc}")]) from None
    root = parse(text)
    assert root is not None  # it loaded
    apply_overrides(root, wanted, Reader(source))
    document = yaml.safe_dump(root.value(), sort_keys=False, allow_unicode=True)
    if load_strategy_text(document, source=source).strategy != loaded.strategy:
        raise ApiError(StatusCode.INTERNAL, "the overridden document does not read back the same", "INTERNAL")
    strategy = loaded.strategy
    requirements = tuple(Requirement.of(r) for r in data_requirements(strategy, start_ns, end_ns))
    training = strategy.optim
    return Prepared(
        strategy.name, document, requirements, training.early_stopping is not None, training.epochs
    )


def bar_blobs(series: Mapping[tuple[str, str], Any]) -> dict[str, bytes]:
    """``bars/<SYMBOL>/<TF>`` role → Parquet bytes of each series (``(symbol, tf) -> Bars``)."""
    from ktrdr.jobs import train as wire

    return {wire.bars_role(symbol, tf): wire.bars_to_parquet(bars) for (symbol, tf), bars in series.items()}


def request_digest(document: str, data: Mapping[str, str], spec: Mapping[str, Any]) -> str:
    """SHA-256 over the document, the data (each series' range → the digest of its cache file), the
    job spec (period, seed, epochs) and the code version."""
    body = {
        "document": hashlib.sha256(document.encode()).hexdigest(),
        "data": dict(sorted(data.items())),
        "spec": {k: v for k, v in spec.items() if k != "options"},
        "code": __version__,
    }
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()
