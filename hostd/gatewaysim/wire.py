"""The TWS API text protocol as ib_async 2.1.0 speaks it: framing, the handshake, message ids.

After the client's ``b"API\\0"`` every message in both directions is a frame: a 4-byte big-endian
length, then text fields each terminated by NUL. The client's first frame is its version range
``v157..178`` (optionally followed by a space and connect options); the server answers with exactly
two fields, ``[serverVersion, connectionTime]``. Everything after that is ``[msgId, …]``.

The message ids and field layouts below are those of the TWS API at server versions 164–178 (the
range ib_async 2.1.0 negotiates); :mod:`hostd.gatewaysim.session` documents each exchange.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass

API_PREFIX = b"API\0"
#: Server versions the simulator can speak: the CONTRACT_DATA layout it sends needs ≥ 164, the error
#: layout (with advancedOrderRejectJson) ≥ 166; ib_async 2.1.0 asks for 157..178.
SERVER_VERSIONS = range(166, 179)
#: Largest frame the simulator reads; ib_async's requests are a few hundred bytes.
MAX_FRAME = 1 << 20
_LENGTH = struct.Struct(">I")
_VERSION_RANGE = re.compile(r"^v(\d+)\.\.(\d+)(?: (.*))?$")


class In:
    """Client → server message ids (the subset the simulator handles)."""

    REQ_OPEN_ORDERS = 5
    REQ_ACCOUNT_UPDATES = 6
    REQ_EXECUTIONS = 7
    REQ_IDS = 8
    REQ_CONTRACT_DETAILS = 9
    REQ_AUTO_OPEN_ORDERS = 15
    REQ_HISTORICAL_DATA = 20
    CANCEL_HISTORICAL_DATA = 25
    REQ_CURRENT_TIME = 49
    REQ_MARKET_DATA_TYPE = 59
    REQ_POSITIONS = 61
    CANCEL_POSITIONS = 64
    START_API = 71
    REQ_ACCOUNT_UPDATES_MULTI = 76
    CANCEL_ACCOUNT_UPDATES_MULTI = 77
    REQ_HEAD_TIMESTAMP = 87
    CANCEL_HEAD_TIMESTAMP = 90
    REQ_COMPLETED_ORDERS = 99


class Out:
    """Server → client message ids."""

    ERROR = 4
    NEXT_VALID_ID = 9
    CONTRACT_DATA = 10
    MANAGED_ACCOUNTS = 15
    HISTORICAL_DATA = 17
    CURRENT_TIME = 49
    CONTRACT_DATA_END = 52
    OPEN_ORDER_END = 53
    ACCOUNT_DOWNLOAD_END = 54
    EXECUTION_DATA_END = 55
    POSITION_END = 62
    ACCOUNT_UPDATE_MULTI_END = 74
    HEAD_TIMESTAMP = 88
    COMPLETED_ORDERS_END = 102


class ProtocolError(Exception):
    """The peer broke the framing or the handshake; the connection is closed."""


def encode(*fields: object) -> bytes:
    """One frame from ``fields``: ``None`` → empty, ``bool`` → ``1``/``0``, anything else ``str()``."""
    parts = []
    for field in fields:
        if field is None:
            parts.append("")
        elif isinstance(field, bool):
            parts.append("1" if field else "0")
        else:
            parts.append(str(field))
    payload = ("\0".join(parts) + "\0").encode()
    return _LENGTH.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> list[str]:
    """The next frame's fields; raises ``asyncio.IncompleteReadError`` at EOF, ProtocolError if oversized."""
    (length,) = _LENGTH.unpack(await reader.readexactly(_LENGTH.size))
    if length > MAX_FRAME:
        raise ProtocolError(f"frame of {length} bytes exceeds the {MAX_FRAME}-byte limit")
    text = (await reader.readexactly(length)).decode(errors="replace")
    fields = text.split("\0")
    if fields and fields[-1] == "":
        fields.pop()
    return fields


@dataclass(frozen=True)
class Hello:
    """The client's handshake: the range of server versions it accepts and its connect options."""

    min_version: int
    max_version: int
    options: str


async def read_hello(reader: asyncio.StreamReader) -> Hello:
    """Read ``API\\0`` and the version-range frame; ProtocolError names what was wrong."""
    prefix = await reader.readexactly(len(API_PREFIX))
    if prefix != API_PREFIX:
        raise ProtocolError(f"expected the API\\0 prefix, got {prefix!r}")
    fields = await read_frame(reader)
    text = "\0".join(fields)
    match = _VERSION_RANGE.match(text)
    if match is None:
        raise ProtocolError(f"expected a version range like 'v157..178', got {text!r}")
    return Hello(int(match.group(1)), int(match.group(2)), match.group(3) or "")


@dataclass(frozen=True)
class WireContract:
    """The 12 contract fields every request carries, in wire order (strings as sent)."""

    con_id: int
    symbol: str
    sec_type: str
    last_trade_date: str
    strike: str
    right: str
    multiplier: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    trading_class: str

    FIELD_COUNT = 12

    @classmethod
    def parse(cls, fields: list[str]) -> WireContract:
        """From exactly 12 fields; ``ValueError`` when the conId is not an integer."""
        if len(fields) != cls.FIELD_COUNT:
            raise ValueError(f"a contract has {cls.FIELD_COUNT} fields, got {len(fields)}")
        con_id = int(fields[0] or 0)
        return cls(con_id, *fields[1:])
