"""Child process of tests/integration/test_journal_crash.py: journals events until it is killed.

``python -m tests.support.journal_crash_child DB_PATH N_OPERATIONS`` starts N ``test.crash``
operations that each journal message events as fast as they can, and prints ``<name> <seq>`` (then
flushes stdout) for every event whose write was acknowledged, i.e. committed.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from ktrdrd.operations import OperationContext, OperationsCore


class Forever:
    """Journals ``message`` events and reports each acknowledged seq on stdout, until killed."""

    async def run(self, ctx: OperationContext) -> None:
        step = 0
        while True:
            step += 1
            await ctx.progress(current=step)
            seq = await ctx.message(f"event {step}")
            print(ctx.name, seq, flush=True)


async def main(db_path: Path, operations: int) -> None:
    core = await OperationsCore.open(db_path)
    core.register_kind("test.crash", Forever())
    await core.resume_pending()
    for i in range(operations):
        await core.start("test.crash", params={"i": i})
    print("started", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1]), int(sys.argv[2])))
