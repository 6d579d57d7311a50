"""``ApiError`` ⇄ ``google.rpc.Status`` (with ErrorInfo, BadRequest and RetryInfo details)."""

from __future__ import annotations

from typing import Any

from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from ktrdr.rpc.errors import ApiError

ERROR_DOMAIN = "ktrdr"


def error_info(reason: str, metadata: dict[str, str] | None = None) -> any_pb2.Any:
    packed = any_pb2.Any()
    packed.Pack(error_details_pb2.ErrorInfo(reason=reason, domain=ERROR_DOMAIN, metadata=metadata or {}))
    return packed


def to_status(error: ApiError) -> status_pb2.Status:
    """The rich status of an :class:`ApiError`: ErrorInfo(reason), BadRequest, RetryInfo as present."""
    status = status_pb2.Status(code=error.code, message=error.message)
    if error.reason:
        status.details.append(error_info(error.reason, error.metadata))
    if error.violations:
        bad = error_details_pb2.BadRequest(
            field_violations=[
                error_details_pb2.BadRequest.FieldViolation(field=v.field, description=v.description)
                for v in error.violations
            ]
        )
        status.details.add().Pack(bad)
    if error.retry_after_s is not None:
        delay = duration_pb2.Duration()
        delay.FromNanoseconds(round(error.retry_after_s * 1e9))
        status.details.add().Pack(error_details_pb2.RetryInfo(retry_delay=delay))
    return status


def error_data(error: ApiError) -> dict[str, Any]:
    """The ctl error frame's ``data``: ``reason``, ``fieldViolations`` and ``retryDelay`` as present."""
    data: dict[str, Any] = {"reason": error.reason or "UNKNOWN"}
    if error.violations:
        data["fieldViolations"] = [{"field": v.field, "description": v.description} for v in error.violations]
    if error.retry_after_s is not None:
        data["retryDelay"] = f"{error.retry_after_s:g}s"
    if error.metadata:
        data["metadata"] = dict(error.metadata)
    return data
