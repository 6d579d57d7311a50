"""Operation and event records of the operations core → ``ktrdr.daemon.v1`` messages.

Record times are float epoch seconds; ``progress`` dicts carry ``fraction``, ``message``, ``current``,
``total``, ``eta_s`` and ``metrics``; ``error`` is ``{"code", "message", "reason"}``; ``result`` is the
proto JSON of a ``google.protobuf.Any``.
"""

from __future__ import annotations

import logging
from typing import Any

from google.protobuf import any_pb2, duration_pb2, json_format, struct_pb2, timestamp_pb2
from google.rpc import status_pb2

from ktrdr.common.v1 import common_pb2
from ktrdr.daemon.v1 import operations_pb2
from ktrdr.rpc.errors import invalid_argument
from ktrdr.rpc.rich_status import error_info
from ktrdr.wire import EVENT_ENUM_PREFIX, STATE_ENUM_PREFIX, OperationState

log = logging.getLogger(__name__)


def state_to_proto(state: OperationState) -> str:
    """The proto enum value name of a core state (message constructors take enum names)."""
    return STATE_ENUM_PREFIX + state


def state_from_proto(value: int, field: str) -> OperationState:
    """Core state name of an enum value; INVALID_ARGUMENT naming ``field`` for UNSPECIFIED/unknown."""
    known = operations_pb2.OperationState.values()
    if value == operations_pb2.OPERATION_STATE_UNSPECIFIED or value not in known:
        raise invalid_argument(field, f"not an operation state: {value}")
    return OperationState(operations_pb2.OperationState.Name(value).removeprefix(STATE_ENUM_PREFIX))


def timestamp(seconds: float | None) -> timestamp_pb2.Timestamp | None:
    if seconds is None:
        return None
    ts = timestamp_pb2.Timestamp()
    ts.FromMicroseconds(round(seconds * 1e6))
    return ts


def duration(seconds: float | None) -> duration_pb2.Duration | None:
    if seconds is None:
        return None
    d = duration_pb2.Duration()
    d.FromNanoseconds(round(seconds * 1e9))
    return d


def progress_to_proto(progress: dict[str, Any]) -> common_pb2.Progress:
    return common_pb2.Progress(
        fraction=float(progress.get("fraction") or 0.0),
        message=progress.get("message") or "",
        current=int(progress.get("current") or 0),
        total=int(progress.get("total") or 0),
        eta=duration(progress.get("eta_s")),
        metrics={k: float(v) for k, v in (progress.get("metrics") or {}).items()},
    )


def error_to_status(error: dict[str, Any]) -> status_pb2.Status:
    status = status_pb2.Status(code=int(error.get("code", 2)), message=error.get("message", ""))
    if error.get("reason"):
        status.details.append(error_info(error["reason"]))
    return status


def result_to_any(result: dict[str, Any]) -> any_pb2.Any:
    """Parse the Any JSON; a type this process does not know is re-packed as a Struct (logged)."""
    try:
        return json_format.ParseDict(result, any_pb2.Any())
    except (json_format.ParseError, TypeError, KeyError) as exc:
        log.warning("operation result of an unknown type, sent as a Struct", extra={"error": str(exc)})
        body = struct_pb2.Struct()
        body.update({k: v for k, v in result.items() if k != "@type"})
        packed = any_pb2.Any()
        packed.Pack(body)
        return packed


def operation_to_proto(record: Any, *, result: bool = True) -> operations_pb2.Operation:
    """An ``OperationRecord`` as ``ktrdr.daemon.v1.Operation``; ``result=False`` leaves the result
    out (a list's BASIC view)."""
    op = operations_pb2.Operation(
        name=record.name,
        kind=record.kind,
        state=state_to_proto(record.state),
        done=record.done,
        stage=record.stage,
        progress=progress_to_proto(record.progress),
        labels=record.labels,
        parent=record.parent,
        request_id=record.request_id,
        create_time=timestamp(record.create_time),
        start_time=timestamp(record.start_time),
        update_time=timestamp(record.update_time),
        end_time=timestamp(record.end_time),
        last_seq=record.last_seq,
    )
    if record.error:
        op.error.CopyFrom(error_to_status(record.error))
    if result and record.result:
        op.result.CopyFrom(result_to_any(record.result))
    return op


def event_to_proto(event: Any) -> operations_pb2.OperationEvent:
    """An ``EventRecord`` as ``ktrdr.daemon.v1.OperationEvent``."""
    return operations_pb2.OperationEvent(
        operation=event.operation,
        seq=event.seq,
        time=timestamp(event.time),
        type=EVENT_ENUM_PREFIX + event.type.upper(),
        state=state_to_proto(event.state),
        stage=event.stage,
        progress=progress_to_proto(event.progress),
        message=event.message,
    )
