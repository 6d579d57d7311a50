"""Contract specs (``ContractSpec``) → ib_async contracts, and resolved details → ``Contract``.

A spec names a ``con_id``, or a symbol with optional ``sec_type`` (default ``STK``), ``exchange``
(default per type: SMART, IDEALPRO, PAXOS) and ``currency`` (default USD; a six-letter forex symbol
such as ``EURUSD`` carries its own). Resolution asks the gateway for contract details once per spec
and caches the answer for the host's lifetime (conIds do not change).
"""

from __future__ import annotations

from ib_async import Contract, ContractDetails

from ktrdr.hostd.marketdata.v1 import marketdata_pb2 as pb
from ktrdr.rpc.errors import invalid_argument

DEFAULT_EXCHANGE = {"STK": "SMART", "CASH": "IDEALPRO", "CRYPTO": "PAXOS"}

SpecKey = tuple[int, str, str, str, str]


def spec_key(spec: pb.ContractSpec) -> SpecKey:
    """The normalized identity of a spec (what the resolution cache is keyed by)."""
    return (
        spec.con_id,
        spec.symbol.strip().upper(),
        spec.sec_type.strip().upper(),
        spec.exchange.strip().upper(),
        spec.currency.strip().upper(),
    )


def describe(spec: pb.ContractSpec) -> str:
    """How errors name the instrument: its symbol, else its conId."""
    return spec.symbol.strip().upper() if spec.symbol.strip() else f"conId {spec.con_id}"


def to_ib(spec: pb.ContractSpec) -> Contract:
    """The ib_async contract to ask about; INVALID_ARGUMENT when the spec names nothing."""
    con_id, symbol, sec_type, exchange, currency = spec_key(spec)
    if con_id < 0:
        raise invalid_argument("contract.con_id", f"must be >= 0, got {con_id}")
    if con_id:
        return Contract(conId=con_id, exchange=exchange or "SMART")
    if not symbol:
        raise invalid_argument("contract.symbol", "a symbol or a con_id is required")
    sec_type = sec_type or "STK"
    if sec_type == "CASH" and len(symbol) == 6 and not currency:
        symbol, currency = symbol[:3], symbol[3:]
    return Contract(
        symbol=symbol,
        secType=sec_type,
        exchange=exchange or DEFAULT_EXCHANGE.get(sec_type, "SMART"),
        currency=currency or "USD",
    )


def for_request(details: ContractDetails) -> Contract:
    """A fresh contract naming the resolved conId (one object per request: the connection tells a
    request's warnings apart by the contract object's identity)."""
    resolved = details.contract
    assert resolved is not None
    return Contract(conId=resolved.conId, exchange=resolved.exchange or "SMART")


def to_proto(details: ContractDetails) -> pb.Contract:
    contract = details.contract
    assert contract is not None
    return pb.Contract(
        con_id=contract.conId,
        symbol=contract.symbol,
        sec_type=contract.secType,
        exchange=contract.exchange,
        primary_exchange=contract.primaryExchange,
        currency=contract.currency,
        local_symbol=contract.localSymbol,
        time_zone=details.timeZoneId,
        min_tick=details.minTick,
        description=details.longName,
    )


def series_name(details: ContractDetails) -> str:
    """The series a resolved contract is stored as: ``AAPL``, ``EURUSD`` (symbol + quote currency for
    forex), ``BTCUSD``."""
    contract = details.contract
    assert contract is not None
    if contract.secType in ("CASH", "CRYPTO"):
        return f"{contract.symbol}{contract.currency}"
    return contract.symbol
