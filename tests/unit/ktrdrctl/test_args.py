"""ktrdrctl argument parsers: ids, states, label selectors, durations."""

from __future__ import annotations

import click
import pytest

from ktrdrctl import args

ID = "op_01m8gy9510p9j0h5rbhr2k7wdr"


@pytest.mark.parametrize(
    ("text", "name"), [(ID, f"operations/{ID}"), (f"operations/{ID}", f"operations/{ID}")]
)
def test_operation_name_accepts_id_or_name(text: str, name: str) -> None:
    assert args.operation_name(text) == name


@pytest.mark.parametrize(
    "text",
    [
        "",
        "operations/",
        "op 1",
        "a/b",
        "op_01abc",  # too short
        ID + "0",  # too long
        ID.upper(),  # the daemon's ids are lowercase
        ID[:-1] + "u",  # not Crockford base32 (no i, l, o, u)
        f"operations/{ID}/x",
        f"jobs/{ID}",
        "op_é",
        "9" * 5000,
    ],
)
def test_operation_name_rejects_malformed(text: str) -> None:
    with pytest.raises(click.BadParameter, match="not an operation id") as info:
        args.operation_name(text)
    assert len(info.value.message) < 300  # a huge argument is not echoed whole


@pytest.mark.parametrize(
    ("text", "state"),
    [
        ("running", "OPERATION_STATE_RUNNING"),
        ("FAILED", "OPERATION_STATE_FAILED"),
        ("OPERATION_STATE_PENDING", "OPERATION_STATE_PENDING"),
        ("canceled", "OPERATION_STATE_CANCELLED"),
        ("Interrupted", "OPERATION_STATE_INTERRUPTED"),
    ],
)
def test_operation_state_normalizes(text: str, state: str) -> None:
    assert args.operation_state(text) == state


def test_operation_state_rejects_unknown_and_lists_choices() -> None:
    with pytest.raises(click.BadParameter, match="pending, running, succeeded"):
        args.operation_state("done")
    with pytest.raises(click.BadParameter):
        args.operation_state("UNSPECIFIED")


def test_label_selector() -> None:
    assert args.label_selector("symbol=EURUSD") == "symbol=EURUSD"
    assert args.label_selector("batch=") == "batch="
    for bad in ("symbol", "=x", "a b=c"):
        with pytest.raises(click.BadParameter, match="key=value"):
            args.label_selector(bad)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30", 30.0),
        ("1.5s", 1.5),
        ("2m", 120.0),
        ("1h", 3600.0),
        ("500ms", 0.5),
        ("1d", 86400.0),
        (".5", 0.5),
    ],
)
def test_duration_seconds(text: str, seconds: float) -> None:
    assert args.duration_seconds(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "-1", "1w", "1 m", "abc"])
def test_duration_rejects(text: str) -> None:
    with pytest.raises(click.BadParameter, match="not a duration"):
        args.duration_seconds(text)
