"""ktrdr.wire: the facts both sides of the socket import, checked against the contract they mirror
(the generated proto enums, grpc's status codes) and against the daemon's own producers."""

from __future__ import annotations

import grpc
import pytest

from ktrdr import wire
from ktrdr.daemon.v1 import operations_pb2
from ktrdrd.config import load
from ktrdrd.operations.ids import IdGenerator


def test_states_and_event_types_are_the_proto_enums() -> None:
    proto_states = [
        n
        for n in (v.name for v in operations_pb2.OperationState.DESCRIPTOR.values)
        if not n.endswith("_UNSPECIFIED")
    ]
    assert [wire.STATE_ENUM_PREFIX + s for s in wire.OperationState] == proto_states
    proto_events = [
        n
        for n in (v.name for v in operations_pb2.OperationEventType.DESCRIPTOR.values)
        if not n.endswith("_UNSPECIFIED")
    ]
    assert [wire.EVENT_ENUM_PREFIX + t.upper() for t in wire.EventType] == proto_events
    assert set(wire.OperationState) - {"PENDING", "RUNNING"} == wire.TERMINAL_STATES
    assert "INTERRUPTED" in wire.UNSUCCESSFUL_STATES and "SUCCEEDED" not in wire.UNSUCCESSFUL_STATES


def test_status_codes_are_grpcs() -> None:
    assert {c.name: int(c) for c in wire.StatusCode} == {c.name: c.value[0] for c in grpc.StatusCode}
    assert wire.code_name(5) == "NOT_FOUND" and wire.code_name(99) == "CODE_99"


def test_generated_ids_have_the_wire_form() -> None:
    generator = IdGenerator()
    for op_id in (generator.new_id() for _ in range(1000)):
        assert wire.ID_PATTERN.fullmatch(op_id)
        assert wire.parse_operation(op_id) == op_id
        assert wire.parse_operation(wire.operation_name(op_id)) == op_id
    for bad in ("", "op_", "operations/", "op_" + "0" * 25, "op_" + "I" * 26, "x/op_" + "0" * 26):
        assert wire.parse_operation(bad) is None


@pytest.mark.parametrize(
    ("env", "euid", "runtime_dir", "state_dir"),
    [
        ({"XDG_RUNTIME_DIR": "/run/user/0", "HOME": "/root"}, 0, "/run/ktrdr", "/var/lib/ktrdr"),
        (
            {"XDG_RUNTIME_DIR": "/run/user/1000", "HOME": "/home/u"},
            1000,
            "/run/user/1000/ktrdr",
            "/home/u/.local/state/ktrdr",
        ),
        ({"XDG_STATE_HOME": "/s", "HOME": "/home/u"}, 1000, None, "/s/ktrdr"),
        ({}, 1000, None, None),
    ],
)
def test_default_dirs(env: dict[str, str], euid: int, runtime_dir: str | None, state_dir: str | None) -> None:
    assert wire.default_runtime_dir(env, euid) == runtime_dir
    assert wire.default_state_dir(env, euid) == state_dir


@pytest.mark.parametrize("euid", [0, 1000])
def test_the_daemon_config_defaults_come_from_the_wire(euid: int) -> None:
    env = {"XDG_RUNTIME_DIR": "/run/user/4242", "XDG_STATE_HOME": "/tmp/state-home"}
    config = load(env=env, euid=euid)
    assert str(config.runtime_dir) == wire.default_runtime_dir(env, euid)
    assert str(config.state_dir) == wire.default_state_dir(env, euid)
