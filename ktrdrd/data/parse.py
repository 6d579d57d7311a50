"""The user's file (bytes the client streamed) → validated :class:`~ktrdr.research.bars.Bars`.

CSV: a header line, then one bar per line. The time is the column named ``timestamp``,
``datetime``, ``date`` or ``time`` (case-insensitive, first found in that order), or ``date`` and
``time`` together when both exist, or else an unnamed first column (the predecessor's layout, a
pandas index). Times are ISO-8601 (an offset or ``Z``; none = UTC) or epoch numbers whose unit
follows their size (s, ms, µs or ns). Columns ``open high low close`` are required, ``volume`` is
optional (absent = 0). Parquet: the same column names; the time column may be a timestamp or date
type (naive = UTC), an integer epoch or ISO text. Read with pyarrow (pyarrow.csv, pyarrow.compute
and NumPy; no pandas, which would cost the daemon ~40 MiB).

Every problem raises :class:`~ktrdr.research.bars.BarsError` naming the file, the 1-based CSV line
(the header is line 1) or Parquet row, and what is wrong: a missing column, an unparseable time or
number, NaN, a CSV line with more or fewer fields than the header, unsorted or duplicate times, high < low, negative volume, a daily bar dated a day
without a session. Named fixes (:mod:`ktrdrd.data.repair`) run before the checks, when asked for.
Blocking: call from a thread.
"""

from __future__ import annotations

import io
from collections.abc import Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ktrdr.research.bars import FIELDS, Bars, BarsError
from ktrdrd.data import calendars, repair

TIME_COLUMNS = ("timestamp", "datetime", "date", "time")
PRICES = FIELDS[:4]
# Epoch numbers below these magnitudes are seconds, milliseconds, microseconds; else nanoseconds.
_EPOCH_UNITS = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3))
# ISO-8601 as files write it: a date (YYYY-M-D or YYYYMMDD, or just YYYY-MM or YYYY), optionally
# a time after T or a space (HH, HH:MM, HH:MM:SS, any fraction of a second; or HHMMSS), optionally
# an offset (Z, ±HH, ±HHMM, ±HH:MM; one space before it allowed). No offset: UTC.
_ISO = (
    r"^(?P<year>\d{4})(?:-(?P<month>\d{1,2})(?:-(?P<day>\d{1,2}))?|(?P<bmonth>\d{2})(?P<bday>\d{2}))?"
    r"(?:[T ](?P<hour>\d{2})(?::?(?P<minute>\d{2})(?::?(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?)?)?"
    r" ?(?:(?P<utc>Z)|(?P<sign>[+-])(?P<off_hour>\d{2})(?::?(?P<off_minute>\d{2}))?)?$"
)
_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"


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
        table, row = _parquet_table(data, name), _parquet_row
    else:
        table, row = _csv_table(data, name), _csv_line
    found = table.column_names
    columns = {c.strip().lower(): c for c in found}
    times = _time_column(table, columns, name)
    missing = [f for f in PRICES if f not in columns]
    if missing:
        raise BarsError(
            f"{name}: missing column(s) {', '.join(missing)}: found {', '.join(found)}; "
            f"expected a time column ({'|'.join(TIME_COLUMNS)}), open, high, low, close and optional volume"
        )
    t = _times(times, name, row)
    o, h, lo, c = (_numbers(table.column(columns[f]), f, name, row) for f in PRICES)
    volume = (
        _numbers(table.column(columns["volume"]), "volume", name, row)
        if "volume" in columns
        else np.zeros(table.num_rows, dtype=np.float64)
    )
    return repair.Rows(t, o, h, lo, c, volume, np.arange(len(t))), row


def _csv_line(index: int) -> str:
    return f"line {index + 2}"


def _parquet_row(index: int) -> str:
    return f"row {index + 1}"


def _csv_table(data: bytes | bytearray, name: str) -> pa.Table:
    """Every column as text (blank lines kept as rows of empty text, so row i is line i + 2)."""
    if not data.strip():
        raise BarsError(f"{name}: the file is empty; expected a header line and bars")
    header_end = data.find(b"\n")
    header = bytes(data if header_end < 0 else data[:header_end])
    misshapen: list[pcsv.InvalidRow] = []

    def refuse(bad: pcsv.InvalidRow) -> str:
        misshapen.append(bad)
        return "error"

    try:
        names = pcsv.read_csv(io.BytesIO(header + b"\n")).column_names
        return pcsv.read_csv(
            io.BytesIO(data),
            read_options=pcsv.ReadOptions(use_threads=False),
            parse_options=pcsv.ParseOptions(ignore_empty_lines=False, invalid_row_handler=refuse),
            convert_options=pcsv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        if misshapen:
            bad = misshapen[0]
            where = f"line {bad.number}: " if bad.number is not None else ""
            raise BarsError(
                f"{name}: {where}{bad.actual_columns} fields, expected {bad.expected_columns} (the header's): {bad.text!r}"
            ) from None
        raise BarsError(f"{name}: not a readable CSV file: {exc}") from None


def _parquet_table(data: bytes | bytearray, name: str) -> pa.Table:
    """The file's table with timestamp and date columns as int64 UTC ns (naive = UTC)."""
    try:
        table = pq.read_table(pa.BufferReader(pa.py_buffer(data)))
    except (pa.ArrowException, OSError) as exc:
        raise BarsError(f"{name}: not a readable Parquet file: {exc}") from None
    for i, field in enumerate(table.schema):
        if pa.types.is_timestamp(field.type) or pa.types.is_date(field.type):
            zone = field.type.tz if pa.types.is_timestamp(field.type) else None
            stamps = table.column(i).cast(pa.timestamp("ns", zone)).cast(pa.int64())
            table = table.set_column(i, field.name, stamps)
    return table


def _time_column(table: pa.Table, columns: dict[str, str], name: str) -> pa.ChunkedArray:
    if "date" in columns and "time" in columns:
        date, time = (_text(table.column(columns[c])) for c in ("date", "time"))
        return pc.binary_join_element_wise(date, time, " ")
    for candidate in TIME_COLUMNS:
        if candidate in columns:
            return table.column(columns[candidate])
    first = table.column_names[0] if table.num_columns else ""
    if first.strip() == "" or first.startswith("Unnamed: 0"):
        return table.column(0)
    raise BarsError(
        f"{name}: missing the time column: found {', '.join(table.column_names)}; "
        f"expected one named {' or '.join(TIME_COLUMNS)}, or an unnamed first column"
    )


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as text (a missing value: empty text)."""
    return pc.fill_null(column.cast(pa.string()), "")


def _times(column: pa.ChunkedArray, name: str, row: Callable[[int], str]) -> np.ndarray:
    """UTC ns of each time (ISO text, epoch numbers, or ns already)."""
    if pa.types.is_integer(column.type):
        return _epoch_ns(_numpy(column, np.int64))
    text = pc.utf8_trim_whitespace(_text(column))
    if len(text) and pc.all(pc.match_substring_regex(text, r"^-?[0-9]+$")).as_py():
        return _epoch_ns(_numpy(text.cast(pa.int64()), np.int64))
    stamps, valid = _iso_ns(text)
    bad = np.flatnonzero(~valid)
    if bad.size:
        i = int(bad[0])
        raise BarsError(
            f"{name}: {row(i)}: timestamp {text[i].as_py()!r} is not an ISO-8601 time or an epoch number"
        )
    return stamps


def _iso_ns(text: pa.ChunkedArray) -> tuple[np.ndarray, np.ndarray]:
    """UTC ns of each ISO-8601 text (:data:`_ISO`), and whether it is one (a real date and time)."""
    parts = pc.extract_regex(text, _ISO)
    valid = ~_numpy(pc.is_null(parts), np.bool_)

    def part(field: str, default: int) -> np.ndarray:
        values = pc.struct_field(parts, field)
        return _numpy(
            pc.fill_null(pc.if_else(pc.equal(values, ""), None, values), str(default)).cast(pa.int64()),
            np.int64,
        )

    year = part("year", 1970)
    month = np.where(part("bmonth", 0) > 0, part("bmonth", 0), part("month", 1))
    day = np.where(part("bday", 0) > 0, part("bday", 0), part("day", 1))
    hour, minute, second = part("hour", 0), part("minute", 0), part("second", 0)
    fraction = pc.utf8_rpad(
        pc.utf8_slice_codeunits(pc.fill_null(pc.struct_field(parts, "fraction"), ""), 0, 9), 9, "0"
    )
    nanos = _numpy(fraction.cast(pa.int64()), np.int64)
    sign = np.where(_numpy(pc.equal(pc.fill_null(pc.struct_field(parts, "sign"), ""), "-"), np.bool_), -1, 1)
    offset_s = sign * (part("off_hour", 0) * 3600 + part("off_minute", 0) * 60)
    months = (year - 1970) * 12 + np.clip(month, 1, 12) - 1
    month_start = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    days = month_start + day - 1
    # A real date (day within its month) and time of day.
    valid &= (month >= 1) & (month <= 12) & (day >= 1)
    valid &= days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) == months
    valid &= (hour < 24) & (minute < 60) & (second < 60)
    seconds = days * 86400 + hour * 3600 + minute * 60 + second - offset_s
    return np.where(valid, seconds * 10**9 + nanos, 0), valid


def _epoch_ns(values: np.ndarray) -> np.ndarray:
    largest = int(np.abs(values).max()) if values.size else 0
    factor = next((f for limit, f in _EPOCH_UNITS if largest < limit), 1)
    return values.astype(np.int64) * factor


def _numbers(column: pa.ChunkedArray, field: str, name: str, row: Callable[[int], str]) -> np.ndarray:
    """The column as float64; text that is not a number (or is NaN) is an error naming the row."""
    numeric = pa.types.is_integer(column.type) or pa.types.is_floating(column.type)
    if numeric:
        numbers = _numpy(pc.fill_null(column.cast(pa.float64()), float("nan")), np.float64)
    else:
        text = pc.utf8_trim_whitespace(_text(column))
        numbers = _numpy(
            pc.if_else(pc.match_substring_regex(text, _NUMBER), text, "nan").cast(pa.float64()), np.float64
        )
    bad = np.flatnonzero(~np.isfinite(numbers))
    if bad.size:
        i = int(bad[0])
        shown = float(numbers[i]) if numeric else _text(column)[i].as_py()
        raise BarsError(f"{name}: {row(i)}: {field} is {shown!r}, not a finite number")
    return numbers


def _numpy(column: pa.ChunkedArray | pa.Array, dtype: type) -> np.ndarray:
    """A column without nulls as a NumPy array of ``dtype``."""
    return np.asarray(
        column.to_numpy() if isinstance(column, pa.ChunkedArray) else column.to_numpy(zero_copy_only=False),
        dtype=dtype,
    )
