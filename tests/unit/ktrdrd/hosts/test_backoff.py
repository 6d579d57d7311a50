"""ktrdrd.hosts.backoff: doubling delays, capped, reset after a success."""

from __future__ import annotations

import pytest

from ktrdrd.hosts.backoff import Backoff


def test_delays_double_up_to_the_cap_and_reset_starts_over() -> None:
    delay = Backoff(initial_s=0.5, maximum_s=3.0)
    assert [delay.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    delay.reset()
    assert delay.next() == 0.5


def test_another_factor() -> None:
    delay = Backoff(initial_s=1.0, maximum_s=100.0, factor=3.0)
    assert [delay.next() for _ in range(4)] == [1.0, 3.0, 9.0, 27.0]


@pytest.mark.parametrize(
    ("initial", "maximum", "factor"), [(0.0, 1.0, 2.0), (2.0, 1.0, 2.0), (1.0, 2.0, 0.5)]
)
def test_bad_settings_are_refused(initial: float, maximum: float, factor: float) -> None:
    with pytest.raises(ValueError, match="bad back-off"):
        Backoff(initial, maximum, factor)
