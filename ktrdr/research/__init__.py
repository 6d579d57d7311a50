"""Research core: bars, indicators, fuzzy memberships, features, labels, datasets, model, trainer,
evaluation, backtests.

Importable without grpc. Heavy dependencies (numpy, pandas, torch) are imported by the submodules
that need them, never by this package root.
"""
