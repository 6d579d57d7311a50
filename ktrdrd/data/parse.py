"""The user's file (bytes the client streamed) → validated :class:`~ktrdr.research.bars.Bars`.

CSV: a header line, then one bar per line. The time is the column named ``timestamp``,
``datetime``, ``date`` or ``time`` (case-insensitive, first found in that order), or ``date`` and
``time`` together when both exist, or else an unnamed first column (the predecessor's layout, a
pandas index). Times are ISO-8601 (an offset or ``Z``; none = UTC) or epoch numbers whose unit
follows their size (s, ms, µs or ns). Columns ``open high low close`` are required, ``volume`` is
optional (absent = 0). Parquet: the same column names; the time column may be a timestamp type
(naive = UTC), an integer epoch or ISO text.

Every problem raises :class:`~ktrdr.research.bars.BarsError` naming the file, the 1-based CSV line
(the header is line 1) or Parquet row, and what is wrong: a missing column, an unparseable time or
number, NaN, unsorted or duplicate times, high < low, negative volume, a daily bar dated a day
without a session. Named fixes (:mod:`ktrdrd.data.repair`) run before the checks, when asked for.
Blocking: call from a thread.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from ktrdr.research.bars import FIELDS, Bars, BarsError
from ktrdrd.data import calendars, repair

TIME_COLUMNS = ("timestamp", "datetime", "date", "time")
PRICES = FIELDS[:4]
# Epoch numbers below these magnitudes are seconds, milliseconds, microseconds; else nanoseconds.
_EPOCH_UNITS = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3))


def parse(
    data: bytes | bytearray,
    fmt: str,
    symbol: str,
    timeframe: str,
    name: str,
    fixes: list[str] | None = None,
    calendar: str | None = None,
) -> tuple[Bars, list[repair.Fixed]]:
    """Validated bars from a whole file's bytes (``fmt``: ``csv`` or ``parquet``), with the named
    ``fixes`` (:func:`ktrdrd.data.repair.resolve`) applied before validation; returns the bars and
    what each fix did. With a ``calendar``, daily and weekly bars given as dates are stamped as the
    cache stamps them (:func:`ktrdrd.data.calendars.restamp`). Errors name the file's own rows."""
    rows, row = _rows(data, fmt, name)
    if calendar is not None:
        try:
            rows.time = calendars.restamp(rows.time, calendar, timeframe)
        except calendars.Undated as exc:
            raise BarsError(f"{name}: {row(exc.index)}: {exc}") from None
    rows, fixed = repair.apply(fixes or [], rows, row)

    def original_row(i: int) -> str:
        return row(int(rows.index[i]))

    return Bars.from_arrays(symbol, timeframe, *rows.columns(), source=name, row_label=original_row), fixed


def _rows(data: bytes | bytearray, fmt: str, name: str) -> tuple[repair.Rows, Callable[[int], str]]:
    """The file's columns parsed (not yet validated as bars), and the function naming a row."""
    if fmt == "parquet":
        frame, row = _parquet_frame(data, name), _parquet_row
    else:
        frame, row = _csv_frame(data, name), _csv_line
    columns = {str(c).strip().lower(): c for c in frame.columns}
    times = _time_column(frame, columns, name)
    missing = [f for f in PRICES if f not in columns]
    if missing:
        raise BarsError(
            f"{name}: missing column(s) {', '.join(missing)}: found {', '.join(map(str, frame.columns))}; "
            f"expected a time column ({'|'.join(TIME_COLUMNS)}), open, high, low, close and optional volume"
        )
    t = _times(times, name, row)
    o, h, lo, c = (_numbers(frame[columns[f]], f, name, row) for f in PRICES)
    volume = (
        _numbers(frame[columns["volume"]], "volume", name, row)
        if "volume" in columns
        else np.zeros(len(frame), dtype=np.float64)
    )
    return repair.Rows(t, o, h, lo, c, volume, np.arange(len(t))), row


def _csv_line(index: int) -> str:
    return f"line {index + 2}"


def _parquet_row(index: int) -> str:
    return f"row {index + 1}"


def _csv_frame(data: bytes | bytearray, name: str) -> pd.DataFrame:
    if not data.strip():
        raise BarsError(f"{name}: the file is empty; expected a header line and bars")
    try:
        # Blank lines are kept as rows so that row i is always line i + 2.
        return pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (ValueError, UnicodeDecodeError) as exc:  # pandas' ParserError is a ValueError
        raise BarsError(f"{name}: not a readable CSV file: {exc}") from None


def _parquet_frame(data: bytes | bytearray, name: str) -> pd.DataFrame:
    try:
        table = pq.read_table(pa.BufferReader(pa.py_buffer(data)))
    except (pa.ArrowException, OSError) as exc:
        raise BarsError(f"{name}: not a readable Parquet file: {exc}") from None
    frame = table.to_pandas()
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype) or frame[column].dtype.kind == "M":
            stamps = pd.DatetimeIndex(frame[column])
            stamps = stamps.tz_localize("UTC") if stamps.tz is None else stamps.tz_convert("UTC")
            frame[column] = stamps.as_unit("ns").asi8
    return frame


def _time_column(frame: pd.DataFrame, columns: dict[str, object], name: str) -> pd.Series:
    if "date" in columns and "time" in columns:
        return frame[columns["date"]].astype(str) + " " + frame[columns["time"]].astype(str)
    for candidate in TIME_COLUMNS:
        if candidate in columns:
            return frame[columns[candidate]]
    first = str(frame.columns[0]) if len(frame.columns) else ""
    if first.strip() == "" or first.startswith("Unnamed: 0"):
        return frame[frame.columns[0]]
    raise BarsError(
        f"{name}: missing the time column: found {', '.join(map(str, frame.columns))}; "
        f"expected one named {' or '.join(TIME_COLUMNS)}, or an unnamed first column"
    )


def _times(column: pd.Series, name: str, row: Callable[[int], str]) -> np.ndarray:
    """UTC ns of each time (ISO text, epoch numbers, or ns already)."""
    if column.dtype.kind in "iu":
        return _epoch_ns(column.to_numpy(dtype=np.int64))
    text = column.astype(str).str.strip()
    if len(text) and text.str.fullmatch(r"-?[0-9]+").all():
        return _epoch_ns(text.astype(np.int64).to_numpy())
    parsed = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        i = int(bad[0])
        raise BarsError(
            f"{name}: {row(i)}: timestamp {text.iloc[i]!r} is not an ISO-8601 time or an epoch number"
        )
    return pd.DatetimeIndex(parsed).as_unit("ns").asi8


def _epoch_ns(values: np.ndarray) -> np.ndarray:
    largest = int(np.abs(values).max()) if values.size else 0
    factor = next((f for limit, f in _EPOCH_UNITS if largest < limit), 1)
    return values.astype(np.int64) * factor


def _numbers(column: pd.Series, field: str, name: str, row: Callable[[int], str]) -> np.ndarray:
    """The column as float64; text that is not a number (or is NaN) is an error naming the row."""
    if column.dtype.kind in "iuf":
        numbers = column.to_numpy(dtype=np.float64)
    else:
        numbers = pd.to_numeric(column.astype(str).str.strip(), errors="coerce").to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        i = int(bad[0])
        raise BarsError(f"{name}: {row(i)}: {field} is {column.iloc[i]!r}, not a finite number")
    return numbers
