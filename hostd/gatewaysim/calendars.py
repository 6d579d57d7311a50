"""When each asset class trades: sessions as UTC epoch-second intervals, from maintained calendars.

- **US equities** follow the NYSE calendar of ``exchange-calendars`` (``XNYS``: holidays, early closes).
  Regular trading hours (RTH) are the calendar's open–close (09:30–16:00 New York, 13:00 on early
  closes). Extended hours (ETH, ``useRTH=0``) run from 04:00 New York on the session's date until four
  hours after the regular close (20:00, or 17:00 on an early close), as IB's extended session does.
- **Forex** trades 24×5: the session labelled with weekday D runs from 17:00 New York on the day
  before D to 17:00 New York on D (Sunday 17:00 opens Monday's session); nothing from Friday 17:00 to
  Sunday 17:00. RTH and ETH are the same.
- **Crypto** trades 24×7: the session labelled D is the UTC day D.

A session is labelled by its date as an int ``YYYYMMDD``; IB dates daily bars with that label.
"""

from __future__ import annotations

import abc
import warnings
from dataclasses import dataclass
from enum import StrEnum
from functools import cached_property

import numpy as np
import pandas as pd

DAY_S = 86400
#: The New York calendar covers sessions from this date (bars before it do not exist).
FIRST_SESSION = "1990-01-02"


class AssetClass(StrEnum):
    STOCK = "stock"
    FOREX = "forex"
    CRYPTO = "crypto"


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
    """UTC epoch seconds of wall-clock ``seconds_into_day`` on each local day (days since the epoch)."""
    wall = pd.DatetimeIndex((days * DAY_S + seconds_into_day).astype("datetime64[s]"))
    return np.asarray(wall.tz_localize(time_zone).tz_convert("UTC").as_unit("s").asi8, dtype=np.int64)


def _epoch_s(column: pd.Series) -> np.ndarray:
    """A tz-aware datetime column → UTC epoch seconds."""
    return np.asarray(pd.DatetimeIndex(column).as_unit("s").asi8, dtype=np.int64)


class Calendar(abc.ABC):
    """One asset class's sessions. ``sessions(start_s, end_s, rth)``: those that overlap ``[start, end)``."""

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


class NewYorkStocks(Calendar):
    """US equities on the NYSE calendar (see the module docstring for RTH and ETH)."""

    time_zone = "America/New_York"

    @cached_property
    def _table(self) -> dict[str, np.ndarray]:
        import exchange_calendars

        with warnings.catch_warnings():
            # exchange-calendars 4.13 reads Series.values, which pandas ≥ 3.1 flags as deprecated.
            warnings.filterwarnings("ignore", message="Series.values returning an ndarray")
            schedule = exchange_calendars.get_calendar("XNYS", start=FIRST_SESSION).schedule
        days = schedule.index.to_numpy().astype("datetime64[D]").astype(np.int64)
        rth_open = _epoch_s(schedule["open"])
        rth_close = _epoch_s(schedule["close"])
        return {
            "label": day_labels(days),
            "rth_open": rth_open,
            "rth_close": rth_close,
            "eth_open": _local_wall_to_utc(days, 4 * 3600, self.time_zone),
            "eth_close": rth_close + 4 * 3600,
        }

    def load(self) -> None:
        """Build the session table now (about a second) instead of on the first request."""
        _ = self._table

    def sessions(self, start_s: int, end_s: int, rth: bool) -> Sessions:
        table = self._table
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


def calendar_for(asset_class: AssetClass) -> Calendar:
    """The (process-wide, shared) calendar of ``asset_class``."""
    return _CALENDARS[asset_class]


_CALENDARS: dict[AssetClass, Calendar] = {
    AssetClass.STOCK: NewYorkStocks(),
    AssetClass.FOREX: Forex(),
    AssetClass.CRYPTO: Crypto(),
}


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


def hours_text(sessions: Sessions, time_zone: str) -> str:
    """IB's ``tradingHours``/``liquidHours`` text: ``YYYYMMDD:HHMM-YYYYMMDD:HHMM;…`` in ``time_zone``."""

    def wall(epoch_s: np.ndarray) -> pd.Index:
        return pd.to_datetime(epoch_s, unit="s", utc=True).tz_convert(time_zone).strftime("%Y%m%d:%H%M")

    opens, closes = wall(sessions.open_s), wall(sessions.close_s)
    return ";".join(f"{start}-{stop}" for start, stop in zip(opens, closes, strict=True))
