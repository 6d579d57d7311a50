"""gRPC on grpc.sock against a real ktrdrd process: services, rich errors, health, reflection."""

from __future__ import annotations

import time

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status

from ktrdr.daemon.v1 import (
    operations_pb2,
    operations_pb2_grpc,
    strategies_pb2,
    strategies_pb2_grpc,
    system_pb2,
    system_pb2_grpc,
    training_pb2,
    training_pb2_grpc,
)
from tests.support.tinystrategy import SMALLEST_YAML

START = "ktrdr.test.v1/StartTicker"
DAEMON_SERVICES = [
    f"ktrdr.daemon.v1.{s}Service"
    for s in ("System", "Operations", "Training", "Data", "Strategies", "Models", "Backtests")
]


@pytest.fixture
def channel(daemon):
    with grpc.insecure_channel(daemon.grpc_target) as ch:
        yield ch


def details(err: grpc.RpcError) -> dict[str, object]:
    """The google.rpc.Status details of a failed call, by type name."""
    status = rpc_status.from_call(err)
    assert status is not None, "no grpc-status-details-bin trailer"
    out: dict[str, object] = {}
    for packed in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest, error_details_pb2.RetryInfo):
            if packed.Is(cls.DESCRIPTOR):
                msg = cls()
                packed.Unpack(msg)
                out[cls.DESCRIPTOR.name] = msg
    return out


def test_get_info_and_socket_modes(daemon, channel):
    info = system_pb2_grpc.SystemServiceStub(channel).GetInfo(system_pb2.GetInfoRequest(), timeout=10)
    assert info.pid == daemon.proc.pid
    assert info.grpc_socket == str(daemon.grpc_socket) and info.state_dir == str(daemon.state_dir)
    assert info.instance_id and info.version
    for sock in (daemon.grpc_socket, daemon.ctl_socket):
        assert sock.stat().st_mode & 0o777 == 0o660


def test_health_has_overall_services_and_dependencies(channel):
    stub = health_pb2_grpc.HealthStub(channel)
    for service in ["", "ktrdr.journal", *DAEMON_SERVICES]:
        reply = stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING, service
    with pytest.raises(grpc.RpcError) as err:
        stub.Check(health_pb2.HealthCheckRequest(service="no.such.Service"), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND


def test_reflection_lists_every_service_and_resolves_files(channel):
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    requests = [
        reflection_pb2.ServerReflectionRequest(list_services=""),
        reflection_pb2.ServerReflectionRequest(file_containing_symbol="ktrdr.daemon.v1.OperationsService"),
    ]
    listed, files = list(stub.ServerReflectionInfo(iter(requests), timeout=10))
    names = {s.name for s in listed.list_services_response.service}
    assert set(DAEMON_SERVICES) <= names and "grpc.health.v1.Health" in names
    assert files.file_descriptor_response.file_descriptor_proto


def test_errors_carry_codes_and_google_rpc_details(daemon, channel):
    ops = operations_pb2_grpc.OperationsServiceStub(channel)
    with pytest.raises(grpc.RpcError) as err:
        ops.GetOperation(operations_pb2.GetOperationRequest(name="operations/op_" + "b" * 26), timeout=10)
    assert err.value.code() == grpc.StatusCode.NOT_FOUND
    assert details(err.value)["ErrorInfo"].reason == "NOT_FOUND"

    bad_label = operations_pb2.ListOperationsRequest(filter=operations_pb2.OperationFilter(label=["x"]))
    with pytest.raises(grpc.RpcError) as err:
        ops.ListOperations(bad_label, timeout=10)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    violations = details(err.value)["BadRequest"].field_violations
    assert [v.field for v in violations] == ["filter.label"]

    with pytest.raises(grpc.RpcError) as err:
        ops.ListOperations(operations_pb2.ListOperationsRequest(page_token="nope"), timeout=10)
    assert [v.field for v in details(err.value)["BadRequest"].field_violations] == ["page_token"]

    unspecified = operations_pb2.ListOperationsRequest(filter=operations_pb2.OperationFilter(state=[0]))
    with pytest.raises(grpc.RpcError) as err:
        ops.ListOperations(unspecified, timeout=10)
    assert [v.field for v in details(err.value)["BadRequest"].field_violations] == ["filter.state[0]"]

    name = daemon.ctl(START, {"params": {"steps": 1, "interval_s": 0}})["operation"]["name"]
    ops.WaitOperation(operations_pb2.WaitOperationRequest(name=name), timeout=20)
    with pytest.raises(grpc.RpcError) as err:
        ops.CancelOperation(operations_pb2.CancelOperationRequest(name=name), timeout=10)
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert details(err.value)["ErrorInfo"].reason == "OPERATION_DONE"

    with pytest.raises(grpc.RpcError) as err:
        training_pb2_grpc.TrainingServiceStub(channel).StartTrainingBatch(
            training_pb2.StartTrainingBatchRequest(), timeout=10
        )
    assert err.value.code() == grpc.StatusCode.FAILED_PRECONDITION  # test daemons have no training host


def test_an_error_too_large_for_grpc_trailers_arrives_cut_with_its_code_and_details(channel):
    """grpcio clients refuse trailers over 8 KiB by default: an error that big used to arrive as
    RESOURCE_EXHAUSTED "Stream removed" with no details. A strategy of 300 unknown keys (a violation
    each), and one whose long non-ASCII source name fills every message, both arrive as
    INVALID_ARGUMENT with readable details; the violations left out are counted in the last one."""
    strategies = strategies_pb2_grpc.StrategiesServiceStub(channel)

    def refusal(source: strategies_pb2.StrategySource) -> grpc.RpcError:
        with pytest.raises(grpc.RpcError) as err:
            strategies.DescribeStrategy(strategies_pb2.DescribeStrategyRequest(source=source), timeout=30)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT, err.value.details()
        assert details(err.value)["ErrorInfo"].reason == "STRATEGY_INVALID"
        assert len(err.value.details().encode()) <= 1024, "the message was not cut"
        return err.value

    unknown_keys = SMALLEST_YAML + "".join(f"unknown_key_{i}: 1\n" for i in range(300))
    *shown, last = details(refusal(strategies_pb2.StrategySource(content=unknown_keys)))[
        "BadRequest"
    ].field_violations
    assert shown and "unknown_key_0" in shown[0].description
    assert last.field == "source.content" and "left out to fit the gRPC trailers" in last.description

    long_name = strategies_pb2.StrategySource(content="name: [", source_name="é" * 4000 + ".yaml")
    [violation] = details(refusal(long_name))["BadRequest"].field_violations
    assert violation.field == "source.content" and violation.description.startswith("éé")


def test_watch_and_list_over_grpc(daemon, channel):
    ops = operations_pb2_grpc.OperationsServiceStub(channel)
    name = daemon.ctl(START, {"params": {"steps": 4, "interval_s": 0.02}, "labels": {"suite": "grpc"}})[
        "operation"
    ]["name"]
    stream = list(ops.WatchOperation(operations_pb2.WatchOperationRequest(name=name), timeout=30))
    assert stream[0].WhichOneof("item") == "snapshot" and stream[0].snapshot.name == name
    events = [m.event for m in stream[1:]]
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert events[-1].state == operations_pb2.OPERATION_STATE_SUCCEEDED
    assert max(e.progress.current for e in events) == 4

    listed = ops.ListOperations(
        operations_pb2.ListOperationsRequest(filter=operations_pb2.OperationFilter(label=["suite=grpc"])),
        timeout=10,
    )
    assert [op.name for op in listed.operations] == [name]
    assert listed.operations[0].done and listed.operations[0].last_seq == events[-1].seq


def test_calls_beyond_grpc_max_concurrent_rpcs_get_resource_exhausted(daemon_factory):
    daemon = daemon_factory.start(args=("--grpc-max-concurrent-rpcs", "2"))
    name = daemon.ctl(START, {"params": {"steps": 100000, "interval_s": 0.05}})["operation"]["name"]
    with grpc.insecure_channel(daemon.grpc_target) as ch:
        ops = operations_pb2_grpc.OperationsServiceStub(ch)
        wait = operations_pb2.WaitOperationRequest(name=name)
        wait.timeout.FromSeconds(30)
        waits = [ops.WaitOperation.future(wait, timeout=60) for _ in range(3)]
        try:
            # All three stay in flight until the cancel: whichever came third is refused at once.
            deadline = time.monotonic() + 20
            while not any(w.done() for w in waits):
                assert time.monotonic() < deadline, "no call was refused"
                time.sleep(0.05)
        finally:
            daemon.ctl("ktrdr.daemon.v1.OperationsService/CancelOperation", {"name": name})
        codes = sorted(str(w.code()) for w in waits)
        assert codes == ["StatusCode.OK", "StatusCode.OK", "StatusCode.RESOURCE_EXHAUSTED"], codes
        info = system_pb2_grpc.SystemServiceStub(ch)
        assert info.GetInfo(system_pb2.GetInfoRequest(), timeout=10).pid == daemon.proc.pid
