"""Exponential back-off between retries: reconnecting to a host, restarting a local one.

``delay = Backoff(initial_s=0.5, maximum_s=30)``; ``delay.next()`` gives 0.5, 1, 2, 4 … seconds,
never more than ``maximum_s``; ``delay.reset()`` after a success starts again from ``initial_s``.
No jitter: each daemon has one link per host, so there is no herd to spread.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays in seconds that double (``factor``) from ``initial_s`` up to ``maximum_s``."""

    initial_s: float
    maximum_s: float
    factor: float = 2.0
    _next_s: float = field(init=False)

    def __post_init__(self) -> None:
        if not 0 < self.initial_s <= self.maximum_s or self.factor < 1:
            raise ValueError(f"bad back-off: {self.initial_s} .. {self.maximum_s} s, factor {self.factor}")
        self._next_s = self.initial_s

    def next(self) -> float:
        """The delay to wait now; the following one is ``factor`` times longer (capped)."""
        delay = self._next_s
        self._next_s = min(delay * self.factor, self.maximum_s)
        return delay

    def reset(self) -> None:
        self._next_s = self.initial_s
