"""Market symbols as every part of ktrdr accepts them, written once.

A symbol names files (the bar cache's ``<SYMBOL>/<TF>.parquet``, a backtest's artifacts directory)
and keys (a training request's ``bars/<SYMBOL>/<TF>`` blobs), so it is kept to what is safe in all
of them: 1–32 uppercase letters, digits and ``. _ -``, starting with a letter or digit. What a user
writes is normalized first (:func:`normalize`: surrounding blanks removed, upper-cased), so
``eurusd`` in a strategy file or on the command line is ``EURUSD``.

Standard library only: strategy loading, the job wire formats and the daemon all import it.
"""

from __future__ import annotations

import re

#: The longest symbol, in characters.
MAX_CHARS = 32
#: A symbol, whole (use ``fullmatch``): what :func:`is_symbol` checks.
PATTERN = re.compile(rf"[A-Z0-9][A-Z0-9._-]{{0,{MAX_CHARS - 1}}}")
#: The rule in words, for error messages.
RULE = f"1-{MAX_CHARS} letters, digits or . _ -, starting with a letter or digit"


def normalize(text: str) -> str:
    """What a user wrote as a symbol, as ktrdr stores it: stripped and upper-cased (not checked)."""
    return text.strip().upper()


def is_symbol(value: object) -> bool:
    """True when ``value`` is a normalized, valid symbol (a ``str`` matching :data:`PATTERN` whole)."""
    return isinstance(value, str) and PATTERN.fullmatch(value) is not None
