"""IB's four historical-data pacing rules, checked at their exact boundaries on a controlled clock."""

from __future__ import annotations

import pytest

from hostd.gatewaysim.pacing import Pacer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def pacer(clock_scale: float = 1.0) -> tuple[Pacer, Clock]:
    clock = Clock()
    return Pacer(clock_scale=clock_scale, clock=clock), clock


def test_identical_request_within_15_s_is_a_violation_and_allowed_at_15_s() -> None:
    p, clock = pacer()
    assert p.admit("req", "AAPL/TRADES") is None
    clock.now += 14.999
    assert "identical" in (p.admit("req", "AAPL/TRADES") or "")
    clock.now += 0.001
    assert p.admit("req", "AAPL/TRADES") is None


def test_sixth_request_for_one_contract_and_type_within_2_s_is_a_violation() -> None:
    p, clock = pacer()
    for i in range(5):
        assert p.admit(f"req{i}", "AAPL/TRADES") is None
        clock.now += 0.1
    assert "6 or more" in (p.admit("req5", "AAPL/TRADES") or "")
    assert p.admit("req5", "AAPL/MIDPOINT") is None  # another tick type is another key
    clock.now = 1000.0 + 2.0  # the first of the five leaves the 2-s window
    assert p.admit("req6", "AAPL/TRADES") is None


def test_61st_request_in_10_minutes_is_a_violation_until_the_first_ages_out() -> None:
    p, clock = pacer()
    for i in range(60):
        assert p.admit(f"req{i}", f"contract{i}") is None, i
        p.close()  # answered: the open-requests rule stays out of the way
        clock.now += 1.0
    assert "more than 60" in (p.admit("req60", "contract60") or "")
    clock.now = 1000.0 + 600.0  # the first request is now 10 minutes old
    assert p.admit("req60", "contract60") is None
    assert p.admit("req61", "contract61") is not None


def test_51st_open_request_is_a_violation_and_closing_one_frees_a_place() -> None:
    p, _clock = pacer()
    for i in range(50):
        assert p.admit(f"req{i}", f"contract{i}") is None
    assert "simultaneous" in (p.admit("req50", "contract50") or "")
    p.close()
    assert p.open == 49
    assert p.admit("req50", "contract50") is None


def test_rejected_requests_do_not_count() -> None:
    p, clock = pacer()
    assert p.admit("req", "k") is None
    for _ in range(10):
        assert p.admit("req", "k") is not None  # identical: rejected, not recorded
    clock.now += 15
    assert p.admit("req", "k") is None
    assert p.open == 2


def test_clock_scale_divides_every_window() -> None:
    p, clock = pacer(clock_scale=4)  # 15 s → 3.75 s; 2 s → 0.5 s
    assert p.admit("req", "k") is None
    clock.now += 3.5
    assert p.admit("req", "k") is not None
    clock.now += 0.25
    assert p.admit("req", "k") is None


def test_clock_scale_must_be_positive() -> None:
    with pytest.raises(ValueError, match="clock_scale must be > 0"):
        Pacer(clock_scale=0)
