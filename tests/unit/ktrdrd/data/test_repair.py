"""Named import fixes: each changes only what it names, reports the rows it touched by their line,
and a problem no requested fix covers still fails naming the file's own line."""

from __future__ import annotations

import pytest

from ktrdr.research.bars import BarsError
from ktrdrd.data.parse import parse
from ktrdrd.data.repair import UnknownFix, resolve

HEADER = "time,open,high,low,close,volume\n"


def hour(h: int) -> str:
    return f"2024-03-04T{h:02d}:00:00Z"


def csv(rows: list[str], *fixes: str):
    return parse((HEADER + "\n".join(rows) + "\n").encode(), "csv", "AAPL", "1h", "f.csv",
                          resolve(list(fixes)))[:2]  # fmt: skip


def test_standard_expands_and_fixes_run_in_a_fixed_order() -> None:
    assert resolve(["dedupe-exact", "STANDARD"]) == ["swap-high-low", "sort", "dedupe-exact"]
    assert resolve(["dedupe-keep-last", "sort"]) == ["sort", "dedupe-keep-last"]
    with pytest.raises(UnknownFix, match="unknown fix 'fill-gaps'; known: standard, swap-high-low"):
        resolve(["fill-gaps"])


def test_sort_reports_the_rows_that_were_early() -> None:
    rows = [f"{hour(h)},1,2,0.5,1,{h}" for h in (0, 2, 1, 3, 5, 4)]
    bars, [fixed] = csv(rows, "sort")
    assert bars.volume.tolist() == [0, 1, 2, 3, 4, 5]
    assert (fixed.name, fixed.rows, fixed.examples) == ("sort", 2, ["line 4", "line 7"])


def test_dedupe_exact_drops_identical_rows_only() -> None:
    bars, [fixed] = csv([f"{hour(0)},1,2,0.5,1,5", f"{hour(0)},1,2,0.5,1,5", f"{hour(1)},1,2,0.5,1,6"],
                        "dedupe-exact")  # fmt: skip
    assert bars.volume.tolist() == [5, 6] and fixed.examples == ["line 3"]
    with pytest.raises(BarsError, match=r"f\.csv: line 3: timestamp 2024-03-04T00:00:00Z is duplicated"):
        csv([f"{hour(0)},1,2,0.5,1,5", f"{hour(0)},1,2,0.5,1,9"], "dedupe-exact")


def test_dedupe_keep_last_takes_the_last_row_of_a_time() -> None:
    bars, [fixed] = csv([f"{hour(0)},1,2,0.5,1,5", f"{hour(0)},1,2,0.5,1,9", f"{hour(1)},1,2,0.5,1,6"],
                        "dedupe-keep-last")  # fmt: skip
    assert bars.volume.tolist() == [9, 6] and (fixed.rows, fixed.examples) == (1, ["line 2"])


def test_sort_then_dedupe_names_the_original_lines() -> None:
    rows = [f"{hour(1)},1,2,0.5,1,1", f"{hour(0)},1,2,0.5,1,0", f"{hour(1)},1,2,0.5,1,1"]
    bars, fixed = csv(rows, "standard")
    assert bars.volume.tolist() == [0, 1]
    assert [(f.name, f.examples) for f in fixed] == [("sort", ["line 3"]), ("dedupe-exact", ["line 4"])]


def test_swap_high_low_and_what_it_cannot_fix() -> None:
    bars, [fixed] = csv([f"{hour(0)},1,2,0.5,1,0", f"{hour(1)},1,0.5,2,1,0"], "swap-high-low")
    assert bars.high.tolist() == [2, 2] and bars.low.tolist() == [0.5, 0.5] and fixed.examples == ["line 3"]
    # A close above the high stays an error after the swap, named by the file's line.
    with pytest.raises(BarsError, match=r"f\.csv: line 3 \(2024-03-04T00:00:00Z\): inconsistent OHLC"):
        csv([f"{hour(1)},1,2,0.5,1,0", f"{hour(0)},1,0.5,2,3,0"], "standard")


def test_no_fix_asked_for_changes_nothing_and_reports_nothing() -> None:
    bars, fixed = csv([f"{hour(0)},1,2,0.5,1,0"], "standard")
    assert fixed == [] and len(bars) == 1
    with pytest.raises(BarsError, match="line 3: timestamp 2024-03-04T00:00:00Z is unsorted"):
        csv([f"{hour(1)},1,2,0.5,1,0", f"{hour(0)},1,2,0.5,1,0"])
