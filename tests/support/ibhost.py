"""Test support for ``hostd ib``: the gateway simulator on a background thread (its own event loop,
real TCP) and ``hostd ib`` as a real subprocess on a unix socket, with gRPC helpers.

``SimThread(config, faults)`` starts :class:`hostd.gatewaysim.server.GatewaySim`; ``sim.call(fn)``
runs ``fn(sim)`` on the simulator's loop (fault knobs, drops) and returns its result.
``IbHost(tmp_path, gateway_port, *flags)`` starts ``python -m hostd ib`` and reads its listening
line; ``host.fetch(...)`` collects a FetchBars stream; ``host.stop()`` sends SIGTERM and returns the
exit status.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import grpc
from google.protobuf import timestamp_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc

from hostd.gatewaysim.faults import Faults
from hostd.gatewaysim.server import GatewaySim, SimConfig
from ktrdr.common.v1 import common_pb2
from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from tests.support.paths import REPO

T = TypeVar("T")
START_TIMEOUT_S = 60.0
SERVICE = "/ktrdr.hostd.marketdata.v1.MarketDataService/"


class SimThread:
    """A started simulator on its own loop in a daemon thread."""

    def __init__(self, config: SimConfig | None = None, faults: Faults | None = None) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()
        self.sim = GatewaySim(config or SimConfig(port=0), faults)
        self.run(self.sim.start())
        self.port = self.sim.port

    def run(self, coro: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(START_TIMEOUT_S)

    def call(self, fn: Callable[[GatewaySim], T]) -> T:
        future: Future[T] = Future()

        def apply() -> None:
            try:
                future.set_result(fn(self.sim))
            except Exception as exc:
                future.set_exception(exc)

        self.loop.call_soon_threadsafe(apply)
        return future.result(START_TIMEOUT_S)

    def pacing_rejections(self) -> list[str]:
        """Instrument the simulator's pacer: the returned list collects every violation it answers."""
        seen: list[str] = []

        def wrap(gateway: GatewaySim) -> None:
            pacer = gateway.pacer
            admit = pacer.admit

            def counting(identity: Any, burst_key: Any) -> str | None:
                violation = admit(identity, burst_key)
                if violation is not None:
                    seen.append(violation)
                return violation

            pacer.admit = counting  # type: ignore[method-assign]

        self.call(wrap)
        return seen

    def stop(self) -> None:
        self.run(self.sim.stop())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(START_TIMEOUT_S)
        self.loop.close()


def timestamp(epoch_s: int) -> timestamp_pb2.Timestamp:
    return timestamp_pb2.Timestamp(seconds=epoch_s)


def fetch_request(
    symbol: str, timeframe: str, start_s: int, end_s: int, **kwargs: Any
) -> pb.FetchBarsRequest:
    return pb.FetchBarsRequest(
        contract=pb.ContractSpec(symbol=symbol),
        timeframe=timeframe,
        range=common_pb2.TimeRange(start_time=timestamp(start_s), end_time=timestamp(end_s)),
        **kwargs,
    )


@dataclass
class Fetched:
    """A FetchBars stream, collected: bars as (time_ns, o, h, l, c, v) tuples, plus the other items."""

    bars: list[tuple[int, float, float, float, float, float]] = field(default_factory=list)
    empty: list[tuple[int, int]] = field(default_factory=list)
    progress: list[pb.FetchProgress] = field(default_factory=list)
    waits: list[pb.PacingWait] = field(default_factory=list)


class IbHost:
    """``hostd ib`` as a subprocess serving on ``unix:<tmp>/ib.sock``."""

    def __init__(
        self, tmp_path: Path, gateway_port: int, *flags: str, env: dict[str, str] | None = None
    ) -> None:
        self.socket = tmp_path / "ib.sock"
        self.stderr_path = tmp_path / "ib.err"
        self._stderr = self.stderr_path.open("w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "hostd",
                "ib",
                "--listen",
                f"unix:{self.socket}",
                "--gateway",
                f"127.0.0.1:{gateway_port}",
                "--log-format",
                "json",
                *flags,
            ],
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO), **(env or {})},
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line, f"hostd ib exited before listening: {self.log()}"
        assert json.loads(line) == {"listening": f"unix:{self.socket}"}
        self.channel = grpc.insecure_channel(f"unix:{self.socket}")

    def log(self) -> str:
        return self.stderr_path.read_text()

    def unary(self, method: str, request: Any, response_type: Any, timeout: float = 60.0) -> Any:
        rpc = self.channel.unary_unary(
            SERVICE + method,
            request_serializer=type(request).SerializeToString,
            response_deserializer=response_type.FromString,
        )
        return rpc(request, timeout=timeout)

    def status(self) -> pb.GetStatusResponse:
        return self.unary("GetStatus", pb.GetStatusRequest(), pb.GetStatusResponse)

    def fetch(self, request: pb.FetchBarsRequest, timeout: float = 60.0) -> Fetched:
        rpc = self.channel.unary_stream(
            SERVICE + "FetchBars",
            request_serializer=pb.FetchBarsRequest.SerializeToString,
            response_deserializer=pb.FetchBarsResponse.FromString,
        )
        out = Fetched()
        for response in rpc(request, timeout=timeout):
            kind = response.WhichOneof("item")
            if kind == "chunk":
                c = response.chunk
                out.bars.extend(zip(c.time_ns, c.open, c.high, c.low, c.close, c.volume, strict=True))
            elif kind == "empty":
                out.empty.append((response.empty.start_time.seconds, response.empty.end_time.seconds))
            elif kind == "progress":
                out.progress.append(response.progress)
            else:
                out.waits.append(response.pacing_wait)
        return out

    def health(self, service: str = "ktrdr.hostd.ib") -> int:
        stub = health_pb2_grpc.HealthStub(self.channel)
        return int(stub.Check(health_pb2.HealthCheckRequest(service=service), timeout=10).status)

    def wait_health(
        self, status: int, service: str = "ktrdr.hostd.ib", timeout_s: float = START_TIMEOUT_S
    ) -> None:
        deadline = time.monotonic() + timeout_s
        while self.health(service) != status:
            assert self.proc.poll() is None, f"hostd ib exited: {self.log()}"
            assert time.monotonic() < deadline, f"health of {service!r} never became {status}: {self.log()}"
            time.sleep(0.05)

    def stop(self) -> int:
        """SIGTERM; the exit status."""
        self.channel.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(START_TIMEOUT_S)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            assert self.proc.stdout is not None
            self.proc.stdout.close()
            self._stderr.close()


SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING
