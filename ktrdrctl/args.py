"""Parsing and checking command-line values before anything is sent to the daemon.

Each parser raises ``click.BadParameter`` (a usage error, exit 2) naming what was expected. Operation
ids and states are checked against :mod:`ktrdr.wire`, the forms the daemon accepts.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

import click

from ktrdr import wire

_LABEL_KEY_RE = re.compile(r"[A-Za-z0-9_./-]+")
_DURATION_RE = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h|d)?")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
#: What ``--start``/``--end`` options accept (``click.DateTime(TIME_FORMATS)``); naive means UTC.
TIME_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%dT%H:%M:%SZ"]


def operation_name(text: str) -> str:
    """``op_x`` or ``operations/op_x`` → ``operations/op_x``, when ``op_x`` is a well-formed id."""
    op_id = wire.parse_operation(text)
    if op_id is None:
        shown = text if len(text) <= 60 else text[:60] + "…"
        raise click.BadParameter(
            f"{shown!r} is not an operation id; expected op_ and 26 characters of 0-9 and a-z "
            "without i, l, o, u (e.g. op_01m8gy9510p9j0h5rbhr2k7wdr), optionally after operations/"
        )
    return wire.operation_name(op_id)


def operation_state(text: str) -> str:
    """``running`` / ``RUNNING`` / ``OPERATION_STATE_RUNNING`` → ``OPERATION_STATE_RUNNING``."""
    short = text.strip().upper().removeprefix(wire.STATE_ENUM_PREFIX)
    if short == "CANCELED":
        short = "CANCELLED"
    if short not in wire.OperationState.__members__:
        known = ", ".join(wire.OperationState.__members__).lower()
        raise click.BadParameter(f"{text!r} is not a state; expected one of {known}")
    return wire.STATE_ENUM_PREFIX + short


def label_selector(text: str) -> str:
    """``key=value`` (the value may be empty); returned unchanged once checked."""
    key, sep, _value = text.partition("=")
    if not sep or not _LABEL_KEY_RE.fullmatch(key):
        raise click.BadParameter(f"{text!r} is not a label selector; expected key=value")
    return text


def parameter_override(text: str) -> dict[str, str]:
    """``path=value`` (``--set``) → ``{"path": …, "value": …}`` (a ``ParameterOverride``); the
    daemon checks the path against the document."""
    path, sep, value = text.partition("=")
    if not sep or not path.strip():
        raise click.BadParameter(
            f"{text!r} is not an override; expected PATH=VALUE (model.training.epochs=20)"
        )
    return {"path": path.strip(), "value": value}


def duration_seconds(text: str) -> float:
    """``90``, ``90s``, ``1.5m``, ``2h``, ``500ms``, ``1d`` → seconds (a bare number is seconds)."""
    match = _DURATION_RE.fullmatch(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration; expected e.g. 30, 30s, 5m, 2h, 500ms")
    return float(match.group(1)) * _UNIT_S[match.group(2) or "s"]


def utc_text(value: datetime | None) -> str | None:
    """A naive (taken as UTC) or aware datetime as proto3 JSON Timestamp text."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


class _Converter(click.ParamType):
    """A click parameter type from one of the parsers above."""

    def __init__(self, name: str, parse) -> None:
        self.name = name
        self._parse = parse

    def convert(self, value, param, ctx):
        if not isinstance(value, str):
            return value
        try:
            return self._parse(value)
        except click.BadParameter as e:
            self.fail(e.message, param, ctx)


OPERATION = _Converter("OPERATION", operation_name)
STATE = _Converter("STATE", operation_state)
LABEL = _Converter("KEY=VALUE", label_selector)
DURATION = _Converter("DURATION", duration_seconds)
OVERRIDE = _Converter("PATH=VALUE", parameter_override)
