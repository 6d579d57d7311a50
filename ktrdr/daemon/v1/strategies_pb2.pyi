import datetime

from google.protobuf import struct_pb2 as _struct_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.common.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class IssueSeverity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ISSUE_SEVERITY_UNSPECIFIED: _ClassVar[IssueSeverity]
    ISSUE_SEVERITY_ERROR: _ClassVar[IssueSeverity]
    ISSUE_SEVERITY_WARNING: _ClassVar[IssueSeverity]
ISSUE_SEVERITY_UNSPECIFIED: IssueSeverity
ISSUE_SEVERITY_ERROR: IssueSeverity
ISSUE_SEVERITY_WARNING: IssueSeverity

class StrategySource(_message.Message):
    __slots__ = ("content", "source_name")
    CONTENT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    content: str
    source_name: str
    def __init__(self, content: _Optional[str] = ..., source_name: _Optional[str] = ...) -> None: ...

class StrategyIssue(_message.Message):
    __slots__ = ("severity", "path", "message", "line", "column", "suggestion", "source_name")
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    LINE_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    SUGGESTION_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    severity: IssueSeverity
    path: str
    message: str
    line: int
    column: int
    suggestion: str
    source_name: str
    def __init__(self, severity: _Optional[_Union[IssueSeverity, str]] = ..., path: _Optional[str] = ..., message: _Optional[str] = ..., line: _Optional[int] = ..., column: _Optional[int] = ..., suggestion: _Optional[str] = ..., source_name: _Optional[str] = ...) -> None: ...

class DataRequirement(_message.Message):
    __slots__ = ("series", "start_time", "end_time", "warmup_bars", "run_start_time")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    WARMUP_BARS_FIELD_NUMBER: _ClassVar[int]
    RUN_START_TIME_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    warmup_bars: int
    run_start_time: _timestamp_pb2.Timestamp
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., warmup_bars: _Optional[int] = ..., run_start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ValidateStrategyRequest(_message.Message):
    __slots__ = ("source", "overrides")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    source: StrategySource
    overrides: _containers.RepeatedCompositeFieldContainer[_common_pb2.ParameterOverride]
    def __init__(self, source: _Optional[_Union[StrategySource, _Mapping]] = ..., overrides: _Optional[_Iterable[_Union[_common_pb2.ParameterOverride, _Mapping]]] = ...) -> None: ...

class ValidateStrategyResponse(_message.Message):
    __slots__ = ("valid", "issues", "normalized", "omitted_issue_count")
    VALID_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    OMITTED_ISSUE_COUNT_FIELD_NUMBER: _ClassVar[int]
    valid: bool
    issues: _containers.RepeatedCompositeFieldContainer[StrategyIssue]
    normalized: _struct_pb2.Struct
    omitted_issue_count: int
    def __init__(self, valid: _Optional[bool] = ..., issues: _Optional[_Iterable[_Union[StrategyIssue, _Mapping]]] = ..., normalized: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., omitted_issue_count: _Optional[int] = ...) -> None: ...

class DescribeStrategyRequest(_message.Message):
    __slots__ = ("source", "overrides", "start_time", "end_time")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    OVERRIDES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    source: StrategySource
    overrides: _containers.RepeatedCompositeFieldContainer[_common_pb2.ParameterOverride]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, source: _Optional[_Union[StrategySource, _Mapping]] = ..., overrides: _Optional[_Iterable[_Union[_common_pb2.ParameterOverride, _Mapping]]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class DescribeStrategyResponse(_message.Message):
    __slots__ = ("name", "description", "normalized", "issues", "feature_names", "data_requirements", "period", "omitted_issue_count")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    NORMALIZED_FIELD_NUMBER: _ClassVar[int]
    ISSUES_FIELD_NUMBER: _ClassVar[int]
    FEATURE_NAMES_FIELD_NUMBER: _ClassVar[int]
    DATA_REQUIREMENTS_FIELD_NUMBER: _ClassVar[int]
    PERIOD_FIELD_NUMBER: _ClassVar[int]
    OMITTED_ISSUE_COUNT_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    normalized: _struct_pb2.Struct
    issues: _containers.RepeatedCompositeFieldContainer[StrategyIssue]
    feature_names: _containers.RepeatedScalarFieldContainer[str]
    data_requirements: _containers.RepeatedCompositeFieldContainer[DataRequirement]
    period: _common_pb2.TimeRange
    omitted_issue_count: int
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., normalized: _Optional[_Union[_struct_pb2.Struct, _Mapping]] = ..., issues: _Optional[_Iterable[_Union[StrategyIssue, _Mapping]]] = ..., feature_names: _Optional[_Iterable[str]] = ..., data_requirements: _Optional[_Iterable[_Union[DataRequirement, _Mapping]]] = ..., period: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., omitted_issue_count: _Optional[int] = ...) -> None: ...
