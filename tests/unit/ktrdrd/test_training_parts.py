"""The pure parts of training through the daemon: missing ranges of a cached series, the load
command named when bars are missing, the request digest, and ktrdrctl's sweep value splitting."""

from __future__ import annotations

from dataclasses import dataclass, field

from ktrdr.wire import split_sweep_values as split_values
from ktrdrd.training.kind import load_command, missing_ranges
from ktrdrd.training.prepare import Requirement, request_digest

DAY = 86400 * 10**9
T0 = 1672531200 * 10**9  # 2023-01-01


@dataclass
class Entry:
    calendar: str = ""  # none: every uncovered time is missing
    covered: list[tuple[int, int]] = field(default_factory=list)
    known_empty: list[tuple[int, int]] = field(default_factory=list)


def test_missing_ranges_are_the_parts_neither_covered_nor_known_empty() -> None:
    req = Requirement("AAPL", "1h", T0, T0 + 10 * DAY)
    assert missing_ranges(None, req) == [(T0, T0 + 10 * DAY)]
    entry = Entry(
        covered=[(T0 + DAY, T0 + 3 * DAY), (T0 + 5 * DAY, T0 + 20 * DAY)],
        known_empty=[(T0 + 3 * DAY, T0 + 4 * DAY)],
    )
    assert missing_ranges(entry, req) == [(T0, T0 + DAY), (T0 + 4 * DAY, T0 + 5 * DAY)]
    assert missing_ranges(Entry(covered=[(T0 - DAY, T0 + 11 * DAY)]), req) == []


def test_the_load_command_covers_every_missing_series() -> None:
    missing = [
        (Requirement("MSFT", "4h", T0, T0 + DAY), [(T0, T0 + DAY)]),
        (Requirement("AAPL", "1h", T0, T0 + 2 * DAY), [(T0 + DAY, T0 + 2 * DAY)]),
    ]
    assert load_command(missing) == (
        "ktrdrctl data load AAPL MSFT --timeframe 1h --timeframe 4h --start 2023-01-01T00:00:00Z --end 2023-01-03T00:00:00Z"
    )


def test_the_request_digest_changes_with_each_part_but_not_with_options() -> None:
    spec = {"start_ns": "1", "end_ns": "2", "seed": 7, "options": {"checkpoint_every": 1}}
    base = request_digest("doc", {"AAPL/1h@1-2": "abc"}, spec)
    assert base == request_digest("doc", {"AAPL/1h@1-2": "abc"}, {**spec, "options": {"checkpoint_every": 5}})
    assert base != request_digest("doc2", {"AAPL/1h@1-2": "abc"}, spec)
    assert base != request_digest("doc", {"AAPL/1h@1-2": "abd"}, spec)
    assert base != request_digest("doc", {"AAPL/1h@1-2": "abc"}, {**spec, "seed": 8})


def test_sweep_values_split_on_top_level_commas_only() -> None:
    assert split_values("0.1,0.2") == ["0.1", "0.2"]
    assert split_values("[64,32],[32]") == ["[64,32]", "[32]"]
    assert split_values("'a,b',c") == ["'a,b'", "c"]
    assert split_values("{x: 1, y: 2}") == ["{x: 1, y: 2}"]
    assert split_values("5") == ["5"]
