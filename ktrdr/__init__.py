"""ktrdr shared library.

Light to import from its root: this module imports nothing heavy. Subpackages:
``ktrdr.strategy`` (strategy files), ``ktrdr.research`` (indicators, features, labels, model,
trainer), ``ktrdr.timeframes``, and the generated API modules under ``ktrdr/<area>/v1``.
"""

__version__ = "0.1.0"


def package_version() -> str:
    """The installed ktrdr package's version (what ktrdrd and the hosts report); ``0+unknown``
    when the package is not installed."""
    from importlib import metadata  # not at import time: this package's root stays light

    try:
        return metadata.version("ktrdr")
    except metadata.PackageNotFoundError:
        return "0+unknown"
