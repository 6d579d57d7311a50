"""The daemon's queue of jobs waiting for a training-host slot (:mod:`ktrdrd.hostjobs.pool`): what
each waiting job is told, and that a job joining the queue tells nobody ahead of it anything new
(every note is a journaled progress event of its operation).

The host is a real gRPC server in this process answering ``GetCapacity`` (one slot) on a unix socket;
the link is a stand-in that is READY (following a host's health is :mod:`ktrdrd.hosts.link`'s job).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import grpc

from ktrdr.hostd.training.v1 import training_host_pb2 as pb
from ktrdrd.hostjobs.dispatch import SERVICE
from ktrdrd.hostjobs.pool import HostPool, Slot
from ktrdrd.hosts.link import READY


@dataclass
class _Status:
    state: str = READY


@dataclass
class ReadyLink:
    """A host link that is READY on ``channel``."""

    channel: grpc.aio.Channel
    status: _Status = field(default_factory=_Status)

    def describe_wait(self) -> str:
        return "never asked: the link is READY"


async def _one_slot_host(sock: Path) -> grpc.aio.Server:
    async def capacity(request: pb.GetCapacityRequest, context: object) -> pb.GetCapacityResponse:
        return pb.GetCapacityResponse(slots_total=1)

    handler = grpc.method_handlers_generic_handler(
        SERVICE.strip("/"),
        {
            "GetCapacity": grpc.unary_unary_rpc_method_handler(
                capacity,
                request_deserializer=pb.GetCapacityRequest.FromString,
                response_serializer=pb.GetCapacityResponse.SerializeToString,
            )
        },
    )
    server = grpc.aio.server()
    server.add_generic_rpc_handlers((handler,))
    server.add_insecure_port(f"unix:{sock}")
    await server.start()
    return server


async def _until(condition: object, what: str) -> None:
    for _ in range(500):
        if condition():  # type: ignore[operator]
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting for {what}")


def test_a_waiting_job_hears_only_about_its_own_position(tmp_path: Path) -> None:
    async def scenario() -> dict[str, list[str]]:
        server = await _one_slot_host(tmp_path / "host.sock")
        channel = grpc.aio.insecure_channel(f"unix:{tmp_path / 'host.sock'}")
        pool = HostPool({"h": ReadyLink(channel)})  # type: ignore[dict-item]
        placing = asyncio.create_task(pool.run())
        notes: dict[str, list[str]] = {name: [] for name in ("b", "c", "d")}
        try:
            first: Slot = await asyncio.wait_for(pool.acquire(lambda note: None), 10)
            waiting = {}
            for name in notes:  # each joins behind the ones before it
                waiting[name] = asyncio.create_task(pool.acquire(notes[name].append))
                await _until(lambda name=name: notes[name], f"{name}'s first note")
            pool.release(first)
            second = await asyncio.wait_for(waiting["b"], 10)
            await _until(lambda: notes["d"][-1:] == ["queued: position 2"], "d moving up")
            assert not waiting["c"].done() and pool.queued == 2
            pool.release(second)
            pool.release(await asyncio.wait_for(waiting["c"], 10))
            pool.release(await asyncio.wait_for(waiting["d"], 10))
        finally:
            placing.cancel()
            await channel.close()
            await server.stop(None)
        return notes

    notes = asyncio.run(scenario())
    assert notes == {
        "b": ["queued: position 1"],
        "c": ["queued: position 2", "queued: position 1"],
        "d": ["queued: position 3", "queued: position 2", "queued: position 1"],
    }
