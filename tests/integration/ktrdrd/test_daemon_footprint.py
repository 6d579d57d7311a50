"""What a running ktrdrd has imported: its memory at rest is mostly the libraries it loaded
(``bench train_daemon`` part (b) reports its RSS), so the heavy ones load where they are first needed.

- At rest (started with a training host configured, serving, idle): no torch or matplotlib (the
  daemon never trains; it renders plots only when asked), and no pandas, pyarrow or
  exchange_calendars (the bar cache and its calendars load with the first DataService call,
  :mod:`ktrdrd.services.lazy_data`).
- After a DataService call, still no torch or matplotlib.

The daemon runs with the test-only ctl method of :mod:`tests.support.introspect` that lists its
``sys.modules``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from tests.integration.conftest import TEST_PLUGINS
from tests.support.introspect import MODULES_METHOD

if TYPE_CHECKING:
    from tests.integration.conftest import Daemon, DaemonFactory

NEVER = ("torch", "matplotlib")
NOT_AT_REST = ("pandas", "pyarrow", "exchange_calendars")


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
