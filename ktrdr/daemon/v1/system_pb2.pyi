import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class HostKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_KIND_UNSPECIFIED: _ClassVar[HostKind]
    HOST_KIND_TRAINING: _ClassVar[HostKind]
    HOST_KIND_MARKETDATA: _ClassVar[HostKind]

class HostState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    HOST_STATE_UNSPECIFIED: _ClassVar[HostState]
    HOST_STATE_CONNECTING: _ClassVar[HostState]
    HOST_STATE_READY: _ClassVar[HostState]
    HOST_STATE_UNAVAILABLE: _ClassVar[HostState]
HOST_KIND_UNSPECIFIED: HostKind
HOST_KIND_TRAINING: HostKind
HOST_KIND_MARKETDATA: HostKind
HOST_STATE_UNSPECIFIED: HostState
HOST_STATE_CONNECTING: HostState
HOST_STATE_READY: HostState
HOST_STATE_UNAVAILABLE: HostState

class HostInfo(_message.Message):
    __slots__ = ("name", "kind", "address", "state", "message", "since", "version", "round_trip", "simulated")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SINCE_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    ROUND_TRIP_FIELD_NUMBER: _ClassVar[int]
    SIMULATED_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: HostKind
    address: str
    state: HostState
    message: str
    since: _timestamp_pb2.Timestamp
    version: str
    round_trip: _duration_pb2.Duration
    simulated: bool
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[HostKind, str]] = ..., address: _Optional[str] = ..., state: _Optional[_Union[HostState, str]] = ..., message: _Optional[str] = ..., since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ..., round_trip: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., simulated: _Optional[bool] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetInfoResponse(_message.Message):
    __slots__ = ("version", "instance_id", "start_time", "uptime", "pid", "runtime_dir", "grpc_socket", "ctl_socket", "state_dir", "hosts")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    INSTANCE_ID_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    UPTIME_FIELD_NUMBER: _ClassVar[int]
    PID_FIELD_NUMBER: _ClassVar[int]
    RUNTIME_DIR_FIELD_NUMBER: _ClassVar[int]
    GRPC_SOCKET_FIELD_NUMBER: _ClassVar[int]
    CTL_SOCKET_FIELD_NUMBER: _ClassVar[int]
    STATE_DIR_FIELD_NUMBER: _ClassVar[int]
    HOSTS_FIELD_NUMBER: _ClassVar[int]
    version: str
    instance_id: str
    start_time: _timestamp_pb2.Timestamp
    uptime: _duration_pb2.Duration
    pid: int
    runtime_dir: str
    grpc_socket: str
    ctl_socket: str
    state_dir: str
    hosts: _containers.RepeatedCompositeFieldContainer[HostInfo]
    def __init__(self, version: _Optional[str] = ..., instance_id: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., uptime: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., pid: _Optional[int] = ..., runtime_dir: _Optional[str] = ..., grpc_socket: _Optional[str] = ..., ctl_socket: _Optional[str] = ..., state_dir: _Optional[str] = ..., hosts: _Optional[_Iterable[_Union[HostInfo, _Mapping]]] = ...) -> None: ...
