"""Transport-neutral service methods: written once, served over gRPC and over ctl.

A service implementation is a plain object with a ``descriptor`` attribute (the proto
``ServiceDescriptor``) and one coroutine method per RPC, named exactly as in the proto:

- unary:            ``async def GetOperation(self, request, call) -> GetOperationResponse``
- server streaming: ``async def WatchOperation(self, request, call)`` as an async generator; it may
  yield a ``list`` of responses (several ready at once, sent in order: the ctl transport writes them
  with one socket write). A yielded response is sent as is and may be shared between calls (a
  transport may cache its encoding by identity), so it must not be mutated afterwards.
- client streaming: ``async def ImportBars(self, requests, call) -> ImportBarsResponse`` where
  ``requests`` is an async iterator of request messages

``call`` is a :class:`Call`. Errors are raised as :class:`ktrdr.rpc.errors.ApiError`; each transport maps
them (gRPC status + ``google.rpc`` details, or a ctl error frame). An RPC of the proto that the object
does not define answers UNIMPLEMENTED, so a service may be registered before its issue lands.
"""

from __future__ import annotations

import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, NamedTuple

from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from google.protobuf.message_factory import GetMessageClass

from ktrdr.rpc.errors import unimplemented


class Call(NamedTuple):
    """What a method may know about the call, whichever transport carried it.

    ``transport`` is ``"grpc"`` or ``"ctl"``; ``deadline`` is a ``time.monotonic()`` instant or None.
    ``push`` (server streams, where the transport offers it): sends a list of responses at once,
    synchronously, returning False once the client is not keeping up. A streaming method may hand
    responses to it instead of yielding them (the same responses, in the same order) while it returns
    True; the stream still ends when the method returns.
    """

    transport: str
    deadline: float | None = None
    push: Callable[[list[Message]], bool] | None = None

    def time_remaining(self) -> float | None:
        """Seconds left before the client's deadline (never negative), or None without a deadline."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - time.monotonic())


@dataclass(frozen=True)
class MethodSpec:
    """One RPC: its full name (``pkg.Service/Method``), message types, shape and implementation."""

    service: str
    name: str
    request_type: type[Message]
    response_type: type[Message]
    client_streaming: bool
    server_streaming: bool
    handler: Any  # bound coroutine function / async generator function, or None = UNIMPLEMENTED

    @property
    def full_name(self) -> str:
        return f"{self.service}/{self.name}"

    async def unary(self, request: Any, call: Call) -> Message:
        """Run a unary or client-streaming method (``request`` is an async iterator for the latter)."""
        if self.handler is None:
            raise unimplemented(self.full_name)
        return await self.handler(request, call)

    async def stream(self, request: Message, call: Call) -> AsyncGenerator[Message, None]:
        """Run a server-streaming method, yielding its responses one by one."""
        async for batch in self.stream_batches(request, call):
            for response in batch:
                yield response

    async def stream_batches(self, request: Message, call: Call) -> AsyncIterator[list[Message]]:
        """Run a server-streaming method, yielding its responses in the non-empty lists it groups them."""
        if self.handler is None:
            raise unimplemented(self.full_name)
        async for item in self.handler(request, call):
            if isinstance(item, list):
                if item:
                    yield item
            else:
                yield [item]


def _spec(method: MethodDescriptor, impl: object) -> MethodSpec:
    return MethodSpec(
        service=method.containing_service.full_name,
        name=method.name,
        request_type=GetMessageClass(method.input_type),
        response_type=GetMessageClass(method.output_type),
        client_streaming=method.client_streaming,
        server_streaming=method.server_streaming,
        handler=getattr(impl, method.name, None),
    )


class Registry:
    """Every served method by full name; iteration yields :class:`MethodSpec` in registration order."""

    def __init__(self, services: Iterable[object] = ()) -> None:
        self._methods: dict[str, MethodSpec] = {}
        self._services: list[str] = []
        for impl in services:
            self.add(impl)

    def add(self, impl: object) -> None:
        """Register every RPC of ``impl.descriptor`` (a ``ServiceDescriptor``) served by ``impl``."""
        descriptor: ServiceDescriptor = impl.descriptor  # type: ignore[attr-defined]
        if descriptor.full_name in self._services:
            raise ValueError(f"service {descriptor.full_name} registered twice")
        self._services.append(descriptor.full_name)
        for method in descriptor.methods:
            spec = _spec(method, impl)
            self._methods[spec.full_name] = spec

    def get(self, full_name: str) -> MethodSpec | None:
        return self._methods.get(full_name)

    @property
    def service_names(self) -> list[str]:
        """Full names of the registered services (``ktrdr.daemon.v1.OperationsService``, ...)."""
        return list(self._services)

    def __iter__(self) -> Iterator[MethodSpec]:
        return iter(self._methods.values())
