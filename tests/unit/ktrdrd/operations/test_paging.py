"""Page tokens are opaque, bound to their filters and rejected with the field named when bad."""

from __future__ import annotations

import base64

import pytest

from ktrdr.rpc import errors
from ktrdr.wire import StatusCode
from ktrdrd.operations import paging

LAST = "op_" + "0123456789abcdefghjkmnpqrs"
FILTERS = {"kind": "train", "states": ["RUNNING"], "labels": {}, "parent": ""}


def test_round_trip() -> None:
    assert paging.decode(paging.encode(LAST, FILTERS), dict(FILTERS)) == LAST


@pytest.mark.parametrize(
    "token",
    [
        "%%%",
        base64.urlsafe_b64encode(b"[1,2]").decode(),
        base64.urlsafe_b64encode(b'{"after": "op_x", "f": "0"}').decode(),
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
    ],
)
def test_bad_tokens(token: str) -> None:
    with pytest.raises(errors.ApiError) as info:
        paging.decode(token, FILTERS)
    assert info.value.code == StatusCode.INVALID_ARGUMENT
    assert info.value.violations[0].field == "page_token"


def test_token_for_other_filters() -> None:
    token = paging.encode(LAST, FILTERS)
    with pytest.raises(errors.ApiError, match="different filters"):
        paging.decode(token, {**FILTERS, "kind": "backtest"})
