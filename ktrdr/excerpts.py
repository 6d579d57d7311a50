"""Short excerpts of untrusted input for error messages (standard library only).

An error names what was wrong without echoing the input back whole: a 100 KB key is shown as its
first characters and its length. Used by the strategy reader and by the daemon's request checks.
"""

from __future__ import annotations

from typing import Any

#: Characters of an offending value shown in a message (its ``repr``); longer ones are cut.
ECHO_CHARS = 40
#: Longest message kept; a longer one (from a check that echoes more) is cut to this length.
MAX_MESSAGE_CHARS = 400


def echo(value: Any) -> str:
    """``repr(value)``, or its first :data:`ECHO_CHARS` characters, ``…`` and its length in characters."""
    text = repr(value)
    if len(text) <= ECHO_CHARS:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[:ECHO_CHARS]}… ({size:,} characters)"


def clip(message: str) -> str:
    """``message`` cut to :data:`MAX_MESSAGE_CHARS` characters (ending in ``…`` when cut)."""
    return message if len(message) <= MAX_MESSAGE_CHARS else message[: MAX_MESSAGE_CHARS - 1] + "…"
