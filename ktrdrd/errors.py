"""Errors that cross the API boundary, independent of the transport.

Core code (journal, operations, services) raises :class:`ApiError` subclasses; the gRPC layer turns
them into a status code with ``google.rpc`` details (``ErrorInfo.reason``,
``BadRequest.field_violations``) and the ctl transport into an error frame with the same code
number. Codes are gRPC status code numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# gRPC status code numbers (grpc.StatusCode values), kept here so core code needs no grpc import.
INVALID_ARGUMENT = 3
DEADLINE_EXCEEDED = 4
NOT_FOUND = 5
ALREADY_EXISTS = 6
RESOURCE_EXHAUSTED = 8
FAILED_PRECONDITION = 9
ABORTED = 10
UNIMPLEMENTED = 12
INTERNAL = 13
UNAVAILABLE = 14
CANCELLED = 1


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

    def __str__(self) -> str:
        return self.message


def invalid_argument(field_: str, description: str, reason: str = "INVALID_ARGUMENT") -> ApiError:
    """INVALID_ARGUMENT naming the field."""
    return ApiError(
        INVALID_ARGUMENT, f"{field_}: {description}", reason, [FieldViolation(field_, description)]
    )


def not_found(what: str, reason: str = "NOT_FOUND") -> ApiError:
    return ApiError(NOT_FOUND, f"{what} not found", reason)


def failed_precondition(message: str, reason: str) -> ApiError:
    return ApiError(FAILED_PRECONDITION, message, reason)


def unimplemented(method: str) -> ApiError:
    return ApiError(UNIMPLEMENTED, f"{method} is not implemented yet", "UNIMPLEMENTED")
