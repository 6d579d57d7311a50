"""The model registry (``models/<strategy>/<version>/`` under the state dir, catalogued in the
journal): :class:`~ktrdrd.models.registry.ModelRegistry`."""

from ktrdrd.models.catalog import ModelRecord, VersionRecord
from ktrdrd.models.files import name_problem
from ktrdrd.models.registry import MODELS_DIR, ModelRegistry, Placed, RegistrationError

__all__ = [
    "MODELS_DIR",
    "ModelRecord",
    "ModelRegistry",
    "Placed",
    "RegistrationError",
    "VersionRecord",
    "name_problem",
]
