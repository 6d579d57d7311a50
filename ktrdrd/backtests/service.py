"""``ktrdr.daemon.v1.BacktestsService``: StartBacktest, StartWalkForward and GetBacktestArtifact.

StartBacktest checks, before anything runs: a training host is configured (else
FAILED_PRECONDITION ``NO_TRAINING_HOST``); ``model_version`` is ``models/<strategy>/versions/<n>``
or ``models/<strategy>@<alias>`` (INVALID_ARGUMENT) and exists (NOT_FOUND naming the model,
version or alias); the period is set and ``end_time`` is after ``start_time``; the symbols are
symbols; ``settings.fee_bps``/``slippage_bps`` are ≥ 0 when set, ``position_fraction`` in [0, 1],
``initial_capital`` ≥ 0 (INVALID_ARGUMENT naming the field). Then a ``backtest`` operation starts
(idempotent on ``request_id``); its data gaps are reported by the operation (FAILED_PRECONDITION
``DATA_MISSING`` naming them).

StartWalkForward checks the same (no model: the strategy is trained per window) plus the strategy
document as StartTraining does (:func:`ktrdrd.training.service.check_run`) and the windows:
``train_window``/``test_window`` lengths (:func:`ktrdr.research.backtest.windows.parse_span`) and a
period holding one whole train and test window (:func:`~ktrdr.research.backtest.windows.plan_windows`);
each refusal INVALID_ARGUMENT naming the field. Then a ``backtest.walkforward`` operation starts.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import AsyncIterator
from typing import Any

from ktrdr.daemon.v1 import backtests_pb2 as pb
from ktrdr.excerpts import echo
from ktrdr.rpc.errors import failed_precondition, invalid_argument, not_found
from ktrdr.rpc.registry import Call
from ktrdr.symbols import RULE as SYMBOL_RULE
from ktrdr.symbols import is_symbol
from ktrdr.symbols import normalize as normalize_symbol
from ktrdr.wire import NAME_PREFIX
from ktrdrd.backtests import kind, walkforward
from ktrdrd.operations import OperationsCore
from ktrdrd.services.convert import operation_to_proto
from ktrdrd.services.models import parse_version

CHUNK_BYTES = 1 << 20


def _checked_settings(settings: pb.BacktestSettings) -> dict[str, Any]:
    out: dict[str, Any] = {"fee_bps": None, "slippage_bps": None}
    for key in ("fee_bps", "slippage_bps"):
        if settings.HasField(key):
            value = getattr(settings, key)
            if not math.isfinite(value) or value < 0:
                raise invalid_argument(
                    f"settings.{key}", f"must be a number of basis points >= 0, got {value}"
                )
            out[key] = value
    fraction = settings.position_fraction
    if not (math.isfinite(fraction) and 0 <= fraction <= 1):
        raise invalid_argument(
            "settings.position_fraction", f"must lie in [0, 1] (0 = the strategy's), got {fraction}"
        )
    if not (math.isfinite(settings.initial_capital) and settings.initial_capital >= 0):
        raise invalid_argument(
            "settings.initial_capital", f"must be >= 0 (0 = 100000), got {settings.initial_capital}"
        )
    out["position_size"] = fraction or None
    out["initial_cash"] = settings.initial_capital or 100_000.0
    return out


def _checked_period(request: Any) -> tuple[int, int]:
    """(start_ns, end_ns) of a request's required ``start_time`` < ``end_time``."""
    for field in ("start_time", "end_time"):
        if not request.HasField(field):
            raise invalid_argument(field, "required")
    start_ns, end_ns = request.start_time.ToNanoseconds(), request.end_time.ToNanoseconds()
    if end_ns <= start_ns:
        raise invalid_argument("end_time", "must be after start_time")
    return start_ns, end_ns


def _checked_symbols(given: Any, field: str = "symbols[{n}]") -> list[str]:
    """``given`` normalized (:func:`ktrdr.symbols.normalize`); INVALID_ARGUMENT naming ``field``
    (``{n}``: the index) for one that is not a symbol."""
    checked = [normalize_symbol(s) for s in given]
    for n, symbol in enumerate(checked):
        if not is_symbol(symbol):
            raise invalid_argument(
                field.format(n=n), f"not a symbol: {echo(given[n])}; expected {SYMBOL_RULE}"
            )
    return checked


class BacktestsService:
    """The RPCs over ``core`` (with the ``backtest`` kind registered as ``handler``) and ``models``."""

    descriptor = pb.DESCRIPTOR.services_by_name["BacktestsService"]

    def __init__(
        self, core: OperationsCore, models: Any, handler: kind.BacktestKind, has_hosts: bool
    ) -> None:
        self._core = core
        self._models = models
        self._handler = handler
        self._has_hosts = has_hosts

    async def StartBacktest(self, request: pb.StartBacktestRequest, call: Call) -> pb.StartBacktestResponse:
        self._need_hosts()
        strategy, version = await self._version(request.model_version)
        start_ns, end_ns = _checked_period(request)
        symbols = _checked_symbols(request.symbols)
        params = {
            "strategy": strategy,
            "version": version,
            "symbols": symbols,
            "start_ns": str(start_ns),
            "end_ns": str(end_ns),
            "host": "",
            **_checked_settings(request.settings),
        }
        record = await self._core.start(
            kind.KIND, params=params, labels=dict(request.labels), request_id=request.request_id
        )
        return pb.StartBacktestResponse(operation=operation_to_proto(record))

    async def StartWalkForward(
        self, request: pb.StartWalkForwardRequest, call: Call
    ) -> pb.StartWalkForwardResponse:
        from ktrdr.daemon.v1 import training_pb2
        from ktrdr.research.backtest.windows import WalkForwardError, parse_span, plan_windows
        from ktrdrd.training.service import check_run

        self._need_hosts()
        start_ns, end_ns = _checked_period(request)
        try:
            train = parse_span(request.train_window, field="train_window")
            test = parse_span(request.test_window, field="test_window")
            windows = plan_windows(start_ns, end_ns, train, test)
        except WalkForwardError as exc:
            raise invalid_argument(exc.field or "train_window", str(exc), "WINDOW_INVALID") from None
        symbols = _checked_symbols(request.symbols)
        settings = _checked_settings(request.settings)
        training = training_pb2.TrainingSettings(
            start_time=request.start_time, end_time=request.end_time, symbols=symbols
        )
        if request.HasField("seed"):
            training.seed = request.seed
        run = await asyncio.to_thread(check_run, request.strategy, training, [], "strategy")
        params = {
            "train": run,
            "windows": [
                {
                    "index": w.index,
                    **{
                        key: str(getattr(w, key))
                        for key in ("train_start_ns", "train_end_ns", "test_start_ns", "test_end_ns")
                    },
                }
                for w in windows
            ],
            "train_window": train.text,
            "test_window": test.text,
            "symbols": symbols,
            "start_ns": str(start_ns),
            "end_ns": str(end_ns),
            "host": "",
            **settings,
        }
        record = await self._core.start(
            walkforward.KIND, params=params, labels=dict(request.labels), request_id=request.request_id
        )
        return pb.StartWalkForwardResponse(operation=operation_to_proto(record))

    def _need_hosts(self) -> None:
        if not self._has_hosts:
            raise failed_precondition(
                "ktrdrd has no training host to run backtests on: set hosts.training (addresses of "
                "running `hostd training`) or hosts.embedded = true in the daemon's configuration",
                "NO_TRAINING_HOST",
            )

    async def _version(self, text: str) -> tuple[str, int]:
        strategy, number, alias = parse_version(text, "model_version")
        version = number if number is not None else await self._models.resolve(strategy, None, alias)
        await self._models.get_version(strategy, version)
        return strategy, version

    async def GetBacktestArtifact(
        self, request: pb.GetBacktestArtifactRequest, call: Call
    ) -> AsyncIterator[pb.GetBacktestArtifactResponse]:
        from ktrdr.jobs.backtest import ARTIFACTS

        record = await self._core.get(request.name)
        if record.kind not in (kind.KIND, walkforward.KIND):
            raise invalid_argument("name", f"{request.name} is a {record.kind!r} operation, not a backtest")
        if request.artifact not in ARTIFACTS:
            raise invalid_argument(
                "artifact", f"expected one of {', '.join(ARTIFACTS)}, got {request.artifact!r}"
            )
        symbols = (
            (record.result or {}).get("report", {}).get("symbols") or record.params.get("symbols") or [""]
        )
        # The symbol is a directory name under the operation's artifacts: only a symbol may pass.
        symbol = _checked_symbols([request.symbol], "symbol")[0] if request.symbol.strip() else symbols[0]
        path = self._handler.artifact_path(record.name.removeprefix(NAME_PREFIX), symbol, request.artifact)
        if not await asyncio.to_thread(path.is_file):
            raise not_found(
                f"artifact {request.artifact} of {symbol} in {request.name}", "ARTIFACT_NOT_FOUND"
            )
        data = await asyncio.to_thread(path.read_bytes)
        yield pb.GetBacktestArtifactResponse(size_bytes=len(data))
        for offset in range(0, len(data), CHUNK_BYTES):
            yield pb.GetBacktestArtifactResponse(data=data[offset : offset + CHUNK_BYTES])
