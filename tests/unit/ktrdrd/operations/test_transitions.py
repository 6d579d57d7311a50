"""The operation lifecycle table (``ktrdrd.operations.core.TRANSITIONS``) and its one check."""

from __future__ import annotations

import asyncio
import itertools
import sqlite3
from pathlib import Path

import pytest

from ktrdr.wire import TERMINAL_STATES, OperationState
from ktrdrd.operations import OperationsCore
from ktrdrd.operations.core import TRANSITIONS, IllegalTransition, check_transition
from tests.support.journal import opened

S = OperationState
#: The lifecycle as docs/api.md describes it, written out pair by pair.
ALLOWED = {
    (S.PENDING, S.RUNNING),
    (S.PENDING, S.CANCELLED),
    (S.PENDING, S.FAILED),
    (S.PENDING, S.INTERRUPTED),
    (S.RUNNING, S.SUCCEEDED),
    (S.RUNNING, S.FAILED),
    (S.RUNNING, S.CANCELLED),
    (S.RUNNING, S.INTERRUPTED),
}


def test_the_table_covers_every_state_and_terminal_states_never_change() -> None:
    assert set(TRANSITIONS) == set(OperationState)
    for state in TERMINAL_STATES:
        assert TRANSITIONS[state] == frozenset(), state
    assert {(a, b) for a, targets in TRANSITIONS.items() for b in targets} == ALLOWED


@pytest.mark.parametrize(("current", "target"), list(itertools.product(OperationState, repeat=2)))
def test_check_allows_exactly_the_table(current: OperationState, target: OperationState) -> None:
    if (current, target) in ALLOWED:
        assert check_transition(current, target) is target
    else:
        with pytest.raises(IllegalTransition, match=f"{current} cannot change to {target}"):
            check_transition(current, target)


def test_journaled_state_sequences_follow_the_table(tmp_path: Path) -> None:
    """Every state event a real core writes (success, failure, cancel, restart) is an allowed step."""
    db_path = tmp_path / "ktrdr.db"

    async def first_run() -> None:
        async with opened(db_path) as core:
            names = [
                (await core.start("test.ticker", params=params)).name
                for params in ({"steps": 2}, {"steps": 3, "fail_at": 2}, {"steps": 2000, "interval_s": 0.02})
            ]
            await core.wait(names[0], 10)
            await core.wait(names[1], 10)
            await core.cancel(names[2])
            await core.wait(names[2], 10)
            # Left RUNNING at close: the restart below ends it INTERRUPTED.
            await core.start("test.ticker", params={"steps": 2000, "interval_s": 0.02})
            await asyncio.sleep(0.1)

    async def restart_without_handlers() -> None:
        core = await OperationsCore.open(db_path)
        try:
            await core.resume_pending()
        finally:
            await core.close()

    asyncio.run(first_run())
    asyncio.run(restart_without_handlers())
    conn = sqlite3.connect(db_path)
    rows = conn.execute("SELECT op_id, state FROM operation_events WHERE type = 'state' ORDER BY op_id, seq")
    paths: dict[str, list[str]] = {}
    for op_id, state in rows:
        paths.setdefault(op_id, []).append(state)
    conn.close()
    assert sorted(path[-1] for path in paths.values()) == ["CANCELLED", "FAILED", "INTERRUPTED", "SUCCEEDED"]
    for path in paths.values():
        assert path[0] == "PENDING"
        for before, after in itertools.pairwise(path):
            assert (S(before), S(after)) in ALLOWED, path
