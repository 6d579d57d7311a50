"""The IB host's pacer on a hand-driven clock: each of IB's four rules holds the request exactly as
long as it must, counted from each request's answer; the clock scale compresses the windows, and a
hold (the back-off after a 162) stops everything."""

from __future__ import annotations

import asyncio

import pytest

from hostd.ib.pacer import Pacer, Slot


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def send(pacer: Pacer, identity: object, burst_key: object = "AAPL/TRADES") -> Slot:
    """Acquire a request the pacer admits now (fails if it would wait)."""
    assert pacer.wait_for(identity, burst_key) == (0.0, "")
    return asyncio.run(pacer.acquire(identity, burst_key))


def answered(pacer: Pacer, identity: object, burst_key: object = "AAPL/TRADES") -> None:
    """A request sent and answered at the current time."""
    pacer.release(send(pacer, identity, burst_key))


def test_identical_request_waits_15_seconds() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, margin_s=0.0)
    answered(pacer, "same")
    clock.now += 10
    wait, reason = pacer.wait_for("same", "AAPL/TRADES")
    assert wait == pytest.approx(5.0) and "identical" in reason
    clock.now += 5
    assert pacer.wait_for("same", "AAPL/TRADES") == (0.0, "")


def test_sixth_request_for_one_contract_within_2_seconds_waits() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, margin_s=0.0)
    for i in range(5):
        answered(pacer, i)
        clock.now += 0.1
    wait, reason = pacer.wait_for(99, "AAPL/TRADES")
    assert wait == pytest.approx(1.5) and "within 2 s" in reason
    assert pacer.wait_for(99, "MSFT/TRADES") == (0.0, "")  # another contract is not held


def test_sixty_first_request_in_10_minutes_waits_for_the_oldest_to_leave() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, margin_s=0.0)
    for i in range(60):
        answered(pacer, i, burst_key=i)
        clock.now += 1
    wait, reason = pacer.wait_for("next", "next")
    assert wait == pytest.approx(600 - 60) and "60 requests per 10 minutes" in reason
    assert pacer.wait_for("next", "next", weight=2)[0] == pytest.approx(600 - 59)  # BID_ASK counts twice
    assert pacer.snapshot().requests_in_window == 60
    assert pacer.eta_s(1) == pytest.approx(540)
    assert pacer.eta_s(61) == pytest.approx(600 + 540)


def test_fifty_open_requests_hold_the_next_until_one_is_released() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, margin_s=0.0)
    slots = [send(pacer, i, burst_key=i) for i in range(50)]
    wait, reason = pacer.wait_for("next", "next")
    assert wait == float("inf") and "50 open" in reason

    async def released_later() -> None:
        waiter = asyncio.create_task(pacer.acquire("next", "next"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        pacer.release(slots[0])
        await asyncio.wait_for(waiter, 5)

    asyncio.run(released_later())
    assert pacer.open == 50


def test_clock_scale_divides_every_window_and_the_margin_is_added() -> None:
    clock = Clock()
    pacer = Pacer(clock_scale=300, clock=clock, margin_s=0.01)
    answered(pacer, "same")
    assert pacer.wait_for("same", "AAPL/TRADES")[0] == pytest.approx(15 / 300 + 0.01)
    assert pacer.window(600) == pytest.approx(2.01)
    with pytest.raises(ValueError, match="clock_scale"):
        Pacer(clock_scale=0)


def test_hold_stops_every_request() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, margin_s=0.0)
    pacer.hold(30, "back-off after a pacing violation (IB error 162)")
    wait, reason = pacer.wait_for("a", "b")
    assert wait == pytest.approx(30) and "162" in reason
    assert pacer.snapshot().next_slot_s == pytest.approx(30)


def test_a_request_counts_from_its_answer_and_holds_its_identity_while_open() -> None:
    clock = Clock()
    pacer = Pacer(clock=clock, margin_s=0.0)
    slot = send(pacer, "slow")
    clock.now += 100  # the answer takes 100 s: the gateway saw the request somewhere in between
    assert pacer.wait_for("slow", "AAPL/TRADES")[0] == float("inf")
    pacer.release(slot)
    assert pacer.wait_for("slow", "AAPL/TRADES")[0] == pytest.approx(15)
    assert pacer.open == 0
