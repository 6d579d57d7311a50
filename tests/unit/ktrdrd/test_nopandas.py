"""The daemon refuses pandas: pyarrow then works without it (it would otherwise import it)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = """
import sys
from ktrdrd import nopandas
nopandas.refuse()
import pyarrow as pa, pyarrow.compute as pc
column = pa.chunked_array([[1, 2, 3]])
assert pc.sum(pc.multiply(column, 2)).as_py() == 12 and column.to_numpy().tolist() == [1, 2, 3]
assert "pandas" not in sys.modules
try:
    import pandas
except ModuleNotFoundError as exc:
    print(exc)
"""


def test_pyarrow_works_and_pandas_is_refused_with_a_reason() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ktrdrd does not load pandas (see ktrdrd.nopandas): use pyarrow/NumPy"
