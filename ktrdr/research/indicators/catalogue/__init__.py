"""The indicator catalogue: importing this package registers every indicator.

Modules by family: :mod:`.averages` (SMA, EMA, MACD, distance from MA), :mod:`.oscillators` (RSI,
Stochastic, Williams %R, CCI, MFI, ROC, Momentum), :mod:`.volatility` (ATR, Bollinger Bands,
Donchian, Keltner), :mod:`.trend` (ADX, Aroon, Parabolic SAR, SuperTrend, Ichimoku),
:mod:`.volume` (OBV, VWAP, volume ratio).
"""

from ktrdr.research.indicators.catalogue import averages, oscillators, trend, volatility, volume

__all__ = ["averages", "oscillators", "trend", "volatility", "volume"]
