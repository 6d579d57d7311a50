"""Large answers are built off the event loop (ListOperations pages over INLINE_RECORDS, ctl result
JSON over INLINE_JSON_BYTES) and must be exactly what the inline path gives."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from google.protobuf import json_format

from ktrdr.daemon.v1 import operations_pb2 as pb
from ktrdr.rpc.errors import ApiError
from ktrdr.rpc.registry import Call, Registry
from ktrdr.wire import StatusCode
from ktrdrd.ctl.protocol import INLINE_JSON_BYTES
from ktrdrd.ctl.server import CtlServer
from ktrdrd.services.operations import INLINE_RECORDS, OperationsService
from tests.support.ctl_dispatch import dispatch
from tests.support.journal import opened
from tests.support.kinds import KIND


def test_a_large_page_is_complete_ordered_and_identical_over_ctl(db_path: Path, tmp_path: Path) -> None:
    n = 3 * INLINE_RECORDS

    async def main() -> None:
        async with opened(db_path) as core:
            for i in range(n):
                record = await core.start(KIND, params={"steps": 1, "interval_s": 0}, labels={"i": str(i)})
                await core.wait(record.name, 10)
            service = OperationsService(core)
            direct = await service.ListOperations(pb.ListOperationsRequest(page_size=n), Call("grpc"))
            assert len(direct.operations) == n
            assert [op.labels["i"] for op in direct.operations] == [str(i) for i in reversed(range(n))]
            assert direct.ByteSize() > INLINE_JSON_BYTES  # the ctl side takes its thread path too

            ctl = CtlServer(tmp_path / "ctl.sock", Registry([service]))
            request = {
                "jsonrpc": "2.0",
                "id": 7,
                "method": "ktrdr.daemon.v1.OperationsService/ListOperations",
                "params": {"pageSize": n},
            }
            (frame,) = await dispatch(ctl, json.dumps(request))
            expected = json_format.MessageToDict(direct, always_print_fields_with_no_presence=True)
            assert json.loads(frame) == {"jsonrpc": "2.0", "id": 7, "result": expected}

    asyncio.run(main())


def test_a_page_over_the_byte_budget_is_cut_and_the_token_goes_on(db_path: Path, monkeypatch) -> None:
    """Pages stay under PAGE_BYTES (so their JSON fits a ctl frame); nothing is lost or repeated."""
    from ktrdrd.services import operations as service_module

    monkeypatch.setattr(service_module, "PAGE_BYTES", 20_000)
    n = 40
    labels = {f"k{j}": "v" * 200 for j in range(4)}  # ~900 bytes per operation

    async def main() -> None:
        async with opened(db_path) as core:
            for i in range(n):
                record = await core.start(KIND, params={"steps": 0}, labels={**labels, "i": str(i)})
                await core.wait(record.name, 10)
            service = OperationsService(core)
            seen: list[str] = []
            token, pages = "", 0
            while True:
                request = pb.ListOperationsRequest(page_size=1000, page_token=token)
                page = await service.ListOperations(request, Call("grpc"))
                assert page.ByteSize() <= 20_000 and page.operations
                seen += [op.labels["i"] for op in page.operations]
                pages += 1
                token = page.next_page_token
                if not token:
                    break
            assert pages > 1
            assert seen == [str(i) for i in reversed(range(n))]

    asyncio.run(main())


def test_the_basic_view_leaves_results_out_and_an_unknown_view_is_refused(db_path: Path) -> None:
    async def main() -> None:
        async with opened(db_path) as core:
            for _ in range(2):
                record = await core.start(KIND, params={"steps": 1, "interval_s": 0})
                await core.wait(record.name, 10)
            service = OperationsService(core)
            full, default, basic = [
                await service.ListOperations(pb.ListOperationsRequest(view=view), Call("grpc"))
                for view in (pb.OPERATION_VIEW_FULL, pb.OPERATION_VIEW_UNSPECIFIED, pb.OPERATION_VIEW_BASIC)
            ]
            assert full == default and all(op.HasField("result") for op in full.operations)
            assert [op.name for op in basic.operations] == [op.name for op in full.operations]
            assert not any(op.HasField("result") for op in basic.operations)
            for op in full.operations:
                op.ClearField("result")
            assert basic == full  # nothing else differs
            with pytest.raises(ApiError) as refused:
                await service.ListOperations(pb.ListOperationsRequest(view=9), Call("grpc"))
            assert refused.value.code == StatusCode.INVALID_ARGUMENT
            assert [v.field for v in refused.value.violations] == ["view"]

    asyncio.run(main())
