"""Wire facts: what ktrdrd and ktrdrctl must agree on, written down once for both sides.

Standard library only (``enum``, ``os.path``, ``re``) and nothing else: ktrdrctl imports this module
on every command, so it must stay as cheap as the client itself. The daemon imports the same names,
so the two sides of the socket cannot drift apart (they once did: ``ops wait`` treated an
INTERRUPTED operation as a success).

What it holds:

- resource names: an operation is ``operations/op_<26 lowercase Crockford base32>``;
- the operation states (:class:`OperationState`, with the terminal set) and the event types
  (:class:`EventType`), as the journal stores them; their proto3 JSON forms carry a prefix
  (``OPERATION_STATE_RUNNING``);
- the gRPC status codes (:class:`StatusCode`), numbers and names, as both transports send them;
- the ctl frame cap (:data:`FRAME_LIMIT`) and the largest strategy document (:data:`MAX_STRATEGY_BYTES`);
- the supported timeframes (:data:`TIMEFRAMES`) and the named fixes of a bar import
  (:data:`IMPORT_FIXES`, :data:`STANDARD_FIXES`);
- the default directories and the names of the files inside them (sockets, lock, database).

The lifecycle rules (which state may follow which) belong to the daemon's operations core.
"""

from __future__ import annotations

import enum
import os.path
import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

# -- resource names ------------------------------------------------------------------------------

#: The collection prefix of an operation's resource name.
NAME_PREFIX = "operations/"
#: An operation id: ``op_`` + 26 lowercase Crockford base32 characters (a ULID: 48-bit millisecond
#: time, 80 random bits; string order is creation order).
ID_PREFIX = "op_"
ID_ALPHABET = "0123456789abcdefghjkmnpqrstvwxyz"
ID_PATTERN = re.compile(r"op_[0-9a-hjkmnp-tv-z]{26}")


def operation_name(op_id: str) -> str:
    """``op_x`` → ``operations/op_x`` (no check; see :func:`parse_operation`)."""
    return NAME_PREFIX + op_id


def parse_operation(text: str) -> str | None:
    """The id in ``operations/op_…`` or a bare ``op_…``; None when ``text`` is neither form."""
    op_id = text.removeprefix(NAME_PREFIX)
    return op_id if ID_PATTERN.fullmatch(op_id) else None


# -- operation states and events -----------------------------------------------------------------

#: The prefix of the states' proto enum names (``OPERATION_STATE_RUNNING`` in proto3 JSON).
STATE_ENUM_PREFIX = "OPERATION_STATE_"
#: The prefix of the event types' proto enum names (``OPERATION_EVENT_TYPE_PROGRESS``).
EVENT_ENUM_PREFIX = "OPERATION_EVENT_TYPE_"


class OperationState(enum.StrEnum):
    """An operation's state, by the name the journal stores (equal to that plain string).

    PENDING → RUNNING → SUCCEEDED | FAILED | CANCELLED; INTERRUPTED when the daemon restarted and
    nothing could reattach the operation, or its progress could not be journaled (it may be resumed). The last four are terminal
    (``done`` on the wire).
    """

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    INTERRUPTED = "INTERRUPTED"


TERMINAL_STATES: frozenset[OperationState] = frozenset(
    {OperationState.SUCCEEDED, OperationState.FAILED, OperationState.CANCELLED, OperationState.INTERRUPTED}
)
#: Terminal states that are not a success: ``ops wait`` / ``ops watch`` exit 1 on them.
UNSUCCESSFUL_STATES: frozenset[OperationState] = TERMINAL_STATES - {OperationState.SUCCEEDED}


class EventType(enum.StrEnum):
    """What an operation event records (every event also carries state, stage and progress)."""

    STATE = "state"
    PROGRESS = "progress"
    STAGE = "stage"
    MESSAGE = "message"


# -- status codes --------------------------------------------------------------------------------


class StatusCode(enum.IntEnum):
    """gRPC status codes (``grpc.StatusCode`` values): ctl error frames carry the same numbers."""

    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    DEADLINE_EXCEEDED = 4
    NOT_FOUND = 5
    ALREADY_EXISTS = 6
    PERMISSION_DENIED = 7
    RESOURCE_EXHAUSTED = 8
    FAILED_PRECONDITION = 9
    ABORTED = 10
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    DATA_LOSS = 15
    UNAUTHENTICATED = 16


def code_name(code: int) -> str:
    """``5`` → ``NOT_FOUND``; a number outside the known codes → ``CODE_<n>``."""
    try:
        return StatusCode(code).name
    except ValueError:
        return f"CODE_{code}"


# -- ctl frames ----------------------------------------------------------------------------------

#: Bytes per ctl frame, newline excluded, in both directions.
FRAME_LIMIT = 4 * 1024 * 1024

# -- request sizes -------------------------------------------------------------------------------

#: Largest strategy document (``source.content``) the daemon accepts, in UTF-8 bytes: 2 MiB, ~200
#: times the shipped strategies (parsing one this size costs about 2 s of CPU in a worker thread).
#: ktrdrctl refuses a larger file before sending it.
MAX_STRATEGY_BYTES = 2 * 1024 * 1024

# -- bars ----------------------------------------------------------------------------------------

#: The timeframes ktrdr supports end to end (IB has a bar size for each; :mod:`ktrdr.timeframes`
#: parses them); ktrdrctl offers exactly these.
TIMEFRAMES = ("1m", "5m", "15m", "30m", "1h", "4h", "1d", "1w")

#: The named fixes an import may ask for (``ImportBarsHeader.repairs``), in the order they run; what
#: each does: ``ktrdrd/data/repair.py``. ktrdrctl offers exactly these for ``data import --fix``.
IMPORT_FIXES = ("swap-high-low", "sort", "dedupe-exact", "dedupe-keep-last")
#: ``standard`` on the wire, ``data import --repair``: the fixes that never discard a differing row.
STANDARD_FIXES = ("swap-high-low", "sort", "dedupe-exact")

# -- directories and the files in them -----------------------------------------------------------

#: The runtime dir of the system service (systemd ``RuntimeDirectory=ktrdr``).
SYSTEM_RUNTIME_DIR = "/run/ktrdr"
#: The state dir of the system service (systemd ``StateDirectory=ktrdr``).
SYSTEM_STATE_DIR = "/var/lib/ktrdr"
#: The directory name under a user's ``$XDG_RUNTIME_DIR`` and ``$XDG_STATE_HOME``.
APP_DIR = "ktrdr"
#: In the runtime dir: the gRPC socket, the ctl socket and the daemon's instance lock.
GRPC_SOCKET = "grpc.sock"
CTL_SOCKET = "ctl.sock"
LOCK_NAME = "ktrdrd.lock"
#: In the state dir: the journal database.
DB_NAME = "ktrdr.db"


def default_runtime_dir(env: Mapping[str, str], euid: int) -> str | None:
    """``/run/ktrdr`` for root, else ``$XDG_RUNTIME_DIR/ktrdr``; None when that variable is unset."""
    if euid == 0:
        return SYSTEM_RUNTIME_DIR
    xdg = env.get("XDG_RUNTIME_DIR")
    return os.path.join(xdg, APP_DIR) if xdg else None


def default_state_dir(env: Mapping[str, str], euid: int) -> str | None:
    """``/var/lib/ktrdr`` for root, else ``$XDG_STATE_HOME/ktrdr`` (``~/.local/state/ktrdr``);
    None when neither ``XDG_STATE_HOME`` nor ``HOME`` is set."""
    if euid == 0:
        return SYSTEM_STATE_DIR
    xdg = env.get("XDG_STATE_HOME")
    if xdg:
        return os.path.join(xdg, APP_DIR)
    home = env.get("HOME")
    return os.path.join(home, ".local", "state", APP_DIR) if home else None


def split_sweep_values(text: str) -> list[str]:
    """The values of ``--set path=v1,v2,…``: ``text`` split at commas outside brackets, braces and
    quotes (``"[64,32],[32]"`` → ``["[64,32]", "[32]"]``); with several values each is stripped.
    One value (no such comma) means a plain override, not a sweep. ValueError for an empty value
    between commas. The CLI splits with this to tell overrides from sweeps; the strategy library
    splits sweep text the same way."""
    parts, depth, quote, start = [], 0, "", 0
    for index, char in enumerate(text):
        if quote:
            quote = "" if char == quote else quote
        elif char in "\"'":
            quote = char
        elif char in "[{":
            depth += 1
        elif char in "]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(text[start:index])
            start = index + 1
    parts.append(text[start:])
    if len(parts) == 1:
        return parts
    if any(not part.strip() for part in parts):
        raise ValueError("an empty value between commas")
    return [part.strip() for part in parts]
