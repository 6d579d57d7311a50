"""Operation and event records: the values the journal stores and the operations core hands out.

Built with keywords only. States and event types are :mod:`ktrdr.wire`'s enums (equal to the
plain strings the database holds). Times are float seconds since the Unix epoch (UTC). ``progress`` is a dict with the keys
``fraction`` (0..1), ``message``, ``current``, ``total`` (ints, units chosen by the kind),
``eta_s`` (seconds or None) and ``metrics`` (str -> float).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any

from ktrdr.wire import NAME_PREFIX, TERMINAL_STATES, EventType, OperationState


def empty_progress() -> dict[str, Any]:
    """A fresh progress dict with every key present."""
    return {"fraction": 0.0, "message": "", "current": 0, "total": 0, "eta_s": None, "metrics": {}}


@dataclass(kw_only=True)
class OperationRecord:
    """One operation, mirroring proto ``ktrdr.daemon.v1.Operation``.

    ``error`` is ``{"code": int (gRPC code), "message": str, "reason": str}`` or None; ``result`` is the
    proto JSON of a ``google.protobuf.Any`` (``{"@type": ..., ...}``) or None. ``params`` are the start
    parameters (not part of the proto Operation; kept for idempotent starts and reattach).
    """

    name: str
    kind: str
    state: OperationState
    stage: str
    progress: dict[str, Any]
    labels: dict[str, str]
    parent: str
    request_id: str
    create_time: float
    start_time: float | None
    update_time: float
    end_time: float | None
    error: dict[str, Any] | None
    result: dict[str, Any] | None
    last_seq: int
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def done(self) -> bool:
        """True once the operation reached a terminal state (SUCCEEDED, FAILED, CANCELLED, INTERRUPTED)."""
        return self.state in TERMINAL_STATES

    @property
    def id(self) -> str:
        """The id part of the name (``op_...``)."""
        return self.name.removeprefix(NAME_PREFIX)

    def copy(self) -> OperationRecord:
        """A deep copy the caller may mutate freely."""
        return copy.deepcopy(self)


@dataclass(frozen=True, kw_only=True)
class EventRecord:
    """One journal event of an operation; ``seq`` starts at 1 and increases by 1 per operation.

    Every event carries the operation's state, stage and progress as they were when it was written;
    ``type`` says what changed (``state``, ``progress``, ``stage`` or ``message``). Shared between
    watchers: treat as read-only (``progress`` included).
    """

    operation: str
    seq: int
    time: float
    type: EventType
    state: OperationState
    stage: str
    progress: dict[str, Any]
    message: str
