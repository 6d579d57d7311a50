"""Following a WatchOperation stream: fold items into the current operation and display them.

The stream (``WatchOperationResponse`` JSON) is ``{"snapshot": Operation}`` first, then
``{"event": OperationEvent}`` items whose state/stage/progress are the values *after* the change.
:class:`Tracker` keeps the merged operation and the last sequence number seen (what ``--after-seq``
resumes from). Two displays: :class:`TtyView` redraws one status line in place (``\\r`` + erase to
end of line) and prints state/stage changes and messages above it; :class:`LineView` prints one
plain line per item for pipes and logs.
"""

from __future__ import annotations

import os
import time
from typing import Any, TextIO

from ktrdr import wire
from ktrdrctl import render

_ERASE_TO_EOL = "\x1b[K"


class Tracker:
    """The operation as known from the stream so far, and the last event sequence number seen."""

    def __init__(self, name: str, after_seq: int = 0) -> None:
        self.op: dict[str, Any] = {"name": name}
        self.last_seq = after_seq

    @property
    def state(self) -> str:
        return render.state_name(self.op)

    @property
    def done(self) -> bool:
        return bool(self.op.get("done")) or self.state in wire.TERMINAL_STATES

    def apply(self, item: dict[str, Any]) -> dict[str, Any] | None:
        """Fold one stream item in; returns the event (None for a snapshot)."""
        if "snapshot" in item:
            self.op = dict(item["snapshot"])
            self.last_seq = max(self.last_seq, render.as_int(self.op.get("lastSeq")))
            return None
        event = item.get("event") or {}
        self.last_seq = max(self.last_seq, render.as_int(event.get("seq")))
        if event.get("state"):
            self.op["state"] = event["state"]
        self.op["stage"] = event.get("stage", "")
        self.op["progress"] = event.get("progress") or {}
        self.op["lastSeq"] = str(self.last_seq)
        if event.get("time"):
            self.op["updateTime"] = event["time"]
        if self.state in wire.TERMINAL_STATES:
            self.op["done"] = True
            self.op.setdefault("endTime", event.get("time"))
        return event


def event_type(event: dict[str, Any]) -> str:
    return render.enum_name(event.get("type"), wire.EVENT_ENUM_PREFIX)


def status_line(op: dict[str, Any]) -> str:
    """``RUNNING  train  [#####---------------]  25%  5/20  epoch 5/20  ETA 1m05s``."""
    progress = op.get("progress") or {}
    fraction = float(progress.get("fraction", 0.0))
    parts = [
        render.state_name(op),
        op.get("stage", "") or "-",
        render.progress_bar(fraction),
        render.percent(fraction).strip(),
        render.progress_details(progress),
    ]
    return "  ".join(part for part in parts if part)


def header_line(op: dict[str, Any]) -> str:
    seq = render.as_int(op.get("lastSeq"))
    return f"{op.get('name', '')}  kind {op.get('kind', '') or '-'}  last seq {seq}"


def event_note(event: dict[str, Any], previous_state: str, previous_stage: str) -> str:
    """What an event says beyond progress (a message, a state or stage change); "" when nothing."""
    notes = []
    state = render.enum_name(event.get("state"), wire.STATE_ENUM_PREFIX) if event.get("state") else ""
    if state and state != previous_state:
        notes.append(f"state {state}")
    if event_type(event) == "STAGE" and event.get("stage", "") != previous_stage:
        notes.append(f"stage {event.get('stage', '') or '-'}")
    if event.get("message"):
        notes.append(event["message"])
    return ": ".join(notes)


class LineView:
    """One line per stream item, for pipes and files."""

    def __init__(self, out: TextIO) -> None:
        self.out = out

    def show(self, tracker: Tracker, event: dict[str, Any] | None) -> None:
        if event is None:
            line = f"{header_line(tracker.op)}  {status_line(tracker.op)}"
        else:
            stamp = render.parse_timestamp(event.get("time"))
            when = time.strftime("%H:%M:%S", time.localtime(stamp)) if stamp else "-"
            seq = render.as_int(event.get("seq"))
            line = f"{when}  #{seq}  {event_type(event).lower()}  {status_line(tracker.op)}"
            if event.get("message"):
                line += f"  | {event['message']}"
        self.out.write(line + "\n")
        self.out.flush()

    def close(self) -> None:
        """Nothing to undo for plain lines."""


class TtyView:
    """A status line redrawn in place; notes (state/stage changes, messages) scroll above it."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self._drawn = False
        self._state = ""
        self._stage = ""

    def _width(self) -> int:
        """Columns: ``$COLUMNS``, else the terminal's size, else 80 (a new pty reports 0)."""
        columns = os.environ.get("COLUMNS", "")
        if columns.isdigit() and int(columns) > 0:
            return int(columns)
        try:
            return os.get_terminal_size(self.out.fileno()).columns or 80
        except (OSError, ValueError):
            return 80

    def show(self, tracker: Tracker, event: dict[str, Any] | None) -> None:
        if event is None:
            self._print_above(header_line(tracker.op))
        else:
            note = event_note(event, self._state, self._stage)
            if note:
                self._print_above(f"#{render.as_int(event.get('seq'))} {note}")
        self._state, self._stage = tracker.state, tracker.op.get("stage", "")
        line = status_line(tracker.op)[: max(self._width() - 1, 10)]
        self.out.write("\r" + line + _ERASE_TO_EOL)
        self.out.flush()
        self._drawn = True

    def _print_above(self, text: str) -> None:
        self.out.write("\r" + _ERASE_TO_EOL + text + "\n")

    def close(self) -> None:
        """End the status line so later output starts on a fresh line."""
        if self._drawn:
            self.out.write("\n")
            self.out.flush()
            self._drawn = False
