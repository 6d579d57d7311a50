"""What a running ktrdrd has imported: its memory at rest is mostly the libraries it loaded
(``bench train_daemon`` part (b) reports its RSS), so the heavy ones load where they are first needed.

- At rest (started with a training host configured, serving, idle): no torch or matplotlib (the
  daemon never trains; it renders plots only when asked), and no pandas, pyarrow or
  exchange_calendars (the bar cache and its calendars load with the first DataService call,
  :mod:`ktrdrd.services.lazy_data`).
- After a DataService call, still no torch or matplotlib; after a CSV import of daily bars and a
  gap analysis (both need the NYSE calendar), still no pandas or exchange_calendars: the import
  parser is pyarrow's, and the session table is read from a file a subprocess built
  (:mod:`ktrdrd.data.sessiontables`).

The daemon runs with the test-only ctl method of :mod:`tests.support.introspect` that lists its
``sys.modules``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.conftest import TEST_PLUGINS
from tests.support.ctlserver import run_ktrdrctl
from tests.support.introspect import MODULES_METHOD

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory

NEVER = ("torch", "matplotlib")
NOT_AT_REST = ("pandas", "pyarrow", "exchange_calendars")
NOT_FOR_DATA = ("pandas", "exchange_calendars")


def _loaded(daemon: Daemon, packages: tuple[str, ...]) -> list[str]:
    """The top-level packages of ``packages`` that the daemon has imported (any of their modules)."""
    modules = daemon.ctl(MODULES_METHOD)["modules"]
    assert "ktrdrd.app" in modules  # the answer is the daemon's own module table
    return sorted({name.partition(".")[0] for name in modules} & set(packages))


def test_an_idle_daemon_has_not_imported_torch_matplotlib_or_the_data_stack(
    daemon_factory: DaemonFactory,
) -> None:
    daemon = daemon_factory.start(
        env={
            "KTRDR_TEST_PLUGINS": f"{TEST_PLUGINS},tests.support.introspect",
            # A configured host (absent): the training kinds and host links are set up as in production.
            "KTRDR_HOSTS_TRAINING": f"unix:{daemon_factory.base / 'no-host.sock'}",
        }
    )
    daemon.info()
    daemon.ctl("ktrdr.daemon.v1.OperationsService/ListOperations", {})
    assert _loaded(daemon, NEVER + NOT_AT_REST) == []
    daemon.ctl("ktrdr.daemon.v1.DataService/ListSeries", {})
    assert "pyarrow" in _loaded(daemon, NOT_AT_REST)  # the data stack loaded with the call
    assert _loaded(daemon, NEVER) == []
    # Daily bars given as dates are restamped on the NYSE calendar; 4 July 2024 is a holiday.
    bars = daemon_factory.base / "spy.csv"
    bars.write_text("date,open,high,low,close,volume\n2024-07-03,1,2,0.5,1,10\n2024-07-05,1,2,0.5,1,10\n")
    imported = run_ktrdrctl("--runtime-dir", str(daemon.runtime_dir), "data", "import", str(bars),
                            "--symbol", "SPY", "--timeframe", "1d")  # fmt: skip
    assert imported.returncode == 0, imported.stderr
    gaps = daemon.ctl("ktrdr.daemon.v1.DataService/GetGaps", {
        "series": {"symbol": "SPY", "timeframe": "1d"},
        "startTime": "2024-07-01T00:00:00Z", "endTime": "2024-07-09T00:00:00Z",
    })  # fmt: skip
    assert [gap["expectedBars"] for gap in gaps["gaps"]] == ["2", "1"]  # 1-2 July; 8 July
    assert _loaded(daemon, NEVER + NOT_FOR_DATA) == []
    tables = (daemon.state_dir / "calendars").glob("*.npz")
    assert [table.name.split("-")[0] for table in tables] == ["XNYS"]
