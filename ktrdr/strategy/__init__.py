"""Strategy files: load, validate and normalize them; say which data a run needs.

Usage: ``loaded = load_strategy_file("strategies/neuro_mean_reversion.yaml")`` gives
``loaded.strategy`` (the normalized :class:`Strategy`), ``loaded.warnings`` and
``loaded.normalized()``; ``data_requirements(loaded.strategy, start, end)`` lists the series to load.
``load_strategy_text(text, source, overrides=[parse_override("a.b=1")])`` applies ``--set``
overrides (:mod:`ktrdr.strategy.overrides`). A file that cannot be loaded raises :class:`StrategyError` carrying every problem found.

Importable without grpc or torch (uses yaml and numpy through the indicator registry).
"""

from ktrdr.strategy.issues import StrategyError, StrategyIssue
from ktrdr.strategy.loader import LoadedStrategy, load_strategy_file, load_strategy_text
from ktrdr.strategy.model import Strategy
from ktrdr.strategy.overrides import Override, OverrideError, expand_sweeps, parse_override
from ktrdr.strategy.requirements import SeriesRequirement, data_requirements

__all__ = [
    "LoadedStrategy",
    "Override",
    "OverrideError",
    "SeriesRequirement",
    "Strategy",
    "StrategyError",
    "StrategyIssue",
    "data_requirements",
    "expand_sweeps",
    "load_strategy_file",
    "load_strategy_text",
    "parse_override",
]
