"""OperationsCore against a real SQLite journal: lifecycle, idempotency, list, cancel, delete, wait."""

from __future__ import annotations

import asyncio
import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from ktrdr.rpc import errors
from ktrdr.wire import StatusCode
from ktrdrd.operations import OperationContext, OperationsCore
from ktrdrd.operations.ids import IdGenerator
from tests.support.journal import opened

NAME_RE = re.compile(r"operations/op_[0-9a-hjkmnp-tv-z]{26}")
SLOW = {"steps": 1000, "interval_s": 0.02}


def run(coro: Any) -> Any:
    return asyncio.run(coro)


def test_ids_are_well_formed_unique_and_increasing() -> None:
    gen = IdGenerator()
    ids = [gen.new_id() for _ in range(5000)]
    assert all(re.fullmatch(r"op_[0-9a-hjkmnp-tv-z]{26}", i) for i in ids)
    assert ids == sorted(ids)
    assert len(set(ids)) == len(ids)


def test_ticker_succeeds_with_result_and_journal(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            rec = await core.start("test.ticker", params={"steps": 5, "interval_s": 0.001}, labels={"a": "1"})
            assert NAME_RE.fullmatch(rec.name)
            assert rec.state == "PENDING" and not rec.done and rec.last_seq == 1
            done = await core.wait(rec.name, 10)
            assert done.state == "SUCCEEDED" and done.done
            assert done.result == {
                "@type": "type.googleapis.com/google.protobuf.Struct",
                "value": {"steps": 5},
            }
            assert done.progress["current"] == 5 and done.progress["fraction"] == 1.0
            assert done.start_time is not None and done.end_time is not None
            assert done.create_time <= done.start_time <= done.end_time
            assert done.labels == {"a": "1"} and done.stage == "ticking"
            assert await core.get(rec.name) == done
            return done

    done = run(scenario())
    conn = sqlite3.connect(db_path)
    seqs = [row[0] for row in conn.execute("SELECT seq FROM operation_events WHERE op_id = ?", (done.id,))]
    states = [row[0] for row in conn.execute("SELECT state FROM operation_events WHERE type = 'state'")]
    assert seqs == list(range(1, done.last_seq + 1))
    assert states == ["PENDING", "RUNNING", "SUCCEEDED"]


def test_failure_records_error(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            rec = await core.start("test.ticker", params={"steps": 5, "interval_s": 0, "fail_at": 3})
            done = await core.wait(rec.name, 10)
            assert done.state == "FAILED"
            assert done.error == {
                "code": StatusCode.ABORTED,
                "message": "ticker failed at step 3 as asked",
                "reason": "TICKER_FAILED",
            }
            assert done.result is None

    run(scenario())


class Crasher:
    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        raise KeyError("missing")


class BadResult:
    async def run(self, ctx: OperationContext) -> Any:
        return ["not", "a", "dict"]


def test_unexpected_exception_and_bad_result_fail(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            core.register_kind("crash", Crasher())
            core.register_kind("bad", BadResult())
            crashed = await core.wait((await core.start("crash", params={})).name, 10)
            assert crashed.state == "FAILED"
            assert crashed.error["code"] == StatusCode.INTERNAL and crashed.error["reason"] == "HANDLER_ERROR"
            assert "KeyError" in crashed.error["message"]
            bad = await core.wait((await core.start("bad", params={})).name, 10)
            assert bad.state == "FAILED" and bad.error["reason"] == "BAD_RESULT"
            with pytest.raises(ValueError, match="already registered"):
                core.register_kind("crash", Crasher())

    run(scenario())


def test_bad_start_arguments_name_the_field(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            cases: list[tuple[dict[str, Any], str]] = [
                ({"kind": "nope", "params": {}}, "kind"),
                ({"kind": "test.ticker", "params": {"x": object()}}, "params"),
                ({"kind": "test.ticker", "params": {}, "labels": {"": "v"}}, "labels"),
                ({"kind": "test.ticker", "params": {}, "labels": {"k": 1}}, "labels"),
                ({"kind": "test.ticker", "params": {}, "parent": "bogus"}, "parent"),
                ({"kind": "test.ticker", "params": {}, "parent": "operations/op_" + "0" * 26}, "parent"),
                ({"kind": "test.ticker", "params": {}, "request_id": "r" * 500}, "request_id"),
            ]
            for kwargs, field in cases:
                kind = kwargs.pop("kind")
                with pytest.raises(errors.ApiError) as info:
                    await core.start(kind, **kwargs)
                assert info.value.code == StatusCode.INVALID_ARGUMENT
                assert [v.field for v in info.value.violations] == [field]
            ops, _ = await core.list()
            assert ops == []

    run(scenario())


def test_get_unknown_and_malformed(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            with pytest.raises(errors.ApiError) as info:
                await core.get("operations/op_" + "0" * 26)
            assert info.value.code == StatusCode.NOT_FOUND
            with pytest.raises(errors.ApiError) as info:
                await core.get("operations/../../etc")
            assert info.value.code == StatusCode.INVALID_ARGUMENT
            assert info.value.violations[0].field == "name"

    run(scenario())


def test_start_is_idempotent_on_request_id(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            params = {"steps": 2, "interval_s": 0}
            starts = await asyncio.gather(
                *(core.start("test.ticker", params=params, request_id="req-1") for _ in range(5))
            )
            assert len({rec.name for rec in starts}) == 1
            done = await core.wait(starts[0].name, 10)
            again = await core.start("test.ticker", params=dict(params), request_id="req-1")
            assert again.name == done.name and again.state == "SUCCEEDED"
            with pytest.raises(errors.ApiError) as info:
                await core.start("test.ticker", params={"steps": 3}, request_id="req-1")
            assert info.value.code == StatusCode.ALREADY_EXISTS and info.value.reason == "REQUEST_ID_REUSED"
            other = await core.start("test.ticker", params=params, request_id="req-2")
            assert other.name != done.name
            ops, _ = await core.list()
            assert len(ops) == 2

    run(scenario())


def test_list_filters_and_paging(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            parent = await core.start("test.ticker", params=SLOW, labels={"role": "parent"})
            names = [parent.name]
            for i in range(7):
                rec = await core.start(
                    "test.ticker",
                    params={"steps": 0},
                    labels={"i": str(i), "even": str(i % 2 == 0)},
                    parent=parent.name if i < 3 else "",
                )
                names.append(rec.name)
                await core.wait(rec.name, 10)
            newest_first = list(reversed(names))

            seen, token, pages = [], "", 0
            while True:
                page, token = await core.list(page_size=3, page_token=token)
                seen += [rec.name for rec in page]
                pages += 1
                if not token:
                    break
            assert seen == newest_first and pages == 3

            evens, _ = await core.list(labels={"even": "True"})
            assert [r.labels["i"] for r in evens] == ["6", "4", "2", "0"]
            both, _ = await core.list(labels={"even": "True", "i": "4"})
            assert [r.labels["i"] for r in both] == ["4"]
            children, _ = await core.list(parent=parent.name)
            assert [r.labels["i"] for r in children] == ["2", "1", "0"]
            running, _ = await core.list(states=["RUNNING", "PENDING"])
            assert [r.name for r in running] == [parent.name]
            succeeded, _ = await core.list(kind="test.ticker", states=["SUCCEEDED"])
            assert len(succeeded) == 7
            assert (await core.list(kind="other"))[0] == []

            _, token = await core.list(page_size=2, labels={"even": "True"})
            with pytest.raises(errors.ApiError) as info:
                await core.list(page_size=2, labels={"even": "False"}, page_token=token)
            assert info.value.violations[0].field == "page_token"
            for bad in ("garbage!", "eyJhIjoxfQ", token[:-3]):
                with pytest.raises(errors.ApiError) as info:
                    await core.list(page_token=bad)
                assert info.value.code == StatusCode.INVALID_ARGUMENT
                assert info.value.violations[0].field == "page_token"
            for kwargs, field in (
                ({"states": ["DONE"]}, "state"),
                ({"page_size": -1}, "page_size"),
                ({"labels": {"k=": "v"}}, "labels"),
                ({"parent": "x"}, "parent"),
            ):
                with pytest.raises(errors.ApiError) as info:
                    await core.list(**kwargs)
                assert info.value.violations[0].field == field

    run(scenario())


def test_cancel_cascades_and_refuses_when_done(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            parent = await core.start("test.ticker", params=SLOW)
            child = await core.start("test.ticker", params=SLOW, parent=parent.name)
            await asyncio.sleep(0.05)
            await core.cancel(parent.name)
            for name in (parent.name, child.name):
                done = await core.wait(name, 10)
                assert done.state == "CANCELLED"
                assert done.error["code"] == StatusCode.CANCELLED
            with pytest.raises(errors.ApiError) as info:
                await core.cancel(parent.name)
            assert info.value.code == StatusCode.FAILED_PRECONDITION and info.value.reason == "OPERATION_DONE"
            with pytest.raises(errors.ApiError) as info:
                await core.cancel("operations/op_" + "1" * 26)
            assert info.value.code == StatusCode.NOT_FOUND

    run(scenario())


def test_handler_ignoring_cancel_is_stopped_after_grace(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path, cancel_grace_s=0.05) as core:
            rec = await core.start("test.ticker", params={**SLOW, "ignore_cancel": True})
            await core.cancel(rec.name)
            done = await core.wait(rec.name, 10)
            assert done.state == "CANCELLED"

    run(scenario())


def test_wait_timeout_returns_current_record(db_path: Path) -> None:
    async def scenario() -> None:
        async with opened(db_path) as core:
            rec = await core.start("test.ticker", params=SLOW)
            now = await core.wait(rec.name, 0.05)
            assert now.state == "RUNNING" and not now.done
            assert (await core.wait(rec.name, 0)).state == "RUNNING"
            await core.cancel(rec.name)

    run(scenario())


def test_delete_only_done_operations(db_path: Path) -> None:
    async def scenario() -> str:
        async with opened(db_path) as core:
            running = await core.start("test.ticker", params=SLOW)
            with pytest.raises(errors.ApiError) as info:
                await core.delete(running.name)
            assert (
                info.value.code == StatusCode.FAILED_PRECONDITION
                and info.value.reason == "OPERATION_NOT_DONE"
            )
            finished = await core.start("test.ticker", params={"steps": 3, "interval_s": 0}, request_id="r")
            await core.wait(finished.name, 10)
            await core.delete(finished.name)
            with pytest.raises(errors.ApiError) as info:
                await core.get(finished.name)
            assert info.value.code == StatusCode.NOT_FOUND
            with pytest.raises(errors.ApiError) as info:
                await core.delete(finished.name)
            assert info.value.code == StatusCode.NOT_FOUND
            again = await core.start("test.ticker", params={"steps": 3, "interval_s": 0}, request_id="r")
            assert again.name != finished.name  # the request id is free again
            await core.cancel(running.name)
            return finished.id

    op_id = run(scenario())
    conn = sqlite3.connect(db_path)
    for table in ("operation_events", "operation_labels", "operations"):
        column = "id" if table == "operations" else "op_id"
        assert conn.execute(f"SELECT COUNT(*) FROM {table} WHERE {column} = ?", (op_id,)).fetchone()[0] == 0


class Chatty:
    """Calls progress() 20,000 times without yielding: the journal must coalesce them."""

    async def run(self, ctx: OperationContext) -> dict[str, Any] | None:
        for i in range(1, 20_001):
            await ctx.progress(current=i, total=20_000, metrics={"loss": 1 / i})
        last = await ctx.flush()
        assert ctx.snapshot().last_seq == last
        return None


def test_progress_is_coalesced_and_last_value_persisted(db_path: Path) -> None:
    async def scenario() -> Any:
        async with opened(db_path) as core:
            core.register_kind("chatty", Chatty())
            rec = await core.start("chatty", params={})
            return await core.wait(rec.name, 30)

    done = run(scenario())
    assert done.state == "SUCCEEDED"
    assert done.progress["current"] == 20_000 and done.progress["metrics"] == {"loss": 1 / 20_000}
    conn = sqlite3.connect(db_path)
    progress_rows = conn.execute("SELECT COUNT(*) FROM operation_events WHERE type = 'progress'").fetchone()[
        0
    ]
    assert 1 <= progress_rows < 100


def test_retention_deletes_old_terminal_operations_only(db_path: Path) -> None:
    async def scenario() -> tuple[str, str]:
        async with opened(db_path) as core:
            old = await core.start("test.ticker", params={"steps": 0})
            await core.wait(old.name, 10)
            running = await core.start("test.ticker", params=SLOW)
            await asyncio.sleep(0.3)
            return old.name, running.name

    old, running = run(scenario())

    async def reopen() -> None:
        async with opened(db_path, retention_s=0.2) as core:
            with pytest.raises(errors.ApiError):
                await core.get(old)
            # the running one was not deleted; it was reattached (ticker) and can finish
            assert (await core.get(running)).state == "RUNNING"
            await core.cancel(running)
            await core.wait(running, 10)
            assert await core.apply_retention() == 0
            await asyncio.sleep(0.3)
            assert await core.apply_retention() == 1
            assert (await core.list())[0] == []

    run(reopen())


def test_close_keeps_running_operations_for_resume(db_path: Path) -> None:
    async def first() -> str:
        async with opened(db_path) as core:
            rec = await core.start("test.ticker", params={"steps": 6, "interval_s": 0.05})
            while (await core.get(rec.name)).progress["current"] < 2:
                await asyncio.sleep(0.01)
            return rec.name

    name = run(first())

    async def without_handler() -> None:
        core = await OperationsCore.open(db_path)
        try:
            assert (await core.get(name)).state == "RUNNING"
            await core.resume_pending()
            rec = await core.get(name)
            assert rec.state == "INTERRUPTED" and rec.done
            assert rec.error["reason"] == "DAEMON_RESTARTED"
        finally:
            await core.close()

    # A copy keeps the RUNNING state for the reattach case below.
    copy_path = db_path.with_name("copy.db")
    src, dst = sqlite3.connect(db_path), sqlite3.connect(copy_path)
    src.backup(dst)
    src.close()
    dst.close()
    run(without_handler())

    async def with_handler() -> None:
        async with opened(copy_path) as core:
            done = await core.wait(name, 10)
            assert done.state == "SUCCEEDED"
            assert done.progress["current"] == 6
            events = [e async for e in core.watch(name)][1:]
            assert [e.seq for e in events] == list(range(1, done.last_seq + 1))
            ticks = [e.progress["current"] for e in events if e.type == "progress"]
            assert ticks == sorted(ticks)  # resumed after the last journaled step, not from 1

    run(with_handler())
