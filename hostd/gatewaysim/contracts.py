"""Which contracts the simulator knows, and their contract details.

A request's contract resolves to an :class:`Instrument` or to nothing (the session answers error 200).
The asset class comes from the contract's ``secType`` (``STK`` stock, ``CASH`` forex, ``CRYPTO``
crypto), or, when the request leaves it empty, from the symbol's declared class (``--asset-class
SYMBOL=CLASS``; undeclared symbols are stocks). A request whose ``secType`` contradicts a
declaration, names another security type, or another currency or exchange than the class trades on,
is unknown.

The *series* name is what bar files are named by (``{SERIES}_{TF}.csv``): the symbol for stocks,
symbol + currency for forex and crypto (``EURUSD``, ``BTCUSD``). conIds are a stable hash of the
security type and series, so they survive restarts; a request that gives only a conId is resolved
through the instruments seen so far.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass

from hostd.gatewaysim.generator import PathParams
from hostd.gatewaysim.wire import Out, WireContract
from ktrdr.calendars import AssetClass


@dataclass(frozen=True)
class ClassTraits:
    """What every instrument of one asset class shares on the wire and in the generator."""

    sec_type: str
    exchange: str
    exchanges: frozenset[str]  # accepted in requests ("" means the default exchange)
    primary_exchange: str
    time_zone_id: str
    min_tick: float
    path: PathParams
    whats_to_show: frozenset[str]


TRAITS: dict[AssetClass, ClassTraits] = {
    AssetClass.STOCK: ClassTraits(
        "STK",
        "SMART",
        frozenset({"", "SMART", "NYSE", "NASDAQ", "ISLAND", "ARCA"}),
        "NASDAQ",
        "US/Eastern",
        0.01,
        PathParams(s0=100.0, sigma_day=0.015, volume_log_mean=6.0, tick=0.01),
        frozenset({"TRADES", "MIDPOINT"}),
    ),
    AssetClass.FOREX: ClassTraits(
        "CASH",
        "IDEALPRO",
        frozenset({"", "IDEALPRO"}),
        "",
        "US/Eastern",
        0.00005,
        PathParams(s0=1.1, sigma_day=0.005, volume_log_mean=10.0, tick=0.00005),
        frozenset({"MIDPOINT"}),
    ),
    AssetClass.CRYPTO: ClassTraits(
        "CRYPTO",
        "PAXOS",
        frozenset({"", "PAXOS", "ZEROHASH"}),
        "",
        "UTC",
        0.01,
        PathParams(s0=30000.0, sigma_day=0.03, volume_log_mean=1.0, tick=0.01),
        frozenset({"TRADES", "MIDPOINT"}),
    ),
}
_BY_SEC_TYPE = {traits.sec_type: asset_class for asset_class, traits in TRAITS.items()}


@dataclass(frozen=True)
class Instrument:
    """A resolved contract."""

    asset_class: AssetClass
    symbol: str
    currency: str
    exchange: str
    con_id: int

    @property
    def traits(self) -> ClassTraits:
        return TRAITS[self.asset_class]

    @property
    def series(self) -> str:
        """The name bar files and the generator use: ``AAPL``, ``EURUSD``, ``BTCUSD``."""
        return self.symbol if self.asset_class is AssetClass.STOCK else self.symbol + self.currency

    @property
    def local_symbol(self) -> str:
        return self.symbol if self.asset_class is AssetClass.STOCK else f"{self.symbol}.{self.currency}"


def con_id_for(sec_type: str, series: str) -> int:
    """A stable positive conId for (secType, series)."""
    return zlib.crc32(f"{sec_type}:{series}".encode()) % 2_000_000_000 + 1


class Directory:
    """Resolves wire contracts. ``is_known(series)`` says whether a series exists (files or generator);
    ``declared`` maps symbols to their asset class."""

    def __init__(self, is_known: Callable[[str], bool], declared: dict[str, AssetClass]) -> None:
        self._is_known = is_known
        self._declared = declared
        self._by_con_id: dict[int, Instrument] = {}

    def resolve(self, contract: WireContract) -> Instrument | None:
        """The instrument ``contract`` names, or None when the simulator has no such security."""
        symbol = contract.symbol.upper()
        if not symbol:
            return self._by_con_id.get(contract.con_id) if contract.con_id else None
        declared = self._declared.get(symbol)
        if contract.sec_type:
            asset_class = _BY_SEC_TYPE.get(contract.sec_type.upper())
            if asset_class is None or (declared is not None and declared is not asset_class):
                return None
        else:
            asset_class = declared or AssetClass.STOCK
        traits = TRAITS[asset_class]
        exchange = contract.exchange.upper()
        currency = contract.currency.upper() or "USD"
        if exchange not in traits.exchanges:
            return None
        if asset_class is not AssetClass.FOREX and currency != "USD":
            return None
        series = symbol if asset_class is AssetClass.STOCK else symbol + currency
        con_id = con_id_for(traits.sec_type, series)
        if (contract.con_id and contract.con_id != con_id) or not self._is_known(series):
            return None
        instrument = Instrument(asset_class, symbol, currency, exchange or traits.exchange, con_id)
        self._by_con_id[con_id] = instrument
        return instrument


def contract_data_fields(
    req_id: int, instrument: Instrument, trading_hours: str, liquid_hours: str
) -> tuple[object, ...]:
    """CONTRACT_DATA (msg 10) in the server-version ≥ 164 layout (no message version field)."""
    traits = instrument.traits
    long_name = {
        AssetClass.STOCK: f"{instrument.symbol} (simulated)",
        AssetClass.FOREX: f"{instrument.symbol}.{instrument.currency} (simulated)",
        AssetClass.CRYPTO: f"{instrument.symbol} (simulated)",
    }[instrument.asset_class]
    market_rule = "26" if instrument.asset_class is AssetClass.STOCK else "239"
    return (
        Out.CONTRACT_DATA,
        req_id,
        instrument.symbol,
        traits.sec_type,
        "",  # lastTradeDate[-time[-tz]]
        0,  # strike
        "",  # right
        instrument.exchange,
        instrument.currency,
        instrument.local_symbol,
        instrument.local_symbol if instrument.asset_class is not AssetClass.STOCK else "NMS",  # marketName
        instrument.local_symbol if instrument.asset_class is not AssetClass.STOCK else "NMS",  # tradingClass
        instrument.con_id,
        traits.min_tick,
        "",  # multiplier
        "LMT,MKT",  # orderTypes
        ",".join(sorted(e for e in traits.exchanges if e)),  # validExchanges
        1,  # priceMagnifier
        0,  # underConId
        long_name,
        traits.primary_exchange,
        "",  # contractMonth
        "",  # industry
        "",  # category
        "",  # subcategory
        traits.time_zone_id,
        trading_hours,
        liquid_hours,
        "",  # evRule
        "",  # evMultiplier
        0,  # numSecIds
        1,  # aggGroup
        "",  # underSymbol
        "",  # underSecType
        market_rule,  # marketRuleIds
        "",  # realExpirationDate
        "COMMON" if instrument.asset_class is AssetClass.STOCK else "",  # stockType
        1,  # minSize
        1,  # sizeIncrement
        1,  # suggestedSizeIncrement
    )
