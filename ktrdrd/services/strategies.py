"""``ktrdr.daemon.v1.StrategiesService``: validate and describe strategy documents clients send.

The daemon never opens a path: the client sends the YAML text and a name used in messages. Loading
and checking a document takes milliseconds, so each call runs in a worker thread; the strategy
library (which imports yaml and numpy) is imported there on first use, keeping an idle daemon lean.

- ``ValidateStrategy``: a document with errors is an answer (``valid = false`` and the issues),
  not an RPC error. Issues: errors first (file order), then warnings (file order).
- ``DescribeStrategy``: the normalized strategy, its warnings, the model's feature names and the
  bars each symbol × timeframe needs for a period. An invalid document is INVALID_ARGUMENT, reason
  ``STRATEGY_INVALID``, one field violation on ``source.content`` per error
  (``file:line:col: path: message``).

Both apply the request's ``overrides`` (``--set path=value``, :mod:`ktrdr.strategy.overrides`) to
the parsed document before validating it: a path that cannot be followed, or a value of the wrong
type, is an issue of the document with the line of the key it names, and says which override.

Malformed requests (empty ``source.content``, an override path that does not parse, ``end_time``
not after ``start_time``, a period whose warm-up starts before year 1) are INVALID_ARGUMENT naming
the field.

Bounded work and answers: a document over :data:`MAX_STRATEGY_BYTES` is INVALID_ARGUMENT, reason
``STRATEGY_TOO_LARGE``, before it is parsed; at most ``ktrdr.strategy.reader.MAX_ISSUES`` errors
(or warnings) are listed, and ``omitted_issue_count`` (``DescribeStrategy``'s refusal: a last field
violation) says how many more there were. Hostile YAML (NUL bytes, deep nesting, huge numbers) is
an issue with a line, like any other error in the document.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Sequence
from typing import Any

from google.protobuf import struct_pb2, timestamp_pb2

from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import strategies_pb2 as pb
from ktrdr.excerpts import clip
from ktrdr.rpc.errors import ApiError, FieldViolation, invalid_argument
from ktrdr.rpc.registry import Call
from ktrdr.wire import MAX_STRATEGY_BYTES as MAX_STRATEGY_BYTES  # largest source.content, bytes
from ktrdr.wire import StatusCode

#: Longest ``source.source_name`` accepted, in characters (a path up to Linux's PATH_MAX); every
#: issue repeats it, so it is bounded like the document.
MAX_SOURCE_NAME_CHARS = 4096
#: ``source_name`` used in messages when the request leaves it empty.
DEFAULT_SOURCE_NAME = "<strategy>"
#: Length of the default ``DescribeStrategy`` period, and of a period given by one end only.
DEFAULT_PERIOD_NS = 365 * 86400 * 10**9
_DAY_NS = 86400 * 10**9
# The range a google.protobuf.Timestamp can hold: 0001-01-01T00:00:00Z .. 9999-12-31T23:59:59Z.
_MIN_TS_NS = -62135596800 * 10**9
_MAX_TS_NS = 253402300799 * 10**9
_SUGGESTION = re.compile(r"\(did you mean (['\"])(.+?)\1\?\)")


class StrategiesService:
    """Stateless: every call reads only its request."""

    descriptor = pb.DESCRIPTOR.services_by_name["StrategiesService"]

    async def ValidateStrategy(
        self, request: pb.ValidateStrategyRequest, call: Call
    ) -> pb.ValidateStrategyResponse:
        content, name = _checked_source(request)
        return await asyncio.to_thread(_validate, content, name, request.overrides)

    async def DescribeStrategy(
        self, request: pb.DescribeStrategyRequest, call: Call
    ) -> pb.DescribeStrategyResponse:
        content, name = _checked_source(request)
        start_ns, end_ns = period_of(request, time.time_ns())
        return await asyncio.to_thread(_describe, content, name, request.overrides, start_ns, end_ns)


def _checked_source(request: pb.ValidateStrategyRequest | pb.DescribeStrategyRequest) -> tuple[str, str]:
    """The document text and its display name; INVALID_ARGUMENT for an empty document or overrides."""
    if not request.source.content:
        raise invalid_argument(
            "source.content", "required: the strategy YAML text (the daemon reads no files)"
        )
    if len(request.source.source_name) > MAX_SOURCE_NAME_CHARS:
        raise invalid_argument(
            "source.source_name",
            f"{len(request.source.source_name):,} characters, over the limit of {MAX_SOURCE_NAME_CHARS:,}",
        )
    return request.source.content, request.source.source_name or DEFAULT_SOURCE_NAME


def checked_overrides(
    overrides: Sequence[common_pb2.ParameterOverride], field: str = "overrides"
) -> list[Any]:
    """The request's ``--set`` overrides as ``ktrdr.strategy.Override`` values; INVALID_ARGUMENT
    (reason ``OVERRIDE_INVALID``) naming ``overrides[i].path`` or ``.value`` for a malformed one
    (an unparsable path, over the limits of :mod:`ktrdr.strategy.overrides`). Whether the path
    exists in the document is the document's validation (an issue with its line)."""
    from ktrdr.strategy.overrides import MAX_OVERRIDES, MAX_VALUE_CHARS, Override, OverrideError, parse_path

    if len(overrides) > MAX_OVERRIDES:
        raise invalid_argument(
            field, f"{len(overrides):,} overrides, over the limit of {MAX_OVERRIDES}", "OVERRIDE_INVALID"
        )
    out = []
    for index, item in enumerate(overrides):
        try:
            parse_path(item.path)
        except OverrideError as exc:
            raise invalid_argument(f"{field}[{index}].path", str(exc), "OVERRIDE_INVALID") from None
        if len(item.value) > MAX_VALUE_CHARS:
            raise invalid_argument(
                f"{field}[{index}].value",
                f"{len(item.value):,} characters, over the limit of {MAX_VALUE_CHARS:,}",
                "OVERRIDE_INVALID",
            )
        out.append(Override(item.path, item.value))
    return out


def period_of(request: pb.DescribeStrategyRequest, now_ns: int) -> tuple[int, int]:
    """``[start, end)`` in int ns UTC: the request's, or the documented default (see the proto)."""
    has_start, has_end = request.HasField("start_time"), request.HasField("end_time")
    start = request.start_time.ToNanoseconds() if has_start else None
    end = request.end_time.ToNanoseconds() if has_end else None
    for field, value in (("start_time", start), ("end_time", end)):
        if value is not None and not _MIN_TS_NS <= value <= _MAX_TS_NS:
            raise invalid_argument(field, "outside 0001-01-01 .. 9999-12-31")
    if start is None:
        if end is None:
            end = now_ns - now_ns % _DAY_NS
        start = end - DEFAULT_PERIOD_NS
    elif end is None:
        end = min(start + DEFAULT_PERIOD_NS, _MAX_TS_NS)
    if end <= start:
        raise invalid_argument("end_time", "must be after start_time")
    return start, end


def _timestamp(ns: int) -> timestamp_pb2.Timestamp:
    ts = timestamp_pb2.Timestamp()
    ts.FromNanoseconds(ns)
    return ts


def _struct(data: dict[str, Any]) -> struct_pb2.Struct:
    out = struct_pb2.Struct()
    out.update(data)
    return out


def _issue(issue: Any, severity: str) -> pb.StrategyIssue:
    """A ``ktrdr.strategy.StrategyIssue`` as the proto message; the "did you mean" goes to ``suggestion``.

    ``severity`` is the enum value's name (``ISSUE_SEVERITY_ERROR`` or ``ISSUE_SEVERITY_WARNING``).
    """
    match = _SUGGESTION.search(issue.message)
    return pb.StrategyIssue(
        severity=severity,
        path=issue.path,
        message=issue.message,
        line=issue.line,
        column=issue.column,
        suggestion=match.group(2) if match else "",
        source_name=issue.source,
    )


def _check_size(content: str) -> None:
    """INVALID_ARGUMENT naming ``source.content`` when it is over :data:`MAX_STRATEGY_BYTES`."""
    size = len(content.encode("utf-8", "surrogatepass"))
    if size > MAX_STRATEGY_BYTES:
        raise invalid_argument(
            "source.content",
            f"the document is {size:,} bytes, over the limit of {MAX_STRATEGY_BYTES:,} bytes",
            "STRATEGY_TOO_LARGE",
        )


def _validate(
    content: str, name: str, requested: Sequence[common_pb2.ParameterOverride]
) -> pb.ValidateStrategyResponse:
    """Worker thread: load ``content`` with the ``requested`` overrides applied and report the outcome."""
    from ktrdr.strategy import StrategyError, load_strategy_text

    _check_size(content)
    overrides = checked_overrides(requested)
    try:
        loaded = load_strategy_text(content, source=name, overrides=overrides)
    except StrategyError as exc:
        return pb.ValidateStrategyResponse(
            valid=False,
            issues=[_issue(i, "ISSUE_SEVERITY_ERROR") for i in exc.issues],
            omitted_issue_count=exc.omitted,
        )
    return pb.ValidateStrategyResponse(
        valid=True,
        issues=[_issue(w, "ISSUE_SEVERITY_WARNING") for w in loaded.warnings],
        normalized=_struct(loaded.normalized()),
        omitted_issue_count=loaded.omitted_warnings,
    )


def _invalid(messages: list[str], omitted: int = 0) -> ApiError:
    """STRATEGY_INVALID: a violation per message, and a last one counting ``omitted`` errors."""
    violations = [FieldViolation("source.content", m) for m in messages]
    if omitted:
        violations.append(FieldViolation("source.content", f"... and {omitted} more errors"))
    total = len(messages) + omitted
    noun = "error" if total == 1 else "errors"
    return ApiError(
        StatusCode.INVALID_ARGUMENT,
        f"source.content: invalid strategy ({total} {noun})",
        "STRATEGY_INVALID",
        violations,
    )


def _describe(
    content: str, name: str, requested: Sequence[common_pb2.ParameterOverride], start_ns: int, end_ns: int
) -> pb.DescribeStrategyResponse:
    """Worker thread: load ``content`` with the ``requested`` overrides applied and describe it for
    ``[start_ns, end_ns)``."""
    from ktrdr.research.features import FeatureError, feature_spec
    from ktrdr.strategy import StrategyError, data_requirements, load_strategy_text

    _check_size(content)
    overrides = checked_overrides(requested)
    try:
        loaded = load_strategy_text(content, source=name, overrides=overrides)
        spec = feature_spec(loaded.strategy)
    except StrategyError as exc:
        raise _invalid([str(i) for i in exc.issues], exc.omitted) from None
    except FeatureError as exc:
        raise _invalid([clip(f"{name}: {exc}")]) from None
    requirements = data_requirements(loaded.strategy, start_ns, end_ns)
    if any(r.start < _MIN_TS_NS for r in requirements):
        raise invalid_argument("start_time", "the warm-up before it would begin before 0001-01-01")
    strategy = loaded.strategy
    return pb.DescribeStrategyResponse(
        name=strategy.name,
        description=strategy.description,
        normalized=_struct(loaded.normalized()),
        issues=[_issue(w, "ISSUE_SEVERITY_WARNING") for w in loaded.warnings],
        omitted_issue_count=loaded.omitted_warnings,
        feature_names=spec.names,
        data_requirements=[
            pb.DataRequirement(
                series=common_pb2.SeriesKey(symbol=r.symbol, timeframe=r.timeframe),
                start_time=_timestamp(r.start),
                end_time=_timestamp(r.end),
                warmup_bars=r.warmup_bars,
                run_start_time=_timestamp(r.run_start),
            )
            for r in requirements
        ],
        period=common_pb2.TimeRange(start_time=_timestamp(start_ns), end_time=_timestamp(end_ns)),
    )
