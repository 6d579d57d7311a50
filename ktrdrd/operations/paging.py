"""Opaque page tokens of ListOperations: URL-safe base64 of ``{"after": last id, "f": filter digest}``.

A token is bound to the filters it was issued for; using it with other filters is INVALID_ARGUMENT.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from typing import Any

from ktrdr.rpc import errors
from ktrdr.wire import ID_PATTERN


def filter_digest(filters: dict[str, Any]) -> str:
    """A short stable digest of the list filters (not of page size)."""
    text = json.dumps(filters, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode(last_id: str, filters: dict[str, Any]) -> str:
    """The token that continues after ``last_id`` under ``filters``."""
    raw = json.dumps({"after": last_id, "f": filter_digest(filters)}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode(token: str, filters: dict[str, Any]) -> str:
    """The last id a token continues after; INVALID_ARGUMENT(page_token) for anything not issued here."""
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw)
        last_id, digest = data["after"], data["f"]
    except (binascii.Error, ValueError, TypeError, KeyError) as exc:
        raise errors.invalid_argument("page_token", "not a token returned by ListOperations") from exc
    if not isinstance(last_id, str) or not ID_PATTERN.fullmatch(last_id):
        raise errors.invalid_argument("page_token", "not a token returned by ListOperations")
    if digest != filter_digest(filters):
        raise errors.invalid_argument("page_token", "the token was issued for different filters")
    return last_id
