"""The ``train`` job on the wire: what the daemon sends a training host and what it gets back.

Both sides import this module (it needs only the standard library; reading and writing bar blobs
imports pyarrow when called). A training host runs the job with
:func:`ktrdr.research.train.train_on_bars`, the function the library entry point runs too.

**Spec** (``StartJobRequest.spec``, a ``google.protobuf.Struct``; unknown keys are refused):

* ``strategy_source`` (string, optional, default ``"strategy"``): the strategy file's name, used in
  messages (``neuro_mean_reversion.yaml:12:3: ...``).
* ``start_ns``, ``end_ns`` (required): the run's base bars open in ``[start_ns, end_ns)``, int
  nanoseconds since the epoch UTC, written as decimal strings (a Struct number is a double and
  would lose nanoseconds); ints are accepted too. ``start_ns < end_ns``.
* ``seed`` (int, optional): overrides the strategy's training seed.
* ``epochs`` (int ≥ 1, optional): overrides the strategy's epoch count.
* ``options`` (object, optional): ``checkpoint_every`` (int ≥ 0 epochs between checkpoints,
  default 1; 0 = only on cancel/stop), ``progress_interval_s`` (number > 0, default 0.5),
  ``mixed_precision`` (bool, default true: bf16 autocast on CUDA).

**Inputs** (``JobInput.role`` → a content-addressed blob):

* ``strategy``: the strategy document (UTF-8 YAML text, as the user's file after overrides).
* ``bars/<SYMBOL>/<TF>``: one per series the strategy needs (every symbol × timeframe), a Parquet
  file in the bar cache's layout (``time`` int64 ns UTC, then ``open high low close volume``
  float64, sorted by time), as :func:`bars_to_parquet` writes it. It may hold more bars than the
  run needs; the job cuts the warm-up window itself, exactly as the library entry point does.
* ``checkpoint`` (optional): a checkpoint an earlier job with the same spec and bars wrote (the
  artifact :data:`CHECKPOINT`); the job continues from it and ends with the same weights and
  metrics as an uninterrupted run.

**Artifacts**: the files of the model directory (:data:`MODEL_FILES`,
:mod:`ktrdr.research.artifacts` format) and :data:`CHECKPOINT` while the job has one.

**Result** (``Job.result``): :data:`RESULT_KEYS`, the summary of
:func:`ktrdr.research.train.summary` without ``model_dir`` (the model is the artifacts).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ktrdr.symbols import PATTERN as SYMBOL_PATTERN

if TYPE_CHECKING:
    from ktrdr.research.bars import Bars

KIND = "train"

ROLE_STRATEGY = "strategy"
ROLE_CHECKPOINT = "checkpoint"
BARS_PREFIX = "bars/"
_BARS_ROLE = re.compile(rf"bars/({SYMBOL_PATTERN.pattern})/([0-9]+[a-zA-Z]+)")

#: The model directory's files (kept equal to ``ktrdr.research.artifacts.FILES``; a test checks).
MODEL_FILES = ("weights.pt", "strategy.json", "feature_spec.json", "metrics.json", "manifest.json")
CHECKPOINT = "checkpoint.pt"

#: The keys of ``Job.result`` (the library summary without ``model_dir``; a test checks).
RESULT_KEYS = (
    "strategy",
    "parameters",
    "features",
    "device",
    "epochs_trained",
    "best_epoch",
    "samples_per_s",
    "splits",
    "verdict_split",
    "verdict",
    "warmup",
    "ranges",
    "embargo",
    "label_source",
    "label_horizon",
    "skill_horizon",
    "timings",
    "warnings",
)

#: The value columns of a bars input after ``time`` (int64 ns).
BAR_COLUMNS = ("open", "high", "low", "close", "volume")

SPEC_KEYS = ("strategy_source", "start_ns", "end_ns", "seed", "epochs", "options")
OPTION_KEYS = ("checkpoint_every", "progress_interval_s", "mixed_precision")


class JobSpecError(ValueError):
    """A spec or input that cannot describe a job (train or backtest); ``key`` names it
    (``options.checkpoint_every``, ``inputs``)."""

    def __init__(self, key: str, description: str) -> None:
        super().__init__(f"{key}: {description}")
        self.key = key
        self.description = description


@dataclass(frozen=True)
class TrainOptionsSpec:
    """How the job runs (see the module docstring's ``options``)."""

    checkpoint_every: int = 1
    progress_interval_s: float = 0.5
    mixed_precision: bool = True


@dataclass(frozen=True)
class TrainSpec:
    """A validated spec."""

    start_ns: int
    end_ns: int
    strategy_source: str = "strategy"
    seed: int | None = None
    epochs: int | None = None
    options: TrainOptionsSpec = TrainOptionsSpec()

    def to_struct_dict(self) -> dict[str, Any]:
        """The spec as Struct-safe data (what :func:`parse_spec` reads back)."""
        out: dict[str, Any] = {
            "strategy_source": self.strategy_source,
            "start_ns": str(self.start_ns),
            "end_ns": str(self.end_ns),
            "options": {
                "checkpoint_every": self.options.checkpoint_every,
                "progress_interval_s": self.options.progress_interval_s,
                "mixed_precision": self.options.mixed_precision,
            },
        }
        if self.seed is not None:
            out["seed"] = self.seed
        if self.epochs is not None:
            out["epochs"] = self.epochs
        return out


def spec_int(key: str, value: Any, *, minimum: int | None = None) -> int:
    """An int from an int, an integral float (Struct numbers) or a decimal string."""
    if isinstance(value, bool):
        raise JobSpecError(key, f"expected an integer, got {value!r}")
    integral_float = isinstance(value, float) and value.is_integer() and abs(value) < 2**53
    decimal = isinstance(value, str) and re.fullmatch(r"-?[0-9]+", value) is not None
    if isinstance(value, int) or integral_float or decimal:
        out = int(value)
    else:
        raise JobSpecError(key, f"expected an integer (or a decimal string), got {value!r}")
    if minimum is not None and out < minimum:
        raise JobSpecError(key, f"must be >= {minimum}, got {out}")
    return out


def refuse_unknown(key: str, given: Iterable[str], known: tuple[str, ...]) -> None:
    """JobSpecError naming the first key of ``given`` (under ``key``) that is not in ``known``."""
    extra = sorted(set(given) - set(known))
    if extra:
        name = f"{key}.{extra[0]}" if key else extra[0]
        raise JobSpecError(name, f"unknown key; known: {', '.join(known)}")


def _options(value: Any) -> TrainOptionsSpec:
    if value is None:
        return TrainOptionsSpec()
    if not isinstance(value, Mapping):
        raise JobSpecError("options", f"expected an object, got {value!r}")
    refuse_unknown("options", value, OPTION_KEYS)
    default = TrainOptionsSpec()
    every = value.get("checkpoint_every", default.checkpoint_every)
    interval = value.get("progress_interval_s", default.progress_interval_s)
    amp = value.get("mixed_precision", default.mixed_precision)
    if isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0:
        raise JobSpecError("options.progress_interval_s", f"expected a number > 0, got {interval!r}")
    if not isinstance(amp, bool):
        raise JobSpecError("options.mixed_precision", f"expected true or false, got {amp!r}")
    return TrainOptionsSpec(spec_int("options.checkpoint_every", every, minimum=0), float(interval), amp)


def spec_period_and_source(spec: Mapping[str, Any]) -> tuple[int, int, str]:
    """``(start_ns, end_ns, strategy_source)`` of a job spec (train or backtest): both times required,
    start before end; the source name a non-empty string (default ``"strategy"``). JobSpecError
    naming the key otherwise."""
    for key in ("start_ns", "end_ns"):
        if key not in spec:
            raise JobSpecError(key, "required")
    start, end = spec_int("start_ns", spec["start_ns"]), spec_int("end_ns", spec["end_ns"])
    if start >= end:
        raise JobSpecError("end_ns", f"must be after start_ns ({start}), got {end}")
    source = spec.get("strategy_source", "strategy")
    if not isinstance(source, str) or not source:
        raise JobSpecError("strategy_source", f"expected a non-empty string, got {source!r}")
    return start, end, source


def parse_spec(spec: Mapping[str, Any]) -> TrainSpec:
    """Validate a spec (a dict, e.g. ``json_format.MessageToDict`` of the Struct). Raises
    :class:`JobSpecError` naming the first bad key."""
    refuse_unknown("", spec, SPEC_KEYS)
    start, end, source = spec_period_and_source(spec)
    seed = spec.get("seed")
    epochs = spec.get("epochs")
    return TrainSpec(
        start_ns=start,
        end_ns=end,
        strategy_source=source,
        seed=None if seed is None else spec_int("seed", seed, minimum=0),
        epochs=None if epochs is None else spec_int("epochs", epochs, minimum=1),
        options=_options(spec.get("options")),
    )


def bars_role(symbol: str, timeframe: str) -> str:
    """The input role of one bar series: ``bars/<SYMBOL>/<TF>``."""
    return f"{BARS_PREFIX}{symbol}/{timeframe}"


def parse_bars_role(role: str) -> tuple[str, str]:
    """``(symbol, timeframe)`` of a ``bars/<SYMBOL>/<TF>`` role; JobSpecError otherwise."""
    match = _BARS_ROLE.fullmatch(role)
    if match is None:
        raise JobSpecError("inputs", f"bad role {role!r}: expected bars/<SYMBOL>/<TF> (e.g. bars/EURUSD/1h)")
    return match.group(1), match.group(2)


def check_roles(roles: Iterable[str]) -> None:
    """Every role known and given once, ``strategy`` present. Raises :class:`JobSpecError`."""
    seen: set[str] = set()
    for role in roles:
        if role in seen:
            raise JobSpecError("inputs", f"role {role!r} given twice")
        seen.add(role)
        if role not in (ROLE_STRATEGY, ROLE_CHECKPOINT):
            parse_bars_role(role)
    if ROLE_STRATEGY not in seen:
        raise JobSpecError("inputs", f"the {ROLE_STRATEGY!r} input is required")


def required_bars_roles(symbols: Iterable[str], timeframes: Iterable[str]) -> list[str]:
    """The bars roles a strategy with these symbols and timeframes needs."""
    tfs = list(timeframes)
    return [bars_role(s, tf) for s in symbols for tf in tfs]


def missing_bars_roles(required: Iterable[str], roles: Iterable[str]) -> list[str]:
    """The required bars roles absent from ``roles``, in order."""
    given = set(roles)
    return [r for r in required if r not in given]


def bars_to_parquet(bars: Bars) -> bytes:
    """One series as a Parquet file in the bar cache's layout (a ``bars/...`` input's content)."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.table(
        {
            "time": pa.array(bars.time, pa.int64()),
            **{name: pa.array(getattr(bars, name), pa.float64()) for name in BAR_COLUMNS},
        }
    )
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def read_bars_blob(path: Path, symbol: str, timeframe: str, *, role: str) -> Bars:
    """A ``bars/...`` input read back and validated; errors name ``role``."""
    import pyarrow.parquet as pq

    from ktrdr.research.bars import Bars, BarsError

    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise BarsError(f"input {role}: not a Parquet file: {exc}") from None
    missing = [c for c in ("time", *BAR_COLUMNS) if c not in table.column_names]
    if missing:
        raise BarsError(f"input {role}: missing column(s) {', '.join(missing)}")
    return Bars.from_arrays(
        symbol,
        timeframe,
        table.column("time").to_numpy(),
        *(table.column(c).to_numpy() for c in BAR_COLUMNS),
        source=f"input {role}",
    )
