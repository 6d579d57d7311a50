"""The daemon's API services, written once and served by both transports (see :mod:`.registry`).

:func:`build_registry` assembles every ``ktrdr.daemon.v1`` service. Services whose issue has not
landed are registered as :class:`Pending`, so each of their RPCs answers UNIMPLEMENTED through the
normal error path. To implement one: give it a class with ``descriptor`` and the RPC coroutines (see
:mod:`.operations`) and register it here instead of the ``Pending`` entry.
"""

from __future__ import annotations

from typing import Any

from google.protobuf.descriptor import ServiceDescriptor

from ktrdr.daemon.v1 import backtests_pb2, data_pb2, models_pb2, training_pb2
from ktrdr.rpc.registry import Call, MethodSpec, Registry
from ktrdrd.appstate import AppState
from ktrdrd.services.operations import OperationsService
from ktrdrd.services.strategies import StrategiesService
from ktrdrd.services.system import SystemService

__all__ = ["Call", "MethodSpec", "Pending", "Registry", "build_registry"]


class Pending:
    """A service with no RPC implemented yet: every method answers UNIMPLEMENTED."""

    def __init__(self, descriptor: ServiceDescriptor) -> None:
        self.descriptor = descriptor


def build_registry(
    app_state: AppState,
    core: Any,
    data: object | None = None,
    models: object | None = None,
    training: object | None = None,
    resumers: dict[str, Any] | None = None,
    backtests: object | None = None,
) -> Registry:
    """Every daemon service, bound to this daemon's state and operations core.

    ``data``: the ``DataService`` (:mod:`.data`, built by the daemon around its bar cache); None
    leaves DataService UNIMPLEMENTED (tools that serve no cache). ``models``: the ``ModelsService``
    (:mod:`.models`, over the daemon's model registry); None leaves it UNIMPLEMENTED.
    ``training``: the ``TrainingService`` (:mod:`ktrdrd.training`); None: UNIMPLEMENTED.
    ``resumers``: kind → how ``ResumeOperation`` continues an operation of that kind.
    ``backtests``: the ``BacktestsService`` (:mod:`ktrdrd.backtests`); None: UNIMPLEMENTED.
    """
    return Registry(
        [
            SystemService(app_state),
            OperationsService(core, resumers),
            training or Pending(training_pb2.DESCRIPTOR.services_by_name["TrainingService"]),
            data or Pending(data_pb2.DESCRIPTOR.services_by_name["DataService"]),
            StrategiesService(),
            models or Pending(models_pb2.DESCRIPTOR.services_by_name["ModelsService"]),
            backtests or Pending(backtests_pb2.DESCRIPTOR.services_by_name["BacktestsService"]),
        ]
    )
