"""When markets trade, from maintained trading calendars (exchange-calendars): the one calendar
module of ktrdr, used by the bar cache (known-empty intervals) and the gateway simulator (which
minutes it serves, IB's trading-hours text).

Calendars by name (:data:`CALENDARS`):

- ``XNYS``: US equities on the NYSE calendar of ``exchange-calendars`` (holidays, early closes).
  Regular trading hours (RTH) are the calendar's open–close (09:30–16:00 New York, 13:00 on early
  closes). Extended hours (ETH, IB's ``useRTH=0``) run from 04:00 New York on the session's date
  until four hours after the regular close (20:00, or 17:00 on an early close), as IB's extended
  session does.
- ``forex``: 24×5; the session dated weekday D runs from 17:00 New York on the day before D to
  17:00 New York on D (Sunday 17:00 opens Monday's session); closed from Friday 17:00 to Sunday
  17:00 New York. RTH and ETH are the same.
- ``crypto``: 24×7; the session dated D is the UTC day D.

A session is dated (labelled) by an int ``YYYYMMDD``: its date in the market's time zone, the day
it closes on (a forex session opening Sunday evening is Monday's), as IB dates daily bars.

Two views of the same sessions: :class:`Calendar` objects work in UTC epoch **seconds** with labels
(the simulator's unit, as the TWS protocol's); :func:`sessions` and :func:`bar_opens` answer in UTC
**ns** (the cache's unit). :func:`guess` picks a calendar from a symbol; it is a guess (callers
let users override it): six letters made of two ISO currency codes → ``forex``; a crypto ticker
(``BTC``, ``ETH``, …, alone or followed by a quote currency) → ``crypto``; anything else → ``XNYS``.

:func:`bars_per_year` is what annualised figures (backtest Sharpe, volatility, returns) divide by.

Where the NYSE sessions come from: ``exchange-calendars`` is the only source of holidays and early
closes, but only :func:`build_table` imports it (with pandas); everything else works on the
:class:`SessionTable` it returns (NumPy arrays). A process that must stay light (ktrdrd) installs a
table source with :func:`use_table_source` that reads the table from a file another process
exported (``python -m ktrdr.calendars export XNYS PATH``; :func:`write_table`, :func:`read_table`).
Forex and crypto need no table (the 17:00 New York roll comes from ``zoneinfo``).
"""

from __future__ import annotations

import abc
import argparse
import contextlib
import datetime as dt
import fcntl
import os
import re
import threading
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np

CALENDARS = ("XNYS", "forex", "crypto")
DAY_S = 86400
DAY_NS = DAY_S * 10**9
#: The NYSE schedule is loaded from this date on (earlier bars get no closures).
FIRST_SESSION = "1990-01-02"
#: The calendars whose sessions come from ``exchange-calendars`` (as a :class:`SessionTable`).
EXCHANGE_CALENDARS = ("XNYS",)
_CURRENCIES = frozenset(
    ["USD", "EUR", "JPY", "GBP", "CHF", "AUD", "NZD", "CAD", "SEK", "NOK", "DKK", "HKD", "SGD", "CNH",
     "MXN", "ZAR", "TRY", "PLN", "CZK", "HUF", "ILS", "KRW", "INR"]
)  # fmt: skip
_CRYPTO = re.compile(r"^(BTC|ETH|LTC|BCH|SOL|XRP|ADA|DOGE|DOT|AVAX|LINK)([-._/]?(USD|USDT|USDC|EUR))?$")


class AssetClass(StrEnum):
    """What a contract is; each trades on one calendar (:data:`ASSET_CLASS_CALENDARS`)."""

    STOCK = "stock"
    FOREX = "forex"
    CRYPTO = "crypto"


ASSET_CLASS_CALENDARS = {AssetClass.STOCK: "XNYS", AssetClass.FOREX: "forex", AssetClass.CRYPTO: "crypto"}


def guess(symbol: str) -> str:
    """The calendar the symbol most likely trades on (see the module docstring)."""
    upper = symbol.upper()
    if len(upper) == 6 and upper[:3] in _CURRENCIES and upper[3:] in _CURRENCIES:
        return "forex"
    if _CRYPTO.match(upper):
        return "crypto"
    return "XNYS"


#: Sessions (trading days) per year: NYSE ~252 (its 2000–2024 average is 251.6), forex 5 × 52
#: = 260 (24 h sessions, holidays ignored: the interbank market trades through most of them),
#: crypto 365.
SESSIONS_PER_YEAR = {"XNYS": 252.0, "forex": 260.0, "crypto": 365.0}
#: Hours of one session: the NYSE regular session 09:30–16:00; forex and crypto trade 24 h.
SESSION_HOURS = {"XNYS": 6.5, "forex": 24.0, "crypto": 24.0}


def bars_per_year(calendar: str, timeframe: str) -> float:
    """Bars of ``timeframe`` in a year of ``calendar``: sessions per year × bars per session, where
    an intraday session holds ``ceil(session length / bar length)`` bars (a 6.5 h NYSE session has
    7 bars of 1h, the last one half an hour long); daily bars: one per session; weekly bars:
    365.25 / 7. Raises KeyError for an unknown calendar (``TimeframeError`` for a bad timeframe)."""
    from ktrdr import timeframes

    sessions_per_year = SESSIONS_PER_YEAR[calendar]
    bar_ns = timeframes.parse(timeframe).ns
    if bar_ns >= 7 * DAY_NS:
        return 365.25 * DAY_NS / bar_ns
    if bar_ns >= DAY_NS:
        return sessions_per_year * DAY_NS / bar_ns
    session_ns = round(SESSION_HOURS[calendar] * 3600 * 10**9)
    return sessions_per_year * -(-session_ns // bar_ns)


@dataclass(frozen=True)
class Sessions:
    """Sessions in time order: ``label`` (int YYYYMMDD), ``open_s`` and ``close_s`` (UTC epoch s)."""

    label: np.ndarray
    open_s: np.ndarray
    close_s: np.ndarray

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def take(self, index: np.ndarray | slice) -> Sessions:
        return Sessions(self.label[index], self.open_s[index], self.close_s[index])


def day_labels(days: np.ndarray) -> np.ndarray:
    """Days since the epoch → int YYYYMMDD."""
    dates = days.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]").astype(np.int64) + 1970
    months = dates.astype("datetime64[M]").astype(np.int64) % 12 + 1
    mday = (dates - dates.astype("datetime64[M]")).astype(np.int64) + 1
    return years * 10000 + months * 100 + mday


def _local_wall_to_utc(days: np.ndarray, seconds_into_day: int, time_zone: str) -> np.ndarray:
    """UTC epoch seconds of wall-clock ``seconds_into_day`` on each local day (days since the epoch).
    The wall time must exist on every day (not inside a daylight-saving gap)."""
    days = np.asarray(days, dtype=np.int64)
    offsets = np.fromiter(
        (_utc_offset_s(time_zone, day, seconds_into_day) for day in days.tolist()), np.int64, days.size
    )
    return days * DAY_S + seconds_into_day - offsets


@lru_cache(maxsize=1 << 16)
def _utc_offset_s(time_zone: str, day: int, seconds_into_day: int) -> int:
    wall = dt.datetime(1970, 1, 1) + dt.timedelta(days=day, seconds=seconds_into_day)
    offset = ZoneInfo(time_zone).utcoffset(wall)
    return 0 if offset is None else int(offset.total_seconds())


@dataclass(frozen=True)
class SessionTable:
    """An exchange calendar's regular sessions in time order, as ``exchange-calendars`` gives them:
    ``label`` (int YYYYMMDD), ``open_ns`` and ``close_ns`` (int64 UTC ns; early closes included).
    The calendars here have no midday breaks, so none are kept. Plain arrays: a process loads one
    from a file (:func:`read_table`) without pandas or ``exchange-calendars``."""

    label: np.ndarray
    open_ns: np.ndarray
    close_ns: np.ndarray


def table_span(today: dt.date | None = None) -> tuple[str, str]:
    """First and last day (ISO dates) of the session tables: :data:`FIRST_SESSION` to the end of
    next year (of ``today``, default the UTC date)."""
    year = (today or dt.datetime.now(dt.UTC).date()).year
    return FIRST_SESSION, f"{year + 1}-12-31"


def table_key(calendar: str, span: tuple[str, str] | None = None) -> str:
    """What a session table depends on: the calendar, the ``exchange-calendars`` version (read
    from its package metadata, not imported) and the span; a file name for a cached table."""
    from importlib import metadata

    start, end = span or table_span()
    return f"{calendar}-xcals{metadata.version('exchange_calendars')}-{start}-{end}"


def table_file(directory: Path, calendar: str) -> Path:
    """Where a directory of cached tables keeps ``calendar``'s current table (named by :func:`table_key`)."""
    return directory / f"{table_key(calendar)}.npz"


@contextlib.contextmanager
def _building(directory: Path) -> Iterator[None]:
    """Hold the directory's build lock (``flock`` on ``.build.lock``): one build at a time, so
    processes asking for the same missing table build it once and the others then read it."""
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".build.lock", "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def export_table(calendar: str, path: Path, span: tuple[str, str] | None = None) -> None:
    """Build ``calendar``'s table and write it to ``path``, unless a whole table is there already
    (another process may have built it while this one waited for the lock)."""
    with _building(path.parent):
        try:
            read_table(path)
            return
        except (FileNotFoundError, ValueError):
            pass
        write_table(build_table(calendar, span), path)


def build_table(calendar: str, span: tuple[str, str] | None = None) -> SessionTable:
    """The sessions of ``calendar`` (one of :data:`EXCHANGE_CALENDARS`) over ``span``
    (:func:`table_span` by default), from ``exchange-calendars``: imports it and pandas (~50 MiB,
    ~1 s), so a process that must stay light reads a table another process wrote instead."""
    import exchange_calendars
    import pandas as pd

    if calendar not in EXCHANGE_CALENDARS:
        raise KeyError(calendar)
    start, end = span or table_span()
    with warnings.catch_warnings():
        # exchange-calendars reads Series.values, which recent pandas flags as deprecated.
        warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
        schedule = exchange_calendars.get_calendar(calendar, start=start, end=end).schedule
    days = schedule.index.to_numpy().astype("datetime64[D]").astype(np.int64)
    open_ns, close_ns = (
        np.asarray(pd.DatetimeIndex(schedule[column]).as_unit("ns").asi8, dtype=np.int64)
        for column in ("open", "close")
    )
    return SessionTable(day_labels(days), open_ns, close_ns)


def write_table(table: SessionTable, path: Path) -> None:
    """Write ``table`` to ``path`` (NumPy ``.npz``) atomically: a temporary file beside it, then
    a rename, so a reader sees the whole table or none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with temporary.open("wb") as sink:
            np.savez(sink, label=table.label, open_ns=table.open_ns, close_ns=table.close_ns)
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def read_table(path: Path) -> SessionTable:
    """The table :func:`write_table` wrote. ``FileNotFoundError`` when there is none; ``ValueError``
    naming the file when it is not a session table (truncated, other arrays, unsorted)."""
    try:
        with np.load(path, allow_pickle=False) as stored:
            table = SessionTable(
                *(np.asarray(stored[k], dtype=np.int64) for k in ("label", "open_ns", "close_ns"))
            )
    except FileNotFoundError:
        raise
    except (OSError, KeyError, ValueError) as exc:
        raise ValueError(f"{path}: not a session table: {exc}") from None
    sizes = {table.label.shape, table.open_ns.shape, table.close_ns.shape}
    if len(sizes) != 1 or table.label.ndim != 1 or np.any(np.diff(table.open_ns) <= 0):
        raise ValueError(f"{path}: not a session table: expected three equal-length arrays in time order")
    return table


#: Where :class:`ExchangeCalendar` objects get their tables: calendar name → table.
TableSource = Callable[[str], SessionTable]
_table_source: TableSource = build_table


def use_table_source(source: TableSource | None) -> None:
    """Make ``source`` give this process's exchange session tables from now on (None: build them
    here with ``exchange-calendars``, the default); tables already loaded are dropped."""
    global _table_source
    _table_source = source or build_table
    for calendar in _BY_NAME.values():
        if isinstance(calendar, NewYorkStocks):
            calendar.forget()


class Calendar(abc.ABC):
    """One market's sessions. ``sessions(start_s, end_s, rth)``: those that overlap ``[start, end)``."""

    #: IANA zone IB reports for the contract (``timeZoneId``) and in which intraday bars are aligned.
    time_zone = "UTC"

    @abc.abstractmethod
    def sessions(self, start_s: int, end_s: int, rth: bool) -> Sessions:
        """The sessions (regular hours when ``rth``) that overlap ``[start_s, end_s)``, epoch seconds."""

    def sessions_back(self, end_s: int, count: int, rth: bool) -> Sessions:
        """The last ``count`` sessions that open before ``end_s`` (fewer where the calendar starts)."""
        # 2 calendar days per session plus a long weekend always holds ``count`` sessions.
        found = self.sessions(end_s - (2 * count + 5) * DAY_S, end_s, rth)
        return found.take(slice(max(0, len(found) - count), None))

    def load(self) -> None:
        """Build the tables the calendar needs now (the NYSE's take about a second) rather than on
        the first request."""
        self.sessions(0, DAY_S, rth=True)


class NewYorkStocks(Calendar):
    """US equities on the NYSE calendar (see the module docstring for RTH and ETH)."""

    time_zone = "America/New_York"

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._loaded: dict[str, np.ndarray] | None = None

    def forget(self) -> None:
        """Drop the loaded table (the next request asks the table source again)."""
        with self._lock:
            self._loaded = None

    def _table(self) -> dict[str, np.ndarray]:
        with self._lock:
            if self._loaded is None:
                table = _table_source("XNYS")
                rth_open, rth_close = table.open_ns // 10**9, table.close_ns // 10**9
                self._loaded = {
                    "label": table.label,
                    "rth_open": rth_open,
                    "rth_close": rth_close,
                    "eth_open": _local_wall_to_utc(label_days(table.label), 4 * 3600, self.time_zone),
                    "eth_close": rth_close + 4 * 3600,
                }
            return self._loaded

    def sessions(self, start_s: int, end_s: int, rth: bool) -> Sessions:
        table = self._table()
        opens, closes = (
            (table["rth_open"], table["rth_close"]) if rth else (table["eth_open"], table["eth_close"])
        )
        lo = int(np.searchsorted(closes, start_s, "right"))
        hi = int(np.searchsorted(opens, end_s, "left"))
        return Sessions(table["label"][lo:hi], opens[lo:hi], closes[lo:hi])


class Forex(Calendar):
    """24×5: weekday sessions from 17:00 New York the day before to 17:00 New York."""

    time_zone = "America/New_York"

    def sessions(self, start_s: int, end_s: int, rth: bool) -> Sessions:
        days = np.arange(start_s // DAY_S - 1, end_s // DAY_S + 3, dtype=np.int64)
        days = days[(days + 3) % 7 < 5]  # Monday..Friday (1970-01-01 was a Thursday)
        opens = _local_wall_to_utc(days - 1, 17 * 3600, self.time_zone)
        closes = _local_wall_to_utc(days, 17 * 3600, self.time_zone)
        keep = (closes > start_s) & (opens < end_s)
        return Sessions(day_labels(days[keep]), opens[keep], closes[keep])


class Crypto(Calendar):
    """24×7: one session per UTC day."""

    time_zone = "UTC"

    def sessions(self, start_s: int, end_s: int, rth: bool) -> Sessions:
        days = np.arange(start_s // DAY_S, -(-end_s // DAY_S), dtype=np.int64)
        return Sessions(day_labels(days), days * DAY_S, (days + 1) * DAY_S)


_BY_NAME: dict[str, Calendar] = {"XNYS": NewYorkStocks(), "forex": Forex(), "crypto": Crypto()}


def named(calendar: str) -> Calendar:
    """The (process-wide, shared) calendar of that name (:data:`CALENDARS`); KeyError otherwise."""
    return _BY_NAME[calendar]


def calendar_for(asset_class: AssetClass) -> Calendar:
    """The (process-wide, shared) calendar of ``asset_class``."""
    return _BY_NAME[ASSET_CLASS_CALENDARS[asset_class]]


def trading_minutes(sessions: Sessions, start_s: int, end_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Open times (UTC epoch s) of the 1-minute bars in ``sessions`` within ``[start_s, end_s)``,
    and each minute's session label."""
    first = np.maximum(sessions.open_s, -(-start_s // 60) * 60)
    stop = np.minimum(sessions.close_s, end_s)
    counts = np.maximum(0, -(-(stop - first) // 60))
    total = int(counts.sum())
    if total == 0:
        return np.empty(0, np.int64), np.empty(0, np.int64)
    session_index = np.repeat(np.arange(len(sessions)), counts)
    offsets = np.arange(total, dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    return first[session_index] + offsets * 60, sessions.label[session_index]


def sessions(
    calendar: str, start_ns: int, end_ns: int, *, extended: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """``(opens, closes)`` (int64 UTC ns) of the sessions that overlap ``[start_ns, end_ns)``, in order;
    regular hours unless ``extended``. Raises KeyError for an unknown calendar name."""
    found = named(calendar).sessions(start_ns // 10**9, -(-end_ns // 10**9), rth=not extended)
    opens, closes = found.open_s * 10**9, found.close_s * 10**9
    keep = (closes > start_ns) & (opens < end_ns)
    return opens[keep], closes[keep]


def label_days(labels: np.ndarray) -> np.ndarray:
    """Int YYYYMMDD labels → days since the epoch (the inverse of :func:`day_labels`)."""
    labels = np.asarray(labels, dtype=np.int64)
    months = (labels // 10000 - 1970) * 12 + labels // 100 % 100 - 1
    return months.astype("datetime64[M]").astype("datetime64[D]").astype(np.int64) + labels % 100 - 1


def bar_opens(calendar: str, days: np.ndarray, timeframe_days: int) -> np.ndarray:
    """Where the cache stamps a daily (``timeframe_days`` 1) or weekly (7) bar dated ``days`` (UTC
    days since the epoch): the UTC ns open, in full trading hours (extended for US equities), of the
    session dated that day — for a weekly bar, of the first session of that day's Monday-to-Sunday
    week. -1 where there is none (a daily bar dated a holiday or a weekend)."""
    days = np.asarray(days, dtype=np.int64)
    if timeframe_days == 7:
        days = days - (days + 3) % 7  # the Monday of the week (1970-01-01 was a Thursday)
    opens = np.full(days.shape, -1, dtype=np.int64)
    if not days.size:
        return opens
    found = named(calendar).sessions(
        int(days.min() - 2) * DAY_S, int(days.max() + timeframe_days + 2) * DAY_S, False
    )
    dated = label_days(found.label)
    at = np.searchsorted(dated, days, "left")
    hit = at < len(dated)
    hit[hit] = dated[at[hit]] < days[hit] + timeframe_days
    opens[hit] = found.open_s[at[hit]] * 10**9
    return opens


def session_labels(calendar: Calendar, stamps_s: np.ndarray) -> np.ndarray:
    """The label of the session (full trading hours) each UTC epoch-second stamp falls in; the stamp's
    UTC date for one outside every session."""
    stamps_s = np.asarray(stamps_s, dtype=np.int64)
    labels = day_labels(stamps_s // DAY_S)
    if not stamps_s.size:
        return labels
    found = calendar.sessions(int(stamps_s.min()) - 2 * DAY_S, int(stamps_s.max()) + 2 * DAY_S, False)
    at = np.searchsorted(found.open_s, stamps_s, "right") - 1
    inside = at >= 0
    inside[inside] = stamps_s[inside] < found.close_s[at[inside]]
    labels[inside] = found.label[at[inside]]
    return labels


def main(argv: list[str] | None = None) -> None:
    """``python -m ktrdr.calendars export CALENDAR PATH``: build the session table of ``CALENDAR``
    (:data:`EXCHANGE_CALENDARS`) with ``exchange-calendars`` and write it to ``PATH`` (atomically;
    nothing to do when a whole table is there); ``--span START END`` (ISO dates) overrides
    :func:`table_span`. ``python -m ktrdr.calendars warm DIR``: make sure ``DIR`` holds the current
    table of every exchange calendar (:func:`table_file`), building the missing ones."""
    parser = argparse.ArgumentParser(prog="python -m ktrdr.calendars")
    commands = parser.add_subparsers(dest="command", required=True)
    export = commands.add_parser("export", help="write a calendar's session table to a file")
    export.add_argument("calendar", choices=EXCHANGE_CALENDARS)
    export.add_argument("path", type=Path)
    export.add_argument("--span", nargs=2, metavar=("START", "END"))
    warm = commands.add_parser("warm", help="build the missing current tables in a directory")
    warm.add_argument("directory", type=Path)
    args = parser.parse_args(argv)
    if args.command == "export":
        export_table(args.calendar, args.path, tuple(args.span) if args.span else None)
    else:
        for calendar in EXCHANGE_CALENDARS:
            export_table(calendar, table_file(args.directory, calendar))


if __name__ == "__main__":
    main()
