import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from ktrdr.common.v1 import common_pb2 as _common_pb2
from ktrdr.daemon.v1 import operations_pb2 as _operations_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DataSource(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DATA_SOURCE_UNSPECIFIED: _ClassVar[DataSource]
    DATA_SOURCE_IB: _ClassVar[DataSource]
    DATA_SOURCE_IMPORT: _ClassVar[DataSource]
    DATA_SOURCE_SIMULATOR: _ClassVar[DataSource]

class LoadMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOAD_MODE_UNSPECIFIED: _ClassVar[LoadMode]
    LOAD_MODE_MISSING: _ClassVar[LoadMode]
    LOAD_MODE_REFRESH: _ClassVar[LoadMode]
    LOAD_MODE_TAIL: _ClassVar[LoadMode]
    LOAD_MODE_BACKFILL: _ClassVar[LoadMode]

class ImportMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_MODE_UNSPECIFIED: _ClassVar[ImportMode]
    IMPORT_MODE_CREATE: _ClassVar[ImportMode]
    IMPORT_MODE_REPLACE: _ClassVar[ImportMode]
    IMPORT_MODE_MERGE: _ClassVar[ImportMode]

class ImportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMPORT_FORMAT_UNSPECIFIED: _ClassVar[ImportFormat]
    IMPORT_FORMAT_CSV: _ClassVar[ImportFormat]
    IMPORT_FORMAT_PARQUET: _ClassVar[ImportFormat]

class ExportFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    EXPORT_FORMAT_UNSPECIFIED: _ClassVar[ExportFormat]
    EXPORT_FORMAT_CSV: _ClassVar[ExportFormat]
    EXPORT_FORMAT_PARQUET: _ClassVar[ExportFormat]
    EXPORT_FORMAT_JSONL: _ClassVar[ExportFormat]
DATA_SOURCE_UNSPECIFIED: DataSource
DATA_SOURCE_IB: DataSource
DATA_SOURCE_IMPORT: DataSource
DATA_SOURCE_SIMULATOR: DataSource
LOAD_MODE_UNSPECIFIED: LoadMode
LOAD_MODE_MISSING: LoadMode
LOAD_MODE_REFRESH: LoadMode
LOAD_MODE_TAIL: LoadMode
LOAD_MODE_BACKFILL: LoadMode
IMPORT_MODE_UNSPECIFIED: ImportMode
IMPORT_MODE_CREATE: ImportMode
IMPORT_MODE_REPLACE: ImportMode
IMPORT_MODE_MERGE: ImportMode
IMPORT_FORMAT_UNSPECIFIED: ImportFormat
IMPORT_FORMAT_CSV: ImportFormat
IMPORT_FORMAT_PARQUET: ImportFormat
EXPORT_FORMAT_UNSPECIFIED: ExportFormat
EXPORT_FORMAT_CSV: ExportFormat
EXPORT_FORMAT_PARQUET: ExportFormat
EXPORT_FORMAT_JSONL: ExportFormat

class LoadDataRequest(_message.Message):
    __slots__ = ("symbols", "timeframes", "start_time", "end_time", "mode", "request_id", "labels")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SYMBOLS_FIELD_NUMBER: _ClassVar[int]
    TIMEFRAMES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    symbols: _containers.RepeatedScalarFieldContainer[str]
    timeframes: _containers.RepeatedScalarFieldContainer[str]
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    mode: LoadMode
    request_id: str
    labels: _containers.ScalarMap[str, str]
    def __init__(self, symbols: _Optional[_Iterable[str]] = ..., timeframes: _Optional[_Iterable[str]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mode: _Optional[_Union[LoadMode, str]] = ..., request_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ...) -> None: ...

class LoadDataResponse(_message.Message):
    __slots__ = ("operation",)
    OPERATION_FIELD_NUMBER: _ClassVar[int]
    operation: _operations_pb2.Operation
    def __init__(self, operation: _Optional[_Union[_operations_pb2.Operation, _Mapping]] = ...) -> None: ...

class LoadDataResult(_message.Message):
    __slots__ = ("series", "bars_fetched", "requests_done")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    BARS_FETCHED_FIELD_NUMBER: _ClassVar[int]
    REQUESTS_DONE_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[SeriesCoverage]
    bars_fetched: int
    requests_done: int
    def __init__(self, series: _Optional[_Iterable[_Union[SeriesCoverage, _Mapping]]] = ..., bars_fetched: _Optional[int] = ..., requests_done: _Optional[int] = ...) -> None: ...

class GetGapsRequest(_message.Message):
    __slots__ = ("series", "start_time", "end_time", "mode")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    mode: LoadMode
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., mode: _Optional[_Union[LoadMode, str]] = ...) -> None: ...

class Gap(_message.Message):
    __slots__ = ("range", "expected_bars")
    RANGE_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_BARS_FIELD_NUMBER: _ClassVar[int]
    range: _common_pb2.TimeRange
    expected_bars: int
    def __init__(self, range: _Optional[_Union[_common_pb2.TimeRange, _Mapping]] = ..., expected_bars: _Optional[int] = ...) -> None: ...

class GetGapsResponse(_message.Message):
    __slots__ = ("gaps", "expected_bars", "calendar")
    GAPS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_BARS_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    gaps: _containers.RepeatedCompositeFieldContainer[Gap]
    expected_bars: int
    calendar: str
    def __init__(self, gaps: _Optional[_Iterable[_Union[Gap, _Mapping]]] = ..., expected_bars: _Optional[int] = ..., calendar: _Optional[str] = ...) -> None: ...

class SeriesCoverage(_message.Message):
    __slots__ = ("series", "source", "covered", "known_empty", "bar_count", "first_bar_time", "last_bar_time", "digest", "update_time")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    COVERED_FIELD_NUMBER: _ClassVar[int]
    KNOWN_EMPTY_FIELD_NUMBER: _ClassVar[int]
    BAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    FIRST_BAR_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_BAR_TIME_FIELD_NUMBER: _ClassVar[int]
    DIGEST_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    source: DataSource
    covered: _containers.RepeatedCompositeFieldContainer[_common_pb2.TimeRange]
    known_empty: _containers.RepeatedCompositeFieldContainer[_common_pb2.TimeRange]
    bar_count: int
    first_bar_time: _timestamp_pb2.Timestamp
    last_bar_time: _timestamp_pb2.Timestamp
    digest: str
    update_time: _timestamp_pb2.Timestamp
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ..., source: _Optional[_Union[DataSource, str]] = ..., covered: _Optional[_Iterable[_Union[_common_pb2.TimeRange, _Mapping]]] = ..., known_empty: _Optional[_Iterable[_Union[_common_pb2.TimeRange, _Mapping]]] = ..., bar_count: _Optional[int] = ..., first_bar_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_bar_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., digest: _Optional[str] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetCoverageRequest(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ...) -> None: ...

class GetCoverageResponse(_message.Message):
    __slots__ = ("coverage",)
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    coverage: SeriesCoverage
    def __init__(self, coverage: _Optional[_Union[SeriesCoverage, _Mapping]] = ...) -> None: ...

class ListSeriesRequest(_message.Message):
    __slots__ = ("symbol", "page_size", "page_token")
    SYMBOL_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    symbol: str
    page_size: int
    page_token: str
    def __init__(self, symbol: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListSeriesResponse(_message.Message):
    __slots__ = ("series", "next_page_token")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    series: _containers.RepeatedCompositeFieldContainer[SeriesCoverage]
    next_page_token: str
    def __init__(self, series: _Optional[_Iterable[_Union[SeriesCoverage, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ImportBarsHeader(_message.Message):
    __slots__ = ("series", "mode", "source_name", "format", "calendar", "repairs", "timezone")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_NAME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    CALENDAR_FIELD_NUMBER: _ClassVar[int]
    REPAIRS_FIELD_NUMBER: _ClassVar[int]
    TIMEZONE_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    mode: ImportMode
    source_name: str
    format: ImportFormat
    calendar: str
    repairs: _containers.RepeatedScalarFieldContainer[str]
    timezone: str
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ..., mode: _Optional[_Union[ImportMode, str]] = ..., source_name: _Optional[str] = ..., format: _Optional[_Union[ImportFormat, str]] = ..., calendar: _Optional[str] = ..., repairs: _Optional[_Iterable[str]] = ..., timezone: _Optional[str] = ...) -> None: ...

class ImportBarsRequest(_message.Message):
    __slots__ = ("header", "chunk", "data")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    header: ImportBarsHeader
    chunk: _common_pb2.BarsChunk
    data: bytes
    def __init__(self, header: _Optional[_Union[ImportBarsHeader, _Mapping]] = ..., chunk: _Optional[_Union[_common_pb2.BarsChunk, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class ImportBarsResponse(_message.Message):
    __slots__ = ("coverage", "bars_imported", "repairs", "naive_times_as_utc")
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    BARS_IMPORTED_FIELD_NUMBER: _ClassVar[int]
    REPAIRS_FIELD_NUMBER: _ClassVar[int]
    NAIVE_TIMES_AS_UTC_FIELD_NUMBER: _ClassVar[int]
    coverage: SeriesCoverage
    bars_imported: int
    repairs: _containers.RepeatedCompositeFieldContainer[ImportRepair]
    naive_times_as_utc: int
    def __init__(self, coverage: _Optional[_Union[SeriesCoverage, _Mapping]] = ..., bars_imported: _Optional[int] = ..., repairs: _Optional[_Iterable[_Union[ImportRepair, _Mapping]]] = ..., naive_times_as_utc: _Optional[int] = ...) -> None: ...

class ImportRepair(_message.Message):
    __slots__ = ("name", "rows", "examples")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ROWS_FIELD_NUMBER: _ClassVar[int]
    EXAMPLES_FIELD_NUMBER: _ClassVar[int]
    name: str
    rows: int
    examples: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., rows: _Optional[int] = ..., examples: _Optional[_Iterable[str]] = ...) -> None: ...

class GetBarsRequest(_message.Message):
    __slots__ = ("series", "start_time", "end_time", "chunk_bars", "tail")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    CHUNK_BARS_FIELD_NUMBER: _ClassVar[int]
    TAIL_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    chunk_bars: int
    tail: int
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., chunk_bars: _Optional[int] = ..., tail: _Optional[int] = ...) -> None: ...

class DeleteSeriesRequest(_message.Message):
    __slots__ = ("series",)
    SERIES_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ...) -> None: ...

class DeleteSeriesResponse(_message.Message):
    __slots__ = ("coverage",)
    COVERAGE_FIELD_NUMBER: _ClassVar[int]
    coverage: SeriesCoverage
    def __init__(self, coverage: _Optional[_Union[SeriesCoverage, _Mapping]] = ...) -> None: ...

class GetBarsResponse(_message.Message):
    __slots__ = ("chunk",)
    CHUNK_FIELD_NUMBER: _ClassVar[int]
    chunk: _common_pb2.BarsChunk
    def __init__(self, chunk: _Optional[_Union[_common_pb2.BarsChunk, _Mapping]] = ...) -> None: ...

class ExportBarsRequest(_message.Message):
    __slots__ = ("series", "start_time", "end_time", "format")
    SERIES_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    series: _common_pb2.SeriesKey
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    format: ExportFormat
    def __init__(self, series: _Optional[_Union[_common_pb2.SeriesKey, _Mapping]] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., format: _Optional[_Union[ExportFormat, str]] = ...) -> None: ...

class ExportBarsResponse(_message.Message):
    __slots__ = ("data", "bar_count")
    DATA_FIELD_NUMBER: _ClassVar[int]
    BAR_COUNT_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    bar_count: int
    def __init__(self, data: _Optional[bytes] = ..., bar_count: _Optional[int] = ...) -> None: ...
