"""Structured logs: one line per event, JSON when stderr is not a TTY, readable text on a terminal.

Every line carries ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``, ``op`` (the operation id,
when the code runs on behalf of one) and the record's extras (``log.info("x", extra={"k": v})``).

The operation id comes from :data:`current_op`, a ContextVar: the operations core sets it (see
:func:`bind_op`) around a kind handler, and every task spawned from there inherits it, so handler
code never passes the id to its log calls.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

current_op: ContextVar[str] = ContextVar("ktrdr_current_op", default="")

# Attributes every LogRecord has; anything else on a record is an extra.
_STANDARD = set(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}


@contextlib.contextmanager
def bind_op(name: str) -> Iterator[None]:
    """Log lines inside this block (and tasks created in it) carry ``op=name``."""
    token = current_op.set(name)
    try:
        yield
    finally:
        current_op.reset(token)


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
        "level": record.levelname.lower(),
        "logger": record.name,
        "msg": record.getMessage(),
    }
    op = getattr(record, "op", None) or current_op.get()
    if op:
        fields["op"] = op
    for key, value in vars(record).items():
        if key not in _STANDARD and key != "op":
            fields[key] = value
    if record.exc_info:
        fields["exc"] = logging.Formatter().formatException(record.exc_info)
    return fields


class JsonFormatter(logging.Formatter):
    """One JSON object per line; values JSON cannot encode are written as ``str(value)``."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps(_fields(record), default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    """``HH:MM:SS.mmm LEVEL logger: msg [op] k=v …`` for people at a terminal."""

    def format(self, record: logging.LogRecord) -> str:
        fields = _fields(record)
        ts = fields.pop("ts")[11:23]
        head = f"{ts} {fields.pop('level').upper():<7} {fields.pop('logger')}: {fields.pop('msg')}"
        exc = fields.pop("exc", None)
        op = fields.pop("op", None)
        parts = [head] + ([f"[{op}]"] if op else []) + [f"{k}={v}" for k, v in fields.items()]
        return " ".join(parts) + (f"\n{exc}" if exc else "")


def quiet_grpc_core() -> None:
    """Have gRPC's C core log errors only (``GRPC_VERBOSITY=ERROR``, unless set): by default it
    writes its own non-JSON INFO lines to stderr, one per failed TLS handshake, so anyone who can
    reach a host's port (a port scan, a plain-TCP client) wrote lines into its log at will. Read
    when grpc is first imported: call before that; child processes inherit it."""
    os.environ.setdefault("GRPC_VERBOSITY", "ERROR")


def setup(log_format: str, log_level: str, stream: TextIO | None = None) -> None:
    """Route the root logger to ``stream`` (stderr) with the chosen format and level.

    ``log_format`` is ``json``, ``text`` or ``auto`` (text when the stream is a TTY, else JSON).
    """
    stream = sys.stderr if stream is None else stream
    if log_format == "auto":
        log_format = "text" if stream.isatty() else "json"
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(log_level.upper())
    logging.getLogger("grpc").setLevel(max(root.level, logging.WARNING))


def set_level(log_level: str) -> None:
    """Change the root logger's minimum level (``debug``, ``info``, ``warning``, ``error``) at run time."""
    root = logging.getLogger()
    root.setLevel(log_level.upper())
    logging.getLogger("grpc").setLevel(max(root.level, logging.WARNING))
