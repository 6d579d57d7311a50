"""OperationsService.GetOperation caches finished operations: a deletion (DeleteOperation or
retention) must make the next Get answer NOT_FOUND, never a cached copy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from ktrdr.daemon.v1 import operations_pb2 as pb
from ktrdr.rpc.errors import ApiError
from ktrdr.rpc.registry import Call
from ktrdr.wire import StatusCode
from ktrdrd.services.operations import OperationsService
from tests.support.journal import opened
from tests.support.kinds import KIND

CALL = Call("ctl")


async def _finished(core, service: OperationsService) -> tuple[str, pb.GetOperationResponse]:
    record = await core.start(KIND, params={"steps": 2, "interval_s": 0})
    await core.wait(record.name, 10)
    first = await service.GetOperation(pb.GetOperationRequest(name=record.name), CALL)
    second = await service.GetOperation(pb.GetOperationRequest(name=record.name), CALL)
    assert second is first, "a finished operation is answered from the cache"
    assert first.operation.state == pb.OPERATION_STATE_SUCCEEDED
    return record.name, first


def test_delete_evicts_the_cached_answer(db_path: Path) -> None:
    async def main() -> None:
        async with opened(db_path) as core:
            service = OperationsService(core)
            name, _ = await _finished(core, service)
            await service.DeleteOperation(pb.DeleteOperationRequest(name=name), CALL)
            with pytest.raises(ApiError) as err:
                await service.GetOperation(pb.GetOperationRequest(name=name), CALL)
            assert err.value.code == StatusCode.NOT_FOUND

    asyncio.run(main())


def test_retention_evicts_the_cached_answer(db_path: Path) -> None:
    async def main() -> None:
        async with opened(db_path, retention_s=0.05) as core:
            service = OperationsService(core)
            name, _ = await _finished(core, service)
            time.sleep(0.1)
            assert await core.apply_retention() == 1
            with pytest.raises(ApiError) as err:
                await service.GetOperation(pb.GetOperationRequest(name=name), CALL)
            assert err.value.code == StatusCode.NOT_FOUND

    asyncio.run(main())
