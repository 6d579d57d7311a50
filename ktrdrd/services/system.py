"""``ktrdr.daemon.v1.SystemService``: what the daemon knows about itself (from ``AppState``)."""

from __future__ import annotations

from ktrdr.daemon.v1 import system_pb2 as pb
from ktrdr.rpc.registry import Call
from ktrdrd.appstate import AppState
from ktrdrd.services.convert import duration, timestamp


def _enum_name(known: list[str], prefix: str, value: str) -> str:
    """``<PREFIX><VALUE>`` when the proto enum knows it, else ``<PREFIX>UNSPECIFIED`` (constructors
    take enum value names)."""
    name = f"{prefix}{value.upper()}"
    return name if name in known else f"{prefix}UNSPECIFIED"


class SystemService:
    descriptor = pb.DESCRIPTOR.services_by_name["SystemService"]

    def __init__(self, state: AppState) -> None:
        self._state = state

    async def GetInfo(self, request: pb.GetInfoRequest, call: Call) -> pb.GetInfoResponse:
        s = self._state
        hosts = [
            pb.HostInfo(
                name=h.name,
                kind=_enum_name(pb.HostKind.keys(), "HOST_KIND_", h.kind),
                address=h.address,
                state=_enum_name(pb.HostState.keys(), "HOST_STATE_", h.state),
                message=h.message,
                since=timestamp(h.since),
                version=h.version,
                round_trip=duration(h.round_trip_s),
                simulated=h.simulated,
            )
            for h in sorted(s.hosts.values(), key=lambda h: h.name)
        ]
        return pb.GetInfoResponse(
            version=s.version,
            instance_id=s.instance_id,
            start_time=timestamp(s.start_time),
            uptime=duration(s.uptime_s),
            pid=s.pid,
            runtime_dir=str(s.runtime_dir),
            grpc_socket=str(s.grpc_socket),
            ctl_socket=str(s.ctl_socket),
            state_dir=str(s.state_dir),
            hosts=hosts,
        )
