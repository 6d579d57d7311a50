"""Serve a :class:`~ktrdr.rpc.registry.Registry` on a ``grpc.aio`` server via generic handlers.

:func:`registry_server` builds the whole server every ktrdr service runs (the daemon, the hosts):
the registry's services, standard health and reflection, and the message size cap.

An :class:`ApiError` becomes the call's status code plus a ``google.rpc.Status`` in the
``grpc-status-details-bin`` trailer (ErrorInfo, BadRequest, RetryInfo); any other exception is logged
and answered INTERNAL.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any

import grpc
from grpc._cython.cygrpc import ExecuteBatchError  # what a write to a finished call raises
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection
from grpc_status import rpc_status

from ktrdr.rpc.errors import ApiError
from ktrdr.rpc.registry import Call, MethodSpec, Registry
from ktrdr.rpc.rich_status import trailer_status
from ktrdr.wire import StatusCode

log = logging.getLogger(__name__)


def _call(context: grpc.aio.ServicerContext) -> Call:
    remaining = context.time_remaining()
    return Call("grpc", None if remaining is None else time.monotonic() + remaining)


def _as_api_error(spec: MethodSpec, exc: Exception) -> ApiError:
    if isinstance(exc, ApiError):
        return exc
    log.exception("unexpected error in %s", spec.full_name)
    return ApiError(
        StatusCode.INTERNAL, f"internal error in {spec.full_name}: {type(exc).__name__}", "INTERNAL"
    )


async def _abort(context: grpc.aio.ServicerContext, error: ApiError) -> None:
    status = rpc_status.to_status(trailer_status(error))
    await context.abort(status.code, status.details, status.trailing_metadata)


def _unary(spec: MethodSpec) -> Callable[..., Any]:
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> Any:
        try:
            return await spec.unary(request, _call(context))
        except Exception as exc:
            error = _as_api_error(spec, exc)
        await _abort(context, error)

    return handle


def _server_stream(spec: MethodSpec) -> Callable[..., Any]:
    # Writes with ``context.write`` rather than yielding: a client that cancels (or leaves) while a
    # write waits on flow control fails that write in grpc's core, and grpcio logs that failure of a
    # yielding handler as an ERROR with a traceback; here it ends the stream quietly.
    async def handle(request: Any, context: grpc.aio.ServicerContext) -> None:
        try:
            async with contextlib.aclosing(spec.stream(request, _call(context))) as responses:
                async for response in responses:
                    try:
                        await context.write(response)
                    except ExecuteBatchError:
                        return  # the call is over: nobody to answer, nothing to log
            return
        except Exception as exc:
            error = _as_api_error(spec, exc)
        await _abort(context, error)

    return handle


def _method_handler(spec: MethodSpec) -> grpc.RpcMethodHandler:
    codec = {
        "request_deserializer": spec.request_type.FromString,
        "response_serializer": spec.response_type.SerializeToString,
    }
    if spec.server_streaming and spec.client_streaming:
        raise ValueError(f"{spec.full_name}: bidirectional streams are not supported")
    if spec.server_streaming:
        return grpc.unary_stream_rpc_method_handler(_server_stream(spec), **codec)
    if spec.client_streaming:
        return grpc.stream_unary_rpc_method_handler(_unary(spec), **codec)
    return grpc.unary_unary_rpc_method_handler(_unary(spec), **codec)


def generic_handlers(registry: Registry) -> list[grpc.GenericRpcHandler]:
    """One generic handler per service of ``registry``."""
    by_service: dict[str, dict[str, grpc.RpcMethodHandler]] = defaultdict(dict)
    for spec in registry:
        by_service[spec.service][spec.name] = _method_handler(spec)
    return [grpc.method_handlers_generic_handler(name, methods) for name, methods in by_service.items()]


def registry_server(
    registry: Registry,
    *,
    max_message_bytes: int,
    options: list[tuple[str, Any]] | None = None,
    maximum_concurrent_rpcs: int | None = None,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
) -> tuple[grpc.aio.Server, health.aio.HealthServicer]:
    """A ``grpc.aio`` server (not bound, not started) serving every service of ``registry``,
    ``grpc.health.v1.Health`` and reflection, with messages of at most ``max_message_bytes`` each
    way; ``options`` are added to the channel arguments; ``interceptors`` see every call (a host's
    bearer-token check, :mod:`ktrdr.rpc.hostauth`). Returns the server and its health servicer.
    Must be called inside the running event loop."""
    server = grpc.aio.server(
        options=[
            ("grpc.max_receive_message_length", max_message_bytes),
            ("grpc.max_send_message_length", max_message_bytes),
            *(options or []),
        ],
        maximum_concurrent_rpcs=maximum_concurrent_rpcs,
        interceptors=list(interceptors),
    )
    server.add_generic_rpc_handlers(generic_handlers(registry))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        [
            *registry.service_names,
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        ],
        server,
    )
    return server, health_servicer
