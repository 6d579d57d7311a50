"""Every IB error code → a gRPC status (:class:`ktrdr.rpc.errors.ApiError`) with a reason.

One table, :data:`TABLE`: code → (gRPC code, ``ErrorInfo.reason``, what it means). A code the table
does not know becomes UNKNOWN naming the code and IB's text. Error 162 carries several meanings; its
text decides (:func:`classify_162`): a pacing violation, "HMDS query returned no data" (an empty
answer, not an error: the fetcher records the interval as empty), or another HMDS refusal.

Informational codes (2100–2199 farm status, 1101/1102 connectivity restored) never fail a request;
:func:`is_farm_notice` and :data:`CONNECTIVITY_LOST` let the connection track them.
"""

from __future__ import annotations

from dataclasses import dataclass

from ktrdr.rpc.errors import ApiError
from ktrdr.wire import StatusCode

CONNECTIVITY_LOST = 1100
CONNECTIVITY_RESTORED = (1101, 1102)
PACING = 162
CLIENT_ID_IN_USE = 326

_RETRYABLE = {StatusCode.UNAVAILABLE, StatusCode.RESOURCE_EXHAUSTED}
#: RetryInfo of a retryable status when the caller has no better figure (seconds).
DEFAULT_RETRY_S = 1.0


@dataclass(frozen=True)
class Mapping:
    code: StatusCode
    reason: str
    meaning: str


TABLE: dict[int, Mapping] = {
    100: Mapping(
        StatusCode.RESOURCE_EXHAUSTED, "IB_MESSAGE_RATE", "max rate of messages per second exceeded"
    ),
    162: Mapping(StatusCode.FAILED_PRECONDITION, "IB_HMDS_ERROR", "the historical data service refused"),
    165: Mapping(StatusCode.FAILED_PRECONDITION, "IB_HMDS_QUERY", "historical data service query message"),
    200: Mapping(StatusCode.NOT_FOUND, "IB_NO_SECURITY", "no security definition found"),
    321: Mapping(StatusCode.INVALID_ARGUMENT, "IB_VALIDATION", "the gateway rejected a request field"),
    322: Mapping(StatusCode.INTERNAL, "IB_REQUEST_ERROR", "error processing the request"),
    326: Mapping(StatusCode.FAILED_PRECONDITION, "IB_CLIENT_ID_IN_USE", "the client id is in use"),
    354: Mapping(StatusCode.PERMISSION_DENIED, "IB_NOT_SUBSCRIBED", "no market data subscription"),
    366: Mapping(StatusCode.NOT_FOUND, "IB_NO_HISTORICAL_QUERY", "no historical data query found"),
    386: Mapping(StatusCode.ABORTED, "IB_REQUEST_CANCELLED", "the request was cancelled by the gateway"),
    502: Mapping(StatusCode.UNAVAILABLE, "IB_CANNOT_CONNECT", "cannot connect to TWS"),
    504: Mapping(StatusCode.UNAVAILABLE, "IB_NOT_CONNECTED", "not connected"),
    507: Mapping(StatusCode.UNAVAILABLE, "IB_BAD_MESSAGE", "bad message length; the connection was reset"),
    1100: Mapping(
        StatusCode.UNAVAILABLE, "IB_CONNECTIVITY_LOST", "connectivity between IB and the gateway lost"
    ),
    1300: Mapping(StatusCode.UNAVAILABLE, "IB_SOCKET_PORT_RESET", "the gateway's socket port was reset"),
    2103: Mapping(StatusCode.UNAVAILABLE, "IB_FARM_BROKEN", "a market data farm connection is broken"),
    2105: Mapping(StatusCode.UNAVAILABLE, "IB_FARM_BROKEN", "the historical data farm connection is broken"),
    2107: Mapping(StatusCode.UNAVAILABLE, "IB_FARM_INACTIVE", "the historical data farm is inactive"),
    2157: Mapping(
        StatusCode.UNAVAILABLE, "IB_FARM_BROKEN", "the security definition farm connection is broken"
    ),
    10090: Mapping(
        StatusCode.PERMISSION_DENIED, "IB_NOT_SUBSCRIBED", "part of the market data is not subscribed"
    ),
    10167: Mapping(StatusCode.PERMISSION_DENIED, "IB_DELAYED_ONLY", "only delayed market data is available"),
    10197: Mapping(
        StatusCode.PERMISSION_DENIED, "IB_COMPETING_SESSION", "no market data during a competing session"
    ),
}

#: The outcomes of an error 162, told apart by its text.
HMDS_PACING = "pacing"
HMDS_NO_DATA = "no data"
HMDS_OTHER = "other"


def classify_162(message: str) -> str:
    """:data:`HMDS_PACING`, :data:`HMDS_NO_DATA` or :data:`HMDS_OTHER` for an error 162's text."""
    text = message.lower()
    if "pacing violation" in text:
        return HMDS_PACING
    if "returned no data" in text:
        return HMDS_NO_DATA
    return HMDS_OTHER


def is_farm_notice(code: int) -> bool:
    """Farm status codes (2100–2199): warnings that describe the gateway's data farms."""
    return 2100 <= code < 2200


def to_api_error(code: int, message: str, subject: str, retry_after_s: float | None = None) -> ApiError:
    """The gRPC error for IB error ``code`` with IB's ``message``, about ``subject`` (``"AAPL 1h"``,
    ``"client id 7"``): the message names the subject, the IB code and IB's text. UNAVAILABLE and
    RESOURCE_EXHAUSTED carry RetryInfo (``retry_after_s``, else :data:`DEFAULT_RETRY_S`)."""
    mapping = TABLE.get(code)
    if mapping is None:
        return ApiError(StatusCode.UNKNOWN, f"{subject}: IB error {code}: {message}", f"IB_ERROR_{code}")
    if code == 162 and classify_162(message) == HMDS_PACING:
        return ApiError(
            StatusCode.RESOURCE_EXHAUSTED,
            f"{subject}: IB pacing violation (162) persisted after retries: {message}",
            "IB_PACING",
            retry_after_s=retry_after_s,
        )
    return ApiError(
        mapping.code,
        f"{subject}: {mapping.meaning} (IB error {code}: {message})",
        mapping.reason,
        retry_after_s=(retry_after_s or DEFAULT_RETRY_S) if mapping.code in _RETRYABLE else None,
    )


def unavailable(message: str, retry_after_s: float) -> ApiError:
    """UNAVAILABLE with RetryInfo: the gateway is away (the call may be retried)."""
    return ApiError(StatusCode.UNAVAILABLE, message, "IB_GATEWAY_UNAVAILABLE", retry_after_s=retry_after_s)
