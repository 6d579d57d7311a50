"""The user's file (bytes the client streamed) → validated :class:`~ktrdr.research.bars.Bars`.

**CSV** (the layouts are listed with examples in docs/data.md): a header line, then one bar per
line; or, when the first line's first field starts with a digit, no header and the columns by
position (time, open, high, low, close, optional volume, anything after ignored; a second field
that is a time of day, ``09:30``, joins the first: MetaTrader's history export). The separator is
the one of ``, ; tab |`` the first line holds most of (a comma on a tie). A UTF-8 byte-order mark,
CRLF line ends and empty lines at the end are accepted; an empty line before the last bar is not.
Column names match ignoring case, ``<>`` and everything but letters and digits (``<TICKVOL>`` →
``tickvol``, ``Gmt time`` → ``gmttime``). The time is the column :data:`TIME_COLUMNS` names first,
or ``date`` and ``time`` together when both exist, or else an unnamed first column (the
predecessor's layout, a pandas index). ``open high low close`` are required; the volume is the first
of :data:`VOLUME_COLUMNS` that holds a nonzero value (else the last of them found; none: 0); other
columns are ignored.

**Times**: epoch numbers whose unit follows their size (s, ms, µs or ns; UTC), or text (:data:`_ISO`):
a date ``YYYY-MM-DD`` (``-`` ``.`` or ``/`` between the parts, or ``YYYYMMDD``) or ``DD.MM.YYYY``,
optionally a time after ``T`` or spaces, optionally an offset (``Z``, ``±HH[:MM]``, ``UTC``/``GMT``
with or without one) or an IANA zone name (``US/Eastern``). Text without either is wall time in the
import's ``timezone`` (an IANA name; default UTC). Daily and weekly bars whose time is midnight in
the file's own reading (``2023-01-03``, ``2023-01-03 00:00:00-05:00``) are dates: the session of
that date, whatever the offset (:func:`ktrdrd.data.calendars.restamp`).

**Parquet**: the same column names; the time column may be a timestamp or date type (naive = wall
time in ``timezone``), an integer epoch or text as above; pandas' ``__index_level_0__`` counts as an
unnamed index.

Read with pyarrow (pyarrow.csv, pyarrow.compute and NumPy; no pandas, which would cost the daemon
~40 MiB). Every problem raises :class:`~ktrdr.research.bars.BarsError` naming the file, the 1-based
CSV line (the header, when there is one, is line 1) or Parquet row, and what is wrong: a missing
column, an unparseable time or number, an unknown zone, NaN, a line with more or fewer fields than
the first, unsorted or duplicate times, high < low, negative volume, a daily bar dated a day without
a session or stamped at neither a date nor its session's open. Named fixes (:mod:`ktrdrd.data.repair`)
run before the checks, when asked for. Blocking: call from a thread.
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.parquet as pq

from ktrdr.calendars import DAY_NS
from ktrdr.research.bars import FIELDS, Bars, BarsError
from ktrdrd.data import calendars, repair

#: Time column names (as matched: lower case, letters and digits only), first found wins.
TIME_COLUMNS = ("timestamp", "datetime", "date", "time", "opentime", "gmttime", "localtime")
#: Volume column names, in order of preference (MetaTrader writes ``<VOL>``, real volume and often
#: all zero for forex, beside ``<TICKVOL>``).
VOLUME_COLUMNS = ("volume", "vol", "tickvol")
PRICES = FIELDS[:4]
_SEPARATORS = (",", ";", "\t", "|")
_BOM = b"\xef\xbb\xbf"
#: What a file that is not CSV text starts with, and what to do about it.
_NOT_CSV = (
    (b"PK\x03\x04", "a ZIP archive (Binance and Dukascopy ship CSV zipped): unzip it and import the CSV"),
    (b"\x1f\x8b", "a gzip file: decompress it and import the CSV"),
    (b"PAR1", "a Parquet file: import it with --format parquet"),
)
# Epoch numbers below these magnitudes are seconds, milliseconds, microseconds; else nanoseconds.
_EPOCH_UNITS = ((10**11, 10**9), (10**14, 10**6), (10**17, 10**3))
# Times as files write them: a date (YYYY-M-D with - . or / between the parts, YYYYMMDD, YYYY-MM,
# YYYY; or DD.MM.YYYY), optionally a time after T or spaces (H or HH, H:MM, H:MM:SS, any fraction
# of a second; or HHMMSS), optionally an offset (Z, UTC, GMT, ±HH, ±HHMM, ±HH:MM, UTC±HH…; spaces
# before it allowed) or an IANA zone name with a slash (US/Eastern). Neither: the import's zone.
_ISO = (
    r"^(?:(?P<year>\d{4})(?:[-./](?P<month>\d{1,2})(?:[-./](?P<day>\d{1,2}))?|(?P<bmonth>\d{2})(?P<bday>\d{2}))?"
    r"|(?P<eday>\d{1,2})\.(?P<emonth>\d{1,2})\.(?P<eyear>\d{4}))"
    r"(?:(?:T| +)(?P<hour>\d{1,2})(?::?(?P<minute>\d{2})(?::?(?P<second>\d{2})(?:\.(?P<fraction>\d+))?)?)?)?"
    r" *(?:(?P<utc>Z|UTC|GMT)|(?:UTC|GMT)?(?P<sign>[+-])(?P<off_hour>\d{2})(?::?(?P<off_minute>\d{2}))?"
    r"|(?P<zone>[A-Za-z][A-Za-z_]*(?:/[A-Za-z0-9_+-]+)+))?$"
)
_NUMBER = r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$"
_TIME_OF_DAY = re.compile(r"^\d{1,2}:\d{2}(?::\d{2})?$")


def parse(
    data: bytes | bytearray,
    fmt: str,
    symbol: str,
    timeframe: str,
    name: str,
    fixes: list[str] | None = None,
    calendar: str | None = None,
    timezone: str | None = None,
) -> Parsed:
    """Validated bars from a whole file's bytes (``fmt``: ``csv`` or ``parquet``), with the named
    ``fixes`` (:func:`ktrdrd.data.repair.resolve`) applied before validation (see :class:`Parsed`). Times without an offset are wall times in ``timezone`` (an IANA name; None:
    UTC). With a ``calendar``, daily and weekly bars given as dates are stamped as the cache stamps
    them (:func:`ktrdrd.data.calendars.restamp`). Errors name the file's own rows."""
    zone = _zone(timezone) if timezone else None
    table, row = _parquet_table(data, name) if fmt == "parquet" else _csv_table(data, name)
    stamps, rows = _rows(table, name, row, zone)
    if calendar is not None and timeframe in ("1d", "1w"):
        dated = stamps.wall % DAY_NS == 0
        rows.time = np.where(dated, stamps.wall, stamps.utc)
        try:
            rows.time = calendars.restamp(rows.time, calendar, timeframe, dated)
        except calendars.Undated as exc:
            raise BarsError(f"{name}: {row(exc.index)}: {exc}") from None
    naive_as_utc = 0
    if zone is None and stamps.naive is not None:  # read as UTC (a daily bar's date is a date)
        naive = stamps.naive & (stamps.wall % DAY_NS != 0) if timeframe in ("1d", "1w") else stamps.naive
        naive_as_utc = int(np.count_nonzero(naive))
    rows, fixed = repair.apply(fixes or [], rows, row)

    def original_row(i: int) -> str:
        return row(int(rows.index[i]))

    bars = Bars.from_arrays(symbol, timeframe, *rows.columns(), source=name, row_label=original_row)
    return Parsed(bars, fixed, naive_as_utc)


class Parsed(NamedTuple):
    """What :func:`parse` read: the bars, what each fix did, and how many rows had a time of day
    without an offset or zone that was read as UTC because the import named no ``timezone``
    (a file in New York time imported so lands 4-5 h early: the caller says so)."""

    bars: Bars
    fixed: list[repair.Fixed]
    naive_as_utc: int


@dataclass(frozen=True)
class _Stamps:
    """Each row's time: ``utc`` (ns since the epoch) and ``wall``, the clock reading the file wrote
    (in its own offset or zone) as if it were UTC — midnight there makes a date. ``naive``: rows
    whose time had no offset or zone (wall time in the import's ``timezone``, or UTC without one)."""

    utc: np.ndarray
    wall: np.ndarray
    naive: np.ndarray | None = None  # None: every time carried an offset (or is an epoch)


def _rows(
    table: pa.Table, name: str, row: Callable[[int], str], zone: zoneinfo.ZoneInfo | None
) -> tuple[_Stamps, repair.Rows]:
    """The table's columns parsed (not yet validated as bars)."""
    found = table.column_names
    columns: dict[str, str] = {}
    for column in found:
        columns.setdefault(_key(column), column)
    times = _time_column(table, columns, name)
    missing = [f for f in PRICES if f not in columns]
    if missing:
        raise BarsError(
            f"{name}: missing column(s) {', '.join(missing)}: found {', '.join(found)}; "
            f"expected a time column ({'|'.join(TIME_COLUMNS)}), open, high, low, close and optional volume"
        )
    stamps = _times(times, name, row, zone)
    o, h, lo, c = (_numbers(table.column(columns[f]), f, name, row) for f in PRICES)
    volume = np.zeros(table.num_rows, dtype=np.float64)
    for volume_key in (key for key in VOLUME_COLUMNS if key in columns):
        volume = _numbers(table.column(columns[volume_key]), volume_key, name, row)
        if volume.any():
            break
    return stamps, repair.Rows(stamps.utc, o, h, lo, c, volume, np.arange(len(stamps.utc)))


def _key(column: str) -> str:
    """A column name as matched: lower case, letters and digits only (``<TICKVOL>`` → ``tickvol``)."""
    return re.sub(r"[^a-z0-9]", "", column.lower())


def _zone(name: str) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise BarsError(
            f"unknown time zone {name!r}; expected an IANA name such as America/New_York"
        ) from None


def _csv_table(data: bytes | bytearray, name: str) -> tuple[pa.Table, Callable[[int], str]]:
    """Every column as text, and the function naming a row by its line (blank lines are kept as
    rows of empty text while bars follow them, so line numbers stay right; trailing ones dropped)."""
    if not data.strip():
        raise BarsError(f"{name}: the file is empty; expected a header line and bars")
    for magic, what in _NOT_CSV:
        if data.startswith(magic):
            raise BarsError(f"{name}: not a CSV file but {what}")
    header_end = data.find(b"\n")
    first = bytes(data if header_end < 0 else data[:header_end]).removeprefix(_BOM).rstrip(b"\r")
    delimiter = max(_SEPARATORS, key=lambda s: (first.count(s.encode()), -_SEPARATORS.index(s)))
    parse_options = pcsv.ParseOptions(delimiter=delimiter, ignore_empty_lines=False)
    try:
        names = pcsv.read_csv(io.BytesIO(first + b"\n"), parse_options=parse_options).column_names
    except (pa.ArrowInvalid, UnicodeDecodeError) as exc:
        raise BarsError(f"{name}: not a readable CSV file: {exc}") from None
    headerless = bool(names) and names[0].strip()[:1].isdigit()
    first_line = 1 if headerless else 2
    read_options = pcsv.ReadOptions(use_threads=False)
    if headerless:
        names = _positional(names, name)
        read_options.column_names = names
    misshapen: list[pcsv.InvalidRow] = []

    def refuse(bad: pcsv.InvalidRow) -> str:
        misshapen.append(bad)
        return "error"

    parse_options.invalid_row_handler = refuse
    try:
        table = pcsv.read_csv(
            io.BytesIO(data),
            read_options=read_options,
            parse_options=parse_options,
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
            expected = "the first line's" if headerless else "the header's"
            raise BarsError(
                f"{name}: {where}{bad.actual_columns} fields, expected {bad.expected_columns} ({expected}): {bad.text!r}"
            ) from None
        raise BarsError(f"{name}: not a readable CSV file: {exc}") from None

    def line(index: int) -> str:
        return f"line {index + first_line}"

    return _without_trailing_blanks(table), line


def _positional(fields: list[str], name: str) -> list[str]:
    """Column names for a file without a header, from its first line's fields (see the module docstring)."""
    names = ["date", "time"] if len(fields) > 1 and _TIME_OF_DAY.match(fields[1].strip()) else ["time"]
    names += [*PRICES, "volume"]
    if len(fields) < len(names) - 1:
        raise BarsError(
            f"{name}: line 1: {len(fields)} fields and no header line; a file without one holds "
            f"{', '.join(names[:-1])} and optionally volume, in that order"
        )
    return (names + [f"column {i + 1}" for i in range(len(names), len(fields))])[: len(fields)]


def _without_trailing_blanks(table: pa.Table) -> pa.Table:
    """The table without the rows of empty text at its end (empty lines after the last bar)."""
    end = table.num_rows
    while end and all(table.column(i)[end - 1].as_py() == "" for i in range(table.num_columns)):
        end -= 1
    return table.slice(0, end) if end < table.num_rows else table


def _parquet_table(data: bytes | bytearray, name: str) -> tuple[pa.Table, Callable[[int], str]]:
    """The file's table (timestamp and date columns kept as they are), and the row namer."""
    try:
        table = pq.read_table(pa.BufferReader(pa.py_buffer(data)))
    except (pa.ArrowException, OSError) as exc:
        raise BarsError(f"{name}: not a readable Parquet file: {exc}") from None
    return table, _parquet_row


def _parquet_row(index: int) -> str:
    return f"row {index + 1}"


def _time_column(table: pa.Table, columns: dict[str, str], name: str) -> pa.ChunkedArray:
    if "date" in columns and "time" in columns:
        date, time = (_text(table.column(columns[c])) for c in ("date", "time"))
        return pc.binary_join_element_wise(date, time, " ")
    for candidate in TIME_COLUMNS:
        if candidate in columns:
            return table.column(columns[candidate])
    first = _key(table.column_names[0]) if table.num_columns else ""
    if first in ("", "indexlevel0") or first.startswith("unnamed"):
        return table.column(0)
    raise BarsError(
        f"{name}: missing the time column: found {', '.join(table.column_names)}; "
        f"expected one named {' or '.join(TIME_COLUMNS)} (any case), or an unnamed first column"
    )


def _text(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """The column as text (a missing value: empty text)."""
    return pc.fill_null(column.cast(pa.string()), "")


def _times(
    column: pa.ChunkedArray, name: str, row: Callable[[int], str], zone: zoneinfo.ZoneInfo | None
) -> _Stamps:
    """Each time's UTC ns and wall reading (epoch numbers, timestamp and date types, or text)."""
    kind = column.type
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        if pa.types.is_date(kind) or kind.tz is None:
            wall = _numpy(column.cast(pa.timestamp("ns")).cast(pa.int64()), np.int64)
            return _Stamps(_from_wall(wall, zone), wall, np.ones(len(wall), dtype=np.bool_))
        utc = _numpy(column.cast(pa.timestamp("ns", kind.tz)).cast(pa.int64()), np.int64)
        wall = _numpy(pc.local_timestamp(column.cast(pa.timestamp("ns", kind.tz))).cast(pa.int64()), np.int64)
        return _Stamps(utc, wall)
    if pa.types.is_integer(kind):
        utc = _epoch_ns(_numpy(column, np.int64))
        return _Stamps(utc, utc)
    text = pc.utf8_trim_whitespace(_text(column))
    if len(text) and pc.all(pc.match_substring_regex(text, r"^-?[0-9]+$")).as_py():
        utc = _epoch_ns(_numpy(text.cast(pa.int64()), np.int64))
        return _Stamps(utc, utc)
    return _text_times(text, name, row, zone)


def _text_times(
    text: pa.ChunkedArray, name: str, row: Callable[[int], str], zone: zoneinfo.ZoneInfo | None
) -> _Stamps:
    """UTC ns and wall ns of each time written as text (:data:`_ISO`); an error names the first
    row that is not one (a real date and time) or names an unknown zone."""
    parts = pc.extract_regex(text, _ISO)
    valid = ~_numpy(pc.is_null(parts), np.bool_)

    def part(field: str, default: int) -> np.ndarray:
        values = pc.struct_field(parts, field)
        return _numpy(
            pc.fill_null(pc.if_else(pc.equal(values, ""), None, values), str(default)).cast(pa.int64()),
            np.int64,
        )

    def given(field: str) -> np.ndarray:
        return ~_numpy(pc.equal(pc.fill_null(pc.struct_field(parts, field), ""), ""), np.bool_)

    european = given("eyear")
    year = np.where(european, part("eyear", 1970), part("year", 1970))
    month = np.where(
        european, part("emonth", 1), np.where(given("bmonth"), part("bmonth", 1), part("month", 1))
    )
    day = np.where(european, part("eday", 1), np.where(given("bday"), part("bday", 1), part("day", 1)))
    hour, minute, second = part("hour", 0), part("minute", 0), part("second", 0)
    fraction = pc.utf8_rpad(
        pc.utf8_slice_codeunits(pc.fill_null(pc.struct_field(parts, "fraction"), ""), 0, 9), 9, "0"
    )
    nanos = _numpy(fraction.cast(pa.int64()), np.int64)
    months = (year - 1970) * 12 + np.clip(month, 1, 12) - 1
    month_start = months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64)
    days = month_start + day - 1
    # A real date (day within its month) and time of day.
    valid &= (month >= 1) & (month <= 12) & (day >= 1)
    valid &= days.astype("datetime64[D]").astype("datetime64[M]").astype(np.int64) == months
    valid &= (hour < 24) & (minute < 60) & (second < 60)
    bad = np.flatnonzero(~valid)
    if bad.size:
        i = int(bad[0])
        raise BarsError(
            f"{name}: {row(i)}: timestamp {text[i].as_py()!r} is not an ISO-8601 time or an epoch number "
            "(expected a date YYYY-MM-DD, YYYYMMDD, YYYY.MM.DD or DD.MM.YYYY, optionally a time HH:MM[:SS] "
            "and an offset or zone)"
        )
    wall_s = days * 86400 + hour * 3600 + minute * 60 + second
    sign = np.where(_numpy(pc.equal(pc.fill_null(pc.struct_field(parts, "sign"), ""), "-"), np.bool_), -1, 1)
    offset_s = sign * (part("off_hour", 0) * 3600 + part("off_minute", 0) * 60)
    naive = ~(given("utc") | given("sign"))
    zones = pc.fill_null(pc.struct_field(parts, "zone"), "")
    named = given("zone")
    if naive.any() and zone is not None:
        plain = naive & ~named
        offset_s[plain] = _zone_offsets(wall_s[plain], zone)
    if named.any():
        for zone_name in pc.unique(pc.filter(zones, pa.array(named))).to_pylist():
            rows = named & _numpy(pc.equal(zones, zone_name), np.bool_)
            try:
                found = zoneinfo.ZoneInfo(zone_name)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise BarsError(
                    f"{name}: {row(int(np.flatnonzero(rows)[0]))}: unknown time zone {zone_name!r}"
                ) from None
            offset_s[rows] = _zone_offsets(wall_s[rows], found)
    wall = wall_s * 10**9 + nanos
    return _Stamps(wall - offset_s * 10**9, wall, naive & ~named)


def _zone_offsets(wall_s: np.ndarray, zone: zoneinfo.ZoneInfo) -> np.ndarray:
    """The UTC offset (s) of ``zone`` at each wall time (s as if UTC); one zone look-up per distinct
    hour. A wall time that occurs twice (clocks going back) takes the earlier."""
    hours, inverse = np.unique(wall_s // 3600, return_inverse=True)
    epoch = dt.datetime(1970, 1, 1)
    offsets = [zone.utcoffset(epoch + dt.timedelta(hours=int(hour))) for hour in hours.tolist()]
    seconds = np.array([0 if o is None else int(o.total_seconds()) for o in offsets], dtype=np.int64)
    return seconds[inverse.reshape(-1)]


def _from_wall(wall_ns: np.ndarray, zone: zoneinfo.ZoneInfo | None) -> np.ndarray:
    """UTC ns of wall times (ns as if UTC) read in ``zone`` (None: UTC)."""
    if zone is None or not wall_ns.size:
        return wall_ns
    return wall_ns - _zone_offsets(wall_ns // 10**9, zone) * 10**9


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
