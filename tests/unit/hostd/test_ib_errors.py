"""IB error codes → gRPC statuses: one table, 162 told apart by its text, unknown codes named."""

from __future__ import annotations

from hostd.ib import ib_errors
from ktrdr.wire import StatusCode

PACING_TEXT = "Historical Market Data Service error message:Historical data request pacing violation"
NO_DATA_TEXT = "Historical Market Data Service error message:HMDS query returned no data: AAPL 1 hour"


def test_162_is_classified_by_its_text() -> None:
    assert ib_errors.classify_162(PACING_TEXT) == ib_errors.HMDS_PACING
    assert ib_errors.classify_162(NO_DATA_TEXT) == ib_errors.HMDS_NO_DATA
    assert ib_errors.classify_162("Historical Market Data Service error message:Time length exceed max.") == (
        ib_errors.HMDS_OTHER
    )


def test_pacing_becomes_resource_exhausted_with_retry_info() -> None:
    error = ib_errors.to_api_error(162, PACING_TEXT, "AAPL 1 hour", retry_after_s=12.5)
    assert error.code == StatusCode.RESOURCE_EXHAUSTED and error.reason == "IB_PACING"
    assert error.retry_after_s == 12.5 and "AAPL 1 hour" in error.message


def test_mapped_codes_name_the_subject_code_and_text() -> None:
    cases = {
        200: StatusCode.NOT_FOUND,
        321: StatusCode.INVALID_ARGUMENT,
        326: StatusCode.FAILED_PRECONDITION,
        354: StatusCode.PERMISSION_DENIED,
        1100: StatusCode.UNAVAILABLE,
        504: StatusCode.UNAVAILABLE,
    }
    for code, expected in cases.items():
        error = ib_errors.to_api_error(code, "IB's text", "XYZ")
        assert error.code == expected, code
        assert "XYZ" in error.message and str(code) in error.message and "IB's text" in error.message
        assert error.reason == ib_errors.TABLE[code].reason
    assert ib_errors.to_api_error(1100, "lost", "XYZ", retry_after_s=2).retry_after_s == 2
    assert ib_errors.to_api_error(504, "gone", "XYZ").retry_after_s == ib_errors.DEFAULT_RETRY_S
    assert ib_errors.to_api_error(200, "none", "XYZ", retry_after_s=2).retry_after_s is None


def test_an_unknown_code_is_unknown_naming_it() -> None:
    error = ib_errors.to_api_error(4242, "something new", "AAPL")
    assert error.code == StatusCode.UNKNOWN and error.reason == "IB_ERROR_4242" and "4242" in error.message


def test_farm_notices_are_the_2100_range() -> None:
    assert ib_errors.is_farm_notice(2104) and ib_errors.is_farm_notice(2158)
    assert not ib_errors.is_farm_notice(1100) and not ib_errors.is_farm_notice(2200)
