"""``ApiError`` ⇄ ``google.rpc.Status`` (with ErrorInfo, BadRequest and RetryInfo details).

gRPC carries an error in its trailers (``grpc-message``, percent-encoded, and
``grpc-status-details-bin``, the Status in base64), and a gRPC client refuses trailers over its
``grpc.max_metadata_size`` — 8 KiB by default in grpcio: a larger error reaches it as
RESOURCE_EXHAUSTED "Stream removed" with every detail lost (a strategy with 300 unknown keys did).
:func:`trailer_status` cuts an error to fit: the message to :data:`TRAILER_MESSAGE_BYTES` once
percent-encoded, the whole Status to :data:`TRAILER_STATUS_BYTES` serialized (base64: 4/3 of that),
dropping field violations from the end and saying how many were left out. The ctl transport, whose
frames may hold 4 MiB, sends every error whole.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2

from ktrdr.rpc.errors import ApiError, FieldViolation

ERROR_DOMAIN = "ktrdr"
#: Bytes of ``grpc-message`` (percent-encoded) an error sent over gRPC may take.
TRAILER_MESSAGE_BYTES = 1024
#: Serialized bytes of the ``google.rpc.Status`` an error sent over gRPC may take; with the message
#: this keeps the trailers near 7 KiB, under grpcio's default 8 KiB limit.
TRAILER_STATUS_BYTES = 4096
_CUT = "…"


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


def _percent_encoded_size(text: str) -> int:
    """Bytes of ``text`` as gRPC percent-encodes ``grpc-message`` (printable ASCII but ``%`` as is)."""
    return sum(1 if 0x20 <= b <= 0x7E and b != 0x25 else 3 for b in text.encode("utf-8"))


def _clipped(text: str, max_bytes: int) -> str:
    """``text`` cut (ending in ``…``) so that its percent-encoded form takes at most ``max_bytes``."""
    if len(text) <= max_bytes // 12 or _percent_encoded_size(text[: max_bytes + 1]) <= max_bytes:
        return text
    low, high = 0, min(len(text), max_bytes)  # the longest prefix that fits, with the mark
    while low < high:
        middle = (low + high + 1) // 2
        if _percent_encoded_size(text[:middle] + _CUT) <= max_bytes:
            low = middle
        else:
            high = middle - 1
    return text[:low] + _CUT


def trailer_status(error: ApiError) -> status_pb2.Status:
    """:func:`to_status` of ``error`` cut to fit gRPC trailers (see the module docstring): the
    message clipped, then field violations dropped from the end (one last violation, on the field
    of the first one dropped, counts them), then, if even that is too large, the details but the
    reason."""
    message = _clipped(error.message, TRAILER_MESSAGE_BYTES)
    violations = [
        FieldViolation(_clipped(v.field, 256), _clipped(v.description, TRAILER_MESSAGE_BYTES))
        for v in error.violations
    ]
    fitted = dataclasses.replace(error, message=message, violations=violations)
    status = to_status(fitted)
    kept = len(violations)
    if status.ByteSize() > TRAILER_STATUS_BYTES:  # start from the longest prefix that can fit
        room = TRAILER_STATUS_BYTES - to_status(dataclasses.replace(fitted, violations=[])).ByteSize()
        room -= 200  # the BadRequest's Any wrapper and the summary violation
        kept = 0
        for violation in violations:
            room -= len(violation.field.encode()) + len(violation.description.encode()) + 8
            if room < 0:
                break
            kept += 1
        kept = min(kept + 1, len(violations))  # the loop below takes one off before it builds
    while status.ByteSize() > TRAILER_STATUS_BYTES and kept > 0:
        kept -= 1
        left_out = len(violations) - kept
        summary = FieldViolation(
            violations[kept].field, f"... and {left_out} more, left out to fit the gRPC trailers"
        )
        status = to_status(dataclasses.replace(fitted, violations=[*violations[:kept], summary]))
    if status.ByteSize() > TRAILER_STATUS_BYTES:
        bare = ApiError(error.code, _clipped(error.message, 256), error.reason)
        status = to_status(bare)
    return status
