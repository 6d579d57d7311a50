"""Errors that cross the API boundary, independent of the transport.

Core code (journal, operations, services) raises :class:`ApiError` subclasses; the gRPC layer turns
them into a status code with ``google.rpc`` details (``ErrorInfo.reason``,
``BadRequest.field_violations``) and the ctl transport into an error frame with the same code
number. Codes are :class:`ktrdr.wire.StatusCode` members (gRPC status code numbers), so core code
needs no grpc import.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ktrdr.wire import StatusCode


@dataclass(frozen=True)
class FieldViolation:
    """One bad request field: ``field`` is the proto field path (``page_token``, ``filter.state``)."""

    field: str
    description: str


@dataclass
class ApiError(Exception):
    """An error with a gRPC code, a human message, a machine ``reason`` and optional field violations."""

    code: int
    message: str
    reason: str = ""
    violations: list[FieldViolation] = field(default_factory=list)
    retry_after_s: float | None = None
    #: ``ErrorInfo.metadata`` (e.g. ``missing``: the absent blob digests, comma-separated).
    metadata: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return self.message


def invalid_argument(field_: str, description: str, reason: str = "INVALID_ARGUMENT") -> ApiError:
    """INVALID_ARGUMENT naming the field."""
    return ApiError(
        StatusCode.INVALID_ARGUMENT, f"{field_}: {description}", reason, [FieldViolation(field_, description)]
    )


def not_found(what: str, reason: str = "NOT_FOUND") -> ApiError:
    return ApiError(StatusCode.NOT_FOUND, f"{what} not found", reason)


def failed_precondition(message: str, reason: str) -> ApiError:
    return ApiError(StatusCode.FAILED_PRECONDITION, message, reason)


def unimplemented(method: str) -> ApiError:
    return ApiError(StatusCode.UNIMPLEMENTED, f"{method} is not implemented yet", "UNIMPLEMENTED")
