import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.daemon.v1 import operations_pb2 as _operations_pb2
from ktrdr.daemon.v1 import strategies_pb2 as _strategies_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class BacktestSettings(_message.Message):
    __slots__ = ("initial_capital", "fee_bps", "slippage_bps", "position_fraction")
    INITIAL_CAPITAL_FIELD_NUMBER: _ClassVar[int]
    FEE_BPS_FIELD_NUMBER: _ClassVar[int]
    SLIPPAGE_BPS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FRACTION_FIELD_NUMBER: _ClassVar[int]
    initial_capital: float
    fee_bps: float
    slippage_bps: float
    position_fraction: float
    def __init__(self, initial_capital: _Optional[float] = ..., fee_bps: _Optional[float] = ..., slippage_bps: _Optional[float] = ..., position_fraction: _Optional[float] = ...) -> None: ...

class StartBacktestRequest(_message.Message):
    __slots__ = ("model_version", "symbols", "start_time", "end_time", "settings", "request_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    symbols: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    settings: BacktestSettings
    request_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, model_version: _Optional[str] = ..., symbols: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., settings: _Optional[_Union[BacktestSettings, _Mapping]] = ..., request_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StartBacktestResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operations_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operations_pb2.Operation, _Mapping]] = ...) -> None: ...

class BacktestResult(_message.Message):
    __slots__ = ("model_version", "metrics", "report")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    model_version: str
    metrics: _containers.ScalarMap[str, float]
    report: _struct_pb2.Struct
    def __init__(self, model_version: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., report: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...

class GetBacktestArtifactRequest(_message.Message):
    __slots__ = ("name", "symbol", "artifact")
    NAME_FIELD_NUMBER: _ClassVar[int]
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    ARTIFACT_FIELD_NUMBER: _ClassVar[int]
    name: str
    symbol: str
    artifact: str
    def __init__(self, name: _Optional[str] = ..., symbol: _Optional[str] = ..., artifact: _Optional[str] = ...) -> None: ...

class GetBacktestArtifactResponse(_message.Message):
    __slots__ = ("size_bytes", "data")
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    size_bytes: int
    data: bytes
    def __init__(self, size_bytes: _Optional[int] = ..., data: _Optional[bytes] = ...) -> None: ...

class StartWalkForwardRequest(_message.Message):
    __slots__ = ("strategy", "symbols", "start_time", "end_time", "train_window", "test_window", "settings", "seed", "request_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    STRATEGY_FIELD_NUMBER: _ClassVar[int]
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_WINDOW_FIELD_NUMBER: _ClassVar[int]
    TEST_WINDOW_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    strategy: _strategies_pb2.StrategySource
    symbols: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    train_window: str
    test_window: str
    settings: BacktestSettings
    seed: int
    request_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, strategy: _Optional[_Union[_strategies_pb2.StrategySource, _Mapping]] = ..., symbols: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., train_window: _Optional[str] = ..., test_window: _Optional[str] = ..., settings: _Optional[_Union[BacktestSettings, _Mapping]] = ..., seed: _Optional[int] = ..., request_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class StartWalkForwardResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operations_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operations_pb2.Operation, _Mapping]] = ...) -> None: ...

class WalkForwardWindow(_message.Message):
    __slots__ = ("index", "train_start_time", "train_end_time", "test_start_time", "test_end_time", "model_version", "training_operation", "reused")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    TRAIN_START_TIME_FIELD_NUMBER: _ClassVar[int]
    TRAIN_END_TIME_FIELD_NUMBER: _ClassVar[int]
    TEST_START_TIME_FIELD_NUMBER: _ClassVar[int]
    TEST_END_TIME_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    TRAINING_OPERATION_FIELD_NUMBER: _ClassVar[int]
    REUSED_FIELD_NUMBER: _ClassVar[int]
    index: int
    train_start_time: _timestamp_pb2.Timestamp
    train_end_time: _timestamp_pb2.Timestamp
    test_start_time: _timestamp_pb2.Timestamp
    test_end_time: _timestamp_pb2.Timestamp
    model_version: str
    training_operation: str
    reused: bool
    def __init__(self, index: _Optional[int] = ..., train_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., train_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., test_end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., model_version: _Optional[str] = ..., training_operation: _Optional[str] = ..., reused: _Optional[bool] = ...) -> None: ...

class WalkForwardResult(_message.Message):
    __slots__ = ("model", "metrics", "windows", "report")
    class MetricsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    MODEL_FIELD_NUMBER: _ClassVar[int]
    METRICS_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    REPORT_FIELD_NUMBER: _ClassVar[int]
    model: str
    metrics: _containers.ScalarMap[str, float]
    windows: _containers.RepeatedCompositeFieldContainer[WalkForwardWindow]
    report: _struct_pb2.Struct
    def __init__(self, model: _Optional[str] = ..., metrics: _Optional[_Mapping[str, float]] = ..., windows: _Optional[_Iterable[_Union[WalkForwardWindow, _Mapping]]] = ..., report: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ...) -> None: ...
