"""The catalog reconciled with the series files when the cache first opens, after each state a crash
between the file write and the catalog write can leave, produced on disk for real."""

from __future__ import annotations

import hashlib
import json
import signal
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ktrdrd.data import files
from tests.integration.ktrdrctl.test_data_cli import bars_frame, ctl, write_csv

DATA = "ktrdr.daemon.v1.DataService/"


def coverage(daemon, symbol: str, timeframe: str) -> dict:
    return daemon.ctl(DATA + "GetCoverage", {"series": {"symbol": symbol, "timeframe": timeframe}})[
        "coverage"
    ]


def table(frame) -> pa.Table:
    return pa.table(
        [
            pa.array(frame.index.as_unit("ns").asi8),
            *(pa.array(frame[c].to_numpy()) for c in files.COLUMNS[1:]),
        ],
        schema=files.SCHEMA,
    )


def test_reconcile_after_a_crash_between_file_and_catalog(daemon_factory, tmp_path: Path) -> None:
    daemon = daemon_factory.start()
    monday = bars_frame(24)  # EURUSD (forex) 1h: Monday 2024-03-04, every hour
    for symbol in ("EURUSD", "GONE", "BROKEN"):
        imported = ctl(daemon, "data", "import", str(write_csv(tmp_path / "a.csv", monday)),
                       "--symbol", symbol, "--timeframe", "1h")  # fmt: skip
        assert imported.returncode == 0, imported.stderr
    assert daemon.stop(signal.SIGKILL) != 0
    data = daemon.state_dir / "data"

    # The file was replaced (Monday plus Wednesday: Tuesday is a hole in an open market), the catalog was not.
    wednesday = bars_frame(24, start=pd.Timestamp("2024-03-06T00:00:00Z"), base=300.0)
    files.write_atomic(data / "EURUSD" / "1h.parquet", pa.concat_tables([table(monday), table(wednesday)]))
    new_digest = hashlib.sha256((data / "EURUSD" / "1h.parquet").read_bytes()).hexdigest()
    (data / "GONE" / "1h.parquet").unlink()  # an entry without its file
    (data / "BROKEN" / "1h.parquet").write_bytes(b"not parquet")
    orphan = data / "ORPHAN" / "1d.parquet"  # a file without an entry
    orphan.parent.mkdir()
    pq.write_table(table(monday), orphan)
    temporary = data / "EURUSD" / f".1h.parquet.x1y2{files.TEMP_SUFFIX}"
    temporary.write_bytes(b"half a write")

    daemon = daemon_factory.start()
    entry = coverage(daemon, "EURUSD", "1h")  # the first call opens the cache and reconciles it
    assert entry["digest"] == new_digest and int(entry["barCount"]) == 48
    assert entry["lastBarTime"] == "2024-03-06T23:00:00Z"
    assert entry["covered"] == [
        {"startTime": "2024-03-04T00:00:00Z", "endTime": "2024-03-05T00:00:00Z"},
        {"startTime": "2024-03-06T00:00:00Z", "endTime": "2024-03-07T00:00:00Z"},
    ]
    assert entry["source"] == "DATA_SOURCE_IMPORT"
    listed = json.loads(ctl(daemon, "data", "coverage", "--json").stdout)["series"]
    assert [s["series"]["symbol"] for s in listed] == ["EURUSD"]
    assert not temporary.exists() and not orphan.exists()
    assert orphan.with_name("1d.parquet.orphan").exists()
    assert (data / "BROKEN" / "1h.parquet.unreadable").read_bytes() == b"not parquet"
    shown = ctl(daemon, "data", "show", "EURUSD", "1h", "--tail", "1", "--format", "csv")
    assert shown.stdout.splitlines()[1].startswith("2024-03-06T23:00:00Z,")

    warnings = {
        r.get("series"): r.get("action")
        for r in daemon.log_records()
        if r.get("message", r.get("msg", "")) == "bar cache: catalog reconciled with its files"
    }
    assert warnings == {"EURUSD 1h": "rederived", "GONE 1h": "dropped", "BROKEN 1h": "unreadable",
                        "ORPHAN 1d": "orphan"}  # fmt: skip
    daemon.stop()

    # Agreeing again: a third start finds nothing to do.
    daemon = daemon_factory.start()
    assert coverage(daemon, "EURUSD", "1h")["digest"] == new_digest
    assert not [r for r in daemon.log_records() if "reconciled" in json.dumps(r)]
