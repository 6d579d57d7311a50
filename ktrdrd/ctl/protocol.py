"""ctl frames: NDJSON, JSON-RPC 2.0 shaped, carrying proto3 canonical JSON (see docs/ctl-protocol.md).

Requests ``{"jsonrpc":"2.0","id":ID,"method":"pkg.Service/Method","params":{...}}``; replies
``{"jsonrpc":"2.0","id":ID,"result":{...}}``, ``{"jsonrpc":"2.0","id":ID,"error":{"code","message",
"data"}}`` (gRPC code numbers), and ``{"jsonrpc":"2.0","id":ID,"done":true}`` after a stream's results.
A client stream sends further ``{"id":ID,"params":{...}}`` frames and ends with ``{"id":ID,"done":true}``.
"""

from __future__ import annotations

import functools
import json
import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from google.protobuf import json_format
from google.protobuf.descriptor import Descriptor, FieldDescriptor
from google.protobuf.message import Message

from ktrdr.daemon.v1.operations_pb2 import Operation
from ktrdr.rpc.errors import ApiError, invalid_argument
from ktrdr.rpc.rich_status import error_data
from ktrdr.wire import (
    StatusCode,
)


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


def bad_frame(description: str, reason: str = "BAD_FRAME") -> ApiError:
    """INVALID_ARGUMENT for a frame that is not a valid request (reason ``BAD_FRAME`` by default)."""
    return ApiError(StatusCode.INVALID_ARGUMENT, f"bad frame: {description}", reason)


#: Characters of client input an error message may echo (longer input is cut, with its length).
ECHO_CHARS = 80
#: Deepest nesting of arrays/objects a frame may have (the request messages need far less).
MAX_DEPTH = 64
#: An integer id must lie within ±2**53 (exact in every JSON implementation); a string id ≤ this.
MAX_ID_CHARS = 128
_MAX_INT_ID = 2**53


def clip(text: str, limit: int = ECHO_CHARS) -> str:
    """``text`` cut to ``limit`` characters (saying how long it was) for echoing in an error message."""
    return text if len(text) <= limit else f"{text[:limit]}… ({len(text)} chars)"


@dataclass(frozen=True)
class Request:
    """A decoded frame: a call (``method`` set) or more input of an open client stream (``method`` None)."""

    id: Any
    method: str | None
    params: Any
    done: bool


class BadFrame(Exception):
    """A frame that is not a valid request: answer ``error`` to ``call_id`` (None when unknown);
    ``fatal``: the connection cannot go on (bytes that are not UTF-8)."""

    def __init__(self, error: ApiError, call_id: Any = None, fatal: bool = False) -> None:
        super().__init__(error.message)
        self.error, self.call_id, self.fatal = error, call_id, fatal


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"number out of range: {clip(text, 24)}")
    return value


def _too_deep(value: Any, limit: int) -> bool:
    """True when ``value`` nests arrays/objects deeper than ``limit`` levels."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        for child in children:
            if isinstance(child, (dict, list)):
                if depth + 1 > limit:
                    return True
                stack.append((child, depth + 1))
    return False


def _valid_id(call_id: Any) -> bool:
    if isinstance(call_id, bool):
        return False
    if isinstance(call_id, int):
        return -_MAX_INT_ID <= call_id <= _MAX_INT_ID
    return isinstance(call_id, str) and len(call_id) <= MAX_ID_CHARS


def decode_request(frame: bytes | str) -> Request:
    """Parse one frame (without its newline) into a :class:`Request`; :class:`BadFrame` otherwise.

    Refused, each as ``BAD_FRAME``: bytes that are not UTF-8 (fatal to the connection), text that is
    not JSON, ``NaN``/``Infinity`` or a number out of range, an integer too long to convert, nesting
    deeper than :data:`MAX_DEPTH`, a frame that is not an object, an ``id`` that is not an integer
    within ±2**53 or a string of at most :data:`MAX_ID_CHARS` characters, a ``method`` that is not a
    string.
    """
    try:
        text = frame.decode("utf-8") if isinstance(frame, bytes) else frame
    except UnicodeDecodeError as exc:
        raise BadFrame(bad_frame(f"bytes that are not UTF-8 (at byte {exc.start})"), fatal=True) from None
    try:
        value = json.loads(text, parse_constant=_reject_constant, parse_float=_finite_float)
    except json.JSONDecodeError as exc:
        raise BadFrame(bad_frame(f"not JSON ({exc.msg} at column {exc.colno})")) from None
    except RecursionError:
        raise BadFrame(bad_frame(f"nested deeper than {MAX_DEPTH} levels")) from None
    except ValueError as exc:  # NaN/Infinity, 1e999, an integer of more than 4300 digits
        raise BadFrame(bad_frame(f"a number cannot be read ({clip(str(exc), 60)})")) from None
    if not isinstance(value, dict):
        raise BadFrame(bad_frame("a frame must be a JSON object"))
    # Cheap first: only a frame with many brackets can nest too deeply.
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(value, MAX_DEPTH):
        raise BadFrame(bad_frame(f"nested deeper than {MAX_DEPTH} levels"))
    call_id = value.get("id")
    if call_id is None or not _valid_id(call_id):
        raise BadFrame(
            bad_frame(f"'id' must be an integer within ±2**53 or a string of ≤ {MAX_ID_CHARS} chars")
        )
    method = value.get("method")
    if method is not None and not isinstance(method, str):
        raise BadFrame(bad_frame("'method' must be a string"), call_id)
    return Request(call_id, method, value.get("params"), value.get("done") is True)


#: Result messages above this many bytes (protobuf size) are converted to JSON in a worker thread:
#: MessageToDict costs roughly 1 ms per 10 KiB, and the event loop must not block that long.
INLINE_JSON_BYTES = 8 * 1024


def to_json(message: Message) -> dict[str, Any]:
    """Canonical proto3 JSON (lowerCamelCase names), fields at their default value included.

    The ``Operation`` messages a response holds directly (``ListOperationsResponse.operations``,
    ``GetOperationResponse.operation``, ...) are converted through :data:`FINISHED_OPERATIONS`, which
    remembers the JSON of finished ones; the document is the same either way (key order aside).
    """
    fields = [field for field in _operation_fields(message.DESCRIPTOR) if _holds(message, field)]
    if not fields:  # most messages (watch events among them): converted as they are
        return _message_json(message)
    rest = type(message)()
    rest.CopyFrom(message)
    for field in fields:
        rest.ClearField(field.name)
    document = _message_json(rest)
    for field in fields:
        value = getattr(message, field.name)
        if isinstance(value, Message):
            document[field.json_name] = FINISHED_OPERATIONS.json(value)
        else:  # repeated
            document[field.json_name] = [FINISHED_OPERATIONS.json(op) for op in value]
    return document


def _holds(message: Message, field: FieldDescriptor) -> bool:
    """``field`` of ``message`` is set (a singular message) or not empty (repeated)."""
    value = getattr(message, field.name)
    return message.HasField(field.name) if isinstance(value, Message) else len(value) > 0


def _message_json(message: Message) -> dict[str, Any]:
    return json_format.MessageToDict(message, always_print_fields_with_no_presence=True)


@functools.cache
def _operation_fields(descriptor: Descriptor) -> tuple[FieldDescriptor, ...]:
    """The fields of a message type that hold ``Operation`` messages (singular or repeated)."""
    return tuple(field for field in descriptor.fields if field.message_type is Operation.DESCRIPTOR)


class OperationJsonMemo:
    """The canonical JSON of finished operations, remembered by their serialized bytes.

    An ``Operation`` that is ``done`` rarely changes again, and converting one costs ~0.1 ms
    (json_format walks every field in Python), which made a page of 20 the bulk of ``ktrdrctl ops
    list``'s daemon time (bench cli_startup). Keyed by the deterministic serialization, an entry can
    never be stale: changed content is a different key. Bounded to ``capacity`` entries (least
    recently used dropped); running operations change on every progress step and are not kept.
    Callers must not mutate a returned document. Thread-safe (large replies convert in a worker).
    """

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._documents: OrderedDict[bytes, dict[str, Any]] = OrderedDict()
        self._lock = threading.Lock()

    def json(self, operation: Message) -> dict[str, Any]:
        if not getattr(operation, "done", False):
            return _message_json(operation)
        key = operation.SerializeToString(deterministic=True)
        with self._lock:
            document = self._documents.get(key)
            if document is not None:
                self._documents.move_to_end(key)
                return document
        document = _message_json(operation)
        with self._lock:
            self._documents[key] = document
            while len(self._documents) > self._capacity:
                self._documents.popitem(last=False)
        return document

    def __len__(self) -> int:
        return len(self._documents)


#: ~2 ListOperations pages of the largest size; an entry is a few KiB at most (a finished
#: operation's result included), so a few MiB in all.
FINISHED_OPERATIONS = OperationJsonMemo(capacity=2048)


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
            kind = field.message_type
            is_message = kind is not None and not kind.GetOptions().map_entry
            is_plain = is_message and kind is not None and not kind.full_name.startswith("google.protobuf.")
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
    except RecursionError:
        raise invalid_argument("params", "nested too deeply") from None
    except json_format.ParseError:
        path, problem = _locate(params, request_type(), "")
        raise invalid_argument(clip(path), clip(problem, 2 * ECHO_CHARS)) from None
    return message
