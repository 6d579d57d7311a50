"""Keep pandas out of the daemon process.

ktrdrd needs no pandas: its bar cache, import parser and calendars work on pyarrow and NumPy
(exchange session tables are built by a subprocess, :mod:`ktrdrd.data.sessiontables`). pyarrow
itself would still import pandas (~40 MiB of RSS, a third of the daemon's) just to probe for its
optional pandas integration: on converting a column to NumPy, or a Python value to an Arrow
scalar. :func:`refuse` makes ``import pandas`` fail in this process, so pyarrow runs as if pandas
were not installed; code that really imports pandas in the daemon fails at once with a message
saying why, instead of silently adding the memory back.
"""

from __future__ import annotations

import importlib.abc
import sys
from collections.abc import Sequence
from importlib.machinery import ModuleSpec
from types import ModuleType

REFUSED = "pandas"


class _Refuse(importlib.abc.MetaPathFinder):
    """A finder, first on ``sys.meta_path``, that fails the import of pandas and its submodules."""

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if fullname == REFUSED or fullname.startswith(REFUSED + "."):
            raise ModuleNotFoundError(
                f"ktrdrd does not load {REFUSED} (see ktrdrd.nopandas): use pyarrow/NumPy", name=fullname
            )
        return None


def refuse() -> None:
    """From now on, importing pandas in this process raises ModuleNotFoundError (idempotent).
    Call before pandas is imported (it cannot unload a loaded one)."""
    if not any(isinstance(finder, _Refuse) for finder in sys.meta_path):
        sys.meta_path.insert(0, _Refuse())
