import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class WhatToShow(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    WHAT_TO_SHOW_UNSPECIFIED: _ClassVar[WhatToShow]
    WHAT_TO_SHOW_TRADES: _ClassVar[WhatToShow]
    WHAT_TO_SHOW_MIDPOINT: _ClassVar[WhatToShow]
    WHAT_TO_SHOW_BID: _ClassVar[WhatToShow]
    WHAT_TO_SHOW_ASK: _ClassVar[WhatToShow]

class ConnectionState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONNECTION_STATE_UNSPECIFIED: _ClassVar[ConnectionState]
    CONNECTION_STATE_CONNECTING: _ClassVar[ConnectionState]
    CONNECTION_STATE_CONNECTED: _ClassVar[ConnectionState]
    CONNECTION_STATE_DISCONNECTED: _ClassVar[ConnectionState]
WHAT_TO_SHOW_UNSPECIFIED: WhatToShow
WHAT_TO_SHOW_TRADES: WhatToShow
WHAT_TO_SHOW_MIDPOINT: WhatToShow
WHAT_TO_SHOW_BID: WhatToShow
WHAT_TO_SHOW_ASK: WhatToShow
CONNECTION_STATE_UNSPECIFIED: ConnectionState
CONNECTION_STATE_CONNECTING: ConnectionState
CONNECTION_STATE_CONNECTED: ConnectionState
CONNECTION_STATE_DISCONNECTED: ConnectionState

class Contract(_message.Message):
    __slots__ = ("con_id", "symbol", "sec_type", "exchange", "primary_exchange", "currency", "local_symbol", "time_zone", "min_tick", "description")
    CON_ID_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEC_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    LOCAL_SYMBOL_FIELD_NUMBER: _ClassVar[int]
    TIME_ZONE_FIELD_NUMBER: _ClassVar[int]
    MIN_TICK_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    con_id: int
    symbol: str
    sec_type: str
    exchange: str
    primary_exchange: str
    currency: str
    local_symbol: str
    time_zone: str
    min_tick: float
    description: str
    def __init__(self, con_id: _Optional[int] = ..., symbol: _Optional[str] = ..., sec_type: _Optional[str] = ..., exchange: _Optional[str] = ..., primary_exchange: _Optional[str] = ..., currency: _Optional[str] = ..., local_symbol: _Optional[str] = ..., time_zone: _Optional[str] = ..., min_tick: _Optional[float] = ..., description: _Optional[str] = ...) -> None: ...

class ContractSpec(_message.Message):
    __slots__ = ("symbol", "sec_type", "exchange", "currency", "con_id")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    SEC_TYPE_FIELD_NUMBER: _ClassVar[int]
    EXCHANGE_FIELD_NUMBER: _ClassVar[int]
    CURRENCY_FIELD_NUMBER: _ClassVar[int]
    CON_ID_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    sec_type: str
    exchange: str
    currency: str
    con_id: int
    def __init__(self, symbol: _Optional[str] = ..., sec_type: _Optional[str] = ..., exchange: _Optional[str] = ..., currency: _Optional[str] = ..., con_id: _Optional[int] = ...) -> None: ...

class FetchBarsRequest(_message.Message):
    __slots__ = ("contract", "timeframe", "range", "what_to_show", "use_rth", "request_id")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAME_FIELD_NUMBER: _ClassVar[int]
    RANGE_FIELD_NUMBER: _ClassVar[int]
    WHAT_TO_SHOW_FIELD_NUMBER: _ClassVar[int]
    USE_RTH_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    contract: ContractSpec
    timeframe: str
    range: _common_pb2.TimeRange
    what_to_show: WhatToShow
    use_rth: bool
    request_id: str
    def __init__(self, contract: _Optional[_Union[ContractSpec, _Mapping]] = ..., timeframe: _Optional[str] = ..., range: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., what_to_show: _Optional[_Union[WhatToShow, str]] = ..., use_rth: _Optional[bool] = ..., request_id: _Optional[str] = ...) -> None: ...

class FetchProgress(_message.Message):
    __slots__ = ("progress", "bars_fetched", "requests_done", "requests_total")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    BARS_FETCHED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_DONE_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_TOTAL_FIELD_NUMBER: _ClassVar[int]
    progress: _common_pb2.Progress
    bars_fetched: int
    requests_done: int
    requests_total: int
    def __init__(self, progress: _Optional[_Union[_common_pb2.Progress, _Mapping]] = ..., bars_fetched: _Optional[int] = ..., requests_done: _Optional[int] = ..., requests_total: _Optional[int] = ...) -> None: ...

class PacingWait(_message.Message):
    __slots__ = ("wait", "reason")
    WAIT_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    wait: _duration_pb2.Duration
    reason: str
    def __init__(self, wait: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., reason: _Optional[str] = ...) -> None: ...

class FetchBarsResponse(_message.Message):
    __slots__ = ("chunk", "empty", "progress", "pacing_wait")
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    EMPTY_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PACING_WAIT_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.BarsChunk
    empty: _common_pb2.TimeRange
    progress: FetchProgress
    pacing_wait: PacingWait
    def __init__(self, chunk: _Optional[_Union[_common_pb2.BarsChunk, _Mapping]] = ..., empty: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., progress: _Optional[_Union[FetchProgress, _Mapping]] = ..., pacing_wait: _Optional[_Union[PacingWait, _Mapping]] = ...) -> None: ...

class GetHeadTimestampRequest(_message.Message):
    __slots__ = ("contract", "what_to_show", "use_rth")
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    WHAT_TO_SHOW_FIELD_NUMBER: _ClassVar[int]
    USE_RTH_FIELD_NUMBER: _ClassVar[int]
    contract: ContractSpec
    what_to_show: WhatToShow
    use_rth: bool
    def __init__(self, contract: _Optional[_Union[ContractSpec, _Mapping]] = ..., what_to_show: _Optional[_Union[WhatToShow, str]] = ..., use_rth: _Optional[bool] = ...) -> None: ...

class GetHeadTimestampResponse(_message.Message):
    __slots__ = ("head_time",)
    HEAD_TIME_FIELD_NUMBER: _ClassVar[int]
    head_time: _timestamp_pb2.Timestamp
    def __init__(self, head_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ResolveContractRequest(_message.Message):
    __slots__ = ("contract",)
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    contract: ContractSpec
    def __init__(self, contract: _Optional[_Union[ContractSpec, _Mapping]] = ...) -> None: ...

class ResolveContractResponse(_message.Message):
    __slots__ = ("contract",)
    CONTRACT_FIELD_NUMBER: _ClassVar[int]
    contract: Contract
    def __init__(self, contract: _Optional[_Union[Contract, _Mapping]] = ...) -> None: ...

class PacerStatus(_message.Message):
    __slots__ = ("requests_in_window", "open_requests", "queued_requests", "next_slot_time", "budget_left", "queue_eta", "pacing_violations")
    REQUESTS_IN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    OPEN_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    QUEUED_REQUESTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_SLOT_TIME_FIELD_NUMBER: _ClassVar[int]
    BUDGET_LEFT_FIELD_NUMBER: _ClassVar[int]
    QUEUE_ETA_FIELD_NUMBER: _ClassVar[int]
    PACING_VIOLATIONS_FIELD_NUMBER: _ClassVar[int]
    requests_in_window: int
    open_requests: int
    queued_requests: int
    next_slot_time: _timestamp_pb2.Timestamp
    budget_left: int
    queue_eta: _duration_pb2.Duration
    pacing_violations: int
    def __init__(self, requests_in_window: _Optional[int] = ..., open_requests: _Optional[int] = ..., queued_requests: _Optional[int] = ..., next_slot_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., budget_left: _Optional[int] = ..., queue_eta: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., pacing_violations: _Optional[int] = ...) -> None: ...

class FarmStatus(_message.Message):
    __slots__ = ("code", "message")
    CODE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    code: int
    message: str
    def __init__(self, code: _Optional[int] = ..., message: _Optional[str] = ...) -> None: ...

class GetStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetStatusResponse(_message.Message):
    __slots__ = ("state", "gateway_address", "client_id", "server_version", "since", "message", "pacer", "simulated", "farms", "ib_connectivity", "version")
    STATE_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    CLIENT_ID_FIELD_NUMBER: _ClassVar[int]
    SERVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    PACER_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    FARMS_FIELD_NUMBER: _ClassVar[int]
    IB_CONNECTIVITY_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    state: ConnectionState
    gateway_address: str
    client_id: int
    server_version: int
    since: _timestamp_pb2.Timestamp
    message: str
    pacer: PacerStatus
    simulated: bool
    farms: _containers.RepeatedCompositeFieldContainer[FarmStatus]
    ib_connectivity: bool
    version: str
    def __init__(self, state: _Optional[_Union[ConnectionState, str]] = ..., gateway_address: _Optional[str] = ..., client_id: _Optional[int] = ..., server_version: _Optional[int] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., message: _Optional[str] = ..., pacer: _Optional[_Union[PacerStatus, _Mapping]] = ..., simulated: _Optional[bool] = ..., farms: _Optional[_Iterable[_Union[FarmStatus, _Mapping]]] = ..., ib_connectivity: _Optional[bool] = ..., version: _Optional[str] = ...) -> None: ...
