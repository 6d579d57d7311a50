"""ctl frames: NDJSON, JSON-RPC 2.0 shaped, carrying proto3 canonical JSON (see docs/ctl-protocol.md).

Requests ``{"jsonrpc":"2.0","id":ID,"method":"pkg.Service/Method","params":{...}}``; replies
``{"jsonrpc":"2.0","id":ID,"result":{...}}``, ``{"jsonrpc":"2.0","id":ID,"error":{"code","message",
"data"}}`` (gRPC code numbers), and ``{"jsonrpc":"2.0","id":ID,"done":true}`` after a stream's results.
A client stream sends further ``{"id":ID,"params":{...}}`` frames and ends with ``{"id":ID,"done":true}``.
"""

from __future__ import annotations

import json
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import Message

from ktrdr.wire import FRAME_LIMIT as FRAME_LIMIT  # bytes per frame, newline excluded, both directions
from ktrdr.wire import StatusCode
from ktrdrd.errors import ApiError, invalid_argument
from ktrdrd.services.status import error_data


def encode(frame: dict[str, Any]) -> bytes:
    """One frame as a compact UTF-8 JSON line."""
    return dumps(frame) + b"\n"


def dumps(value: Any) -> bytes:
    """``value`` as compact UTF-8 JSON, exactly as :func:`encode` writes it inside a frame."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def result_prefix(call_id: Any) -> bytes:
    """The bytes of a result frame of ``call_id`` before its body (see :func:`splice_result`)."""
    return b'{"jsonrpc":"2.0","id":' + dumps(call_id) + b',"result":'


def splice_result(prefix: bytes, body: bytes) -> bytes:
    """A result frame from :func:`result_prefix` and a JSON body: the bytes ``encode(result_frame(...))``
    gives for the same id and result."""
    return prefix + body + b"}\n"


def result_frame(call_id: Any, result: dict[str, Any]) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "result": result}


def done_frame(call_id: Any) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": call_id, "done": True}


def error_frame(call_id: Any, error: ApiError) -> dict[str, Any]:
    return {
        "jsonrpc": "2.0",
        "id": call_id,
        "error": {"code": error.code, "message": error.message, "data": error_data(error)},
    }


def bad_frame(description: str) -> ApiError:
    """INVALID_ARGUMENT for a frame that is not a valid request (reason ``BAD_FRAME``)."""
    return ApiError(StatusCode.INVALID_ARGUMENT, f"bad frame: {description}", "BAD_FRAME")


#: Result messages above this many bytes (protobuf size) are converted to JSON in a worker thread:
#: MessageToDict costs roughly 1 ms per 10 KiB, and the event loop must not block that long.
INLINE_JSON_BYTES = 8 * 1024


def to_json(message: Message) -> dict[str, Any]:
    """Canonical proto3 JSON (lowerCamelCase names), fields at their default value included."""
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


class BodyCache:
    """Bounded cache of response messages' JSON bodies, by message identity.

    An entry holds a reference to its message, so the identity cannot be reused while cached; the
    oldest entries are dropped beyond ``capacity`` entries or ``max_bytes`` of bodies. For responses
    shared between calls (watch events): they are encoded once whatever the number of watchers.
    Messages must not be mutated once cached.
    """

    def __init__(self, capacity: int, max_bytes: int) -> None:
        self._capacity = capacity
        self._max_bytes = max_bytes
        self._bytes = 0
        self._bodies: dict[int, tuple[Message, bytes]] = {}

    def body(self, message: Message) -> bytes:
        entry = self._bodies.get(id(message))
        if entry is not None:
            return entry[1]
        body = dumps(to_json(message))
        self._bodies[id(message)] = (message, body)
        self._bytes += len(body)
        while len(self._bodies) > self._capacity or self._bytes > self._max_bytes:
            self._bytes -= len(self._bodies.pop(next(iter(self._bodies)))[1])
        return body


def _locate(params: Any, message: Message, prefix: str) -> tuple[str, str]:
    """(proto field path, problem) of the first part of ``params`` that does not parse into ``message``."""
    if not isinstance(params, dict):
        return prefix or "params", f"expected a JSON object, got {type(params).__name__}"
    fields = message.DESCRIPTOR.fields_by_name
    by_json = {f.json_name: f for f in message.DESCRIPTOR.fields}
    for key, value in params.items():
        field = by_json.get(key) or fields.get(key)
        path = f"{prefix}.{key}" if prefix else key
        if field is None:
            return path, f"no such field in {message.DESCRIPTOR.full_name}"
        path = f"{prefix}.{field.name}" if prefix else field.name
        try:
            json_format.ParseDict({key: value}, type(message)())
        except json_format.ParseError as exc:
            is_message = field.message_type is not None and not field.message_type.GetOptions().map_entry
            is_plain = is_message and not field.message_type.full_name.startswith("google.protobuf.")
            if is_plain and not field.is_repeated and isinstance(value, dict):
                return _locate(value, getattr(message, field.name), path)
            return path, str(exc).split(" at ")[0].strip().rstrip(".")
    return prefix or "params", "does not parse"


def parse_params(params: Any, request_type: type[Message]) -> Message:
    """``params`` (a JSON object, or None for an empty request) → a request message.

    Unknown fields and wrong types are INVALID_ARGUMENT naming the proto field path.
    """
    message = request_type()
    if params is None:
        return message
    try:
        if not isinstance(params, dict):
            raise json_format.ParseError("not an object")
        json_format.ParseDict(params, message)
    except json_format.ParseError:
        path, problem = _locate(params, request_type(), "")
        raise invalid_argument(path, problem) from None
    return message
