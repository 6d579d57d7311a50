"""ktrdr shared library.

Light to import from its root: this module imports nothing heavy. Subpackages:
``ktrdr.strategy`` (strategy files), ``ktrdr.research`` (indicators, features, labels, model,
trainer), ``ktrdr.timeframes``, and the generated API modules under ``ktrdr/<area>/v1``.
"""

__version__ = "0.1.0"
