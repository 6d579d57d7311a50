"""Operation ids (the form is :data:`ktrdr.wire.ID_PATTERN`), sortable by creation time.

The 128 bits are a 48-bit millisecond Unix timestamp followed by 80 random bits (the ULID layout).
Within one millisecond of one process the random part is incremented, so ids of one process are
strictly increasing and string order == creation order.
"""

from __future__ import annotations

import secrets
import time

from ktrdr.rpc import errors
from ktrdr.wire import ID_ALPHABET, ID_PREFIX, parse_operation

_RANDOM_BITS = 80


class IdGenerator:
    """Generates increasing ids; use from one thread (the event loop)."""

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_random = 0

    def new_id(self) -> str:
        """A new ``op_...`` id, greater than every id this generator returned before."""
        now_ms = time.time_ns() // 1_000_000
        if now_ms > self._last_ms:
            self._last_ms, self._last_random = now_ms, secrets.randbits(_RANDOM_BITS)
        else:
            self._last_random += 1
            if self._last_random >> _RANDOM_BITS:
                self._last_ms, self._last_random = self._last_ms + 1, 0
        value = (self._last_ms << _RANDOM_BITS) | self._last_random
        chars = [ID_ALPHABET[(value >> shift) & 31] for shift in range(125, -5, -5)]
        return ID_PREFIX + "".join(chars)


def parse_name(name: str, field: str = "name") -> str:
    """The id of ``operations/op_...`` (a bare ``op_...`` is accepted too); INVALID_ARGUMENT otherwise."""
    op_id = parse_operation(name) if isinstance(name, str) else None
    if op_id is None:
        raise errors.invalid_argument(field, f"{name!r} is not an operation name (operations/op_<26 base32>)")
    return op_id
