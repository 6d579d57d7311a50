"""Technical indicators, NumPy-vectorised, resolved through one registry.

Use :func:`lookup` (``ktrdr.research.indicators.registry``) to get an :class:`IndicatorDef` by any
name or alias, then call it on :class:`~ktrdr.research.bars.Bars`.
"""

from ktrdr.research.indicators.registry import (
    IndicatorDef,
    IndicatorParamError,
    Param,
    UnknownIndicatorError,
    known_names,
    lookup,
)

__all__ = ["IndicatorDef", "IndicatorParamError", "Param", "UnknownIndicatorError", "known_names", "lookup"]
