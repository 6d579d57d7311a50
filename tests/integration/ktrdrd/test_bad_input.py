"""Bad input against a real ktrdrd never becomes INTERNAL: hostile strategy documents, oversized
documents and names, label floods, identifiers that would be paths. Each answer is bounded and
names the field (or the line).

Limits are read from the modules that define them; positions from the text the tests write.
"""

from __future__ import annotations

import json

import grpc

from ktrdr.daemon.v1 import strategies_pb2, strategies_pb2_grpc
from ktrdr.excerpts import MAX_MESSAGE_CHARS
from ktrdr.strategy.inputs import MAX_NAME_CHARS
from ktrdr.strategy.loader import MAX_FEATURES, MAX_INDICATORS, MAX_SERIES
from ktrdr.strategy.reader import MAX_ISSUES
from ktrdr.strategy.yamltree import MAX_DEPTH
from ktrdr.symbols import MAX_CHARS as MAX_SYMBOL_CHARS
from ktrdr.wire import FRAME_LIMIT
from ktrdrd.operations.core import MAX_LABEL_SELECTORS, MAX_LABELS
from ktrdrd.services.strategies import MAX_SOURCE_NAME_CHARS, MAX_STRATEGY_BYTES
from tests.support.tinystrategy import SMALLEST_YAML

SERVICE = "ktrdr.daemon.v1.StrategiesService/"
OPS = "ktrdr.daemon.v1.OperationsService/"
START_TICKER = "ktrdr.test.v1/StartTicker"
INVALID_ARGUMENT = 3

VALID = SMALLEST_YAML
AFTER = VALID.count("\n") + 1  # the line of anything appended to VALID


def first_frame(daemon, method: str, params: dict) -> dict:
    frames = daemon.frames(method, params, 120.0)
    frame = next(frames)
    frames.close()
    return frame


def validate(daemon, text: str, name: str = "bad.yaml") -> dict:
    frame = first_frame(
        daemon, SERVICE + "ValidateStrategy", {"source": {"content": text, "sourceName": name}}
    )
    assert "result" in frame, frame  # an answer, never an error frame
    return frame["result"]


def invalid_argument(frame: dict, field: str) -> dict:
    assert "error" in frame, frame
    error = frame["error"]
    assert error["code"] == INVALID_ARGUMENT, error
    assert error["data"]["fieldViolations"][0]["field"] == field, error
    return error


def test_hostile_yaml_is_an_issue_with_a_line(daemon) -> None:
    aliases = ", ".join(["*l8"] * 9)
    bomb = "".join(
        f"l{k}: &l{k} [" + (", ".join([f"*l{k - 1}"] * 9) if k else '"lol"') + "]\n" for k in range(9)
    )
    cases = {
        "a NUL byte": (VALID + "description: a\x00b\n", (AFTER, 15)),
        "5,000-deep nesting": (VALID + "description: " + "[" * 5000 + "]" * 5000 + "\n", (AFTER, None)),
        "deep block nesting": (
            VALID + "x:\n" + "".join(" " * (k + 1) + "k:\n" for k in range(200)),
            (AFTER + MAX_DEPTH, MAX_DEPTH + 1),
        ),
        "a 5,000-digit integer": (VALID + "description: " + "7" * 5000 + "\n", (AFTER, 14)),
        "1e999": (VALID + "model: {architecture: {dropout: 1.0e+999}}\n", (AFTER, 33)),
        "an alias bomb": (bomb + f"description: [{aliases}]\n" + VALID, (1, 1)),
    }
    for what, (text, (line, column)) in cases.items():
        reply = validate(daemon, text)
        assert reply["valid"] is False, what
        first = reply["issues"][0]
        assert first["line"] == line, (what, reply["issues"])
        assert column is None or first["column"] == column, (what, first)
        assert all(len(i["message"]) <= MAX_MESSAGE_CHARS for i in reply["issues"]), what


def test_a_nul_byte_over_grpc_is_an_issue(daemon) -> None:
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = strategies_pb2_grpc.StrategiesServiceStub(channel)
        reply = stub.ValidateStrategy(
            strategies_pb2.ValidateStrategyRequest(
                source=strategies_pb2.StrategySource(content=VALID + "name2: \x00\n", source_name="n.yaml")
            ),
            timeout=60,
        )
    assert not reply.valid and [(i.line, i.column) for i in reply.issues] == [(AFTER, 8)]
    assert "U+0000" in reply.issues[0].message


def test_a_flood_of_unknown_keys_gets_a_bounded_answer(daemon) -> None:
    keys = 60_000  # ~1.5 MB, under MAX_STRATEGY_BYTES
    text = VALID + "".join(f"unknown_key_{n:07d}: {n}\n" for n in range(keys))
    assert 1_500_000 < len(text) <= MAX_STRATEGY_BYTES
    frame = first_frame(daemon, SERVICE + "ValidateStrategy", {"source": {"content": text}})
    assert len(json.dumps(frame)) < 100_000
    reply = frame["result"]
    assert reply["valid"] is False and len(reply["issues"]) == MAX_ISSUES
    assert reply["omittedIssueCount"] == keys - MAX_ISSUES
    assert [i["line"] for i in reply["issues"]] == list(range(AFTER, AFTER + MAX_ISSUES))

    frame = first_frame(daemon, SERVICE + "DescribeStrategy", {"source": {"content": text}})
    assert len(json.dumps(frame)) < 100_000
    error = invalid_argument(frame, "source.content")
    violations = error["data"]["fieldViolations"]
    assert error["data"]["reason"] == "STRATEGY_INVALID" and len(violations) == MAX_ISSUES + 1
    assert violations[-1]["description"] == f"... and {keys - MAX_ISSUES} more errors"
    assert error["message"] == f"source.content: invalid strategy ({keys} errors)"


def test_a_document_over_the_size_cap_is_refused_and_one_at_the_cap_is_read(daemon) -> None:
    at_cap = VALID + "#" * (MAX_STRATEGY_BYTES - len(VALID) - 1) + "\n"
    assert len(at_cap.encode()) == MAX_STRATEGY_BYTES
    assert validate(daemon, at_cap)["valid"] is True
    over = at_cap + "#"
    for method in ("ValidateStrategy", "DescribeStrategy"):
        frame = first_frame(daemon, SERVICE + method, {"source": {"content": over}})
        error = invalid_argument(frame, "source.content")
        assert error["data"]["reason"] == "STRATEGY_TOO_LARGE"
        assert f"{MAX_STRATEGY_BYTES + 1:,} bytes" in error["message"]
        assert f"{MAX_STRATEGY_BYTES:,} bytes" in error["message"]
    # The cap is in UTF-8 bytes: a character of 3 bytes counts 3.
    wide = at_cap[: -len("€")] + "€"
    frame = first_frame(daemon, SERVICE + "ValidateStrategy", {"source": {"content": wide}})
    invalid_argument(frame, "source.content")


def largest_strategy() -> str:
    """A valid strategy at every extent limit, with names of the longest length."""
    ids = [f"i{n:04d}".ljust(MAX_NAME_CHARS, "x") for n in range(MAX_INDICATORS)]
    sets_per_indicator = MAX_FEATURES // MAX_INDICATORS
    set_lines = "".join(
        f"    {f's{k}'.ljust(MAX_NAME_CHARS, 'y')}: [0, 1, 2]\n" for k in range(sets_per_indicator)
    )
    indicators = "".join(f"- {{id: {i}, name: macd}}\n" for i in ids)
    fuzzy = "".join(f"  {i}:\n{set_lines}" for i in ids)
    symbols = ", ".join(f"S{n:05d}".ljust(MAX_SYMBOL_CHARS, "Z") for n in range(MAX_SERIES))
    return (
        f"name: t\ntraining_data: {{symbols: [{symbols}], timeframes: [1h]}}\n"
        f"indicators:\n{indicators}fuzzy_sets:\n{fuzzy}"
    )


def test_the_largest_strategy_is_described_within_the_frame_cap(daemon) -> None:
    frame = first_frame(daemon, SERVICE + "DescribeStrategy", {"source": {"content": largest_strategy()}})
    reply = frame["result"]
    assert len(reply["featureNames"]) == MAX_FEATURES and len(reply["dataRequirements"]) == MAX_SERIES
    assert len(json.dumps(frame)) < FRAME_LIMIT // 2


def test_a_lookback_bomb_is_refused_at_once(daemon) -> None:
    # Before the feature limit this made DescribeStrategy build a billion feature names.
    text = VALID + "model: {features: {lookback_periods: 1000000000}}\n"
    error = invalid_argument(
        first_frame(daemon, SERVICE + "DescribeStrategy", {"source": {"content": text}}), "source.content"
    )
    assert error["data"]["reason"] == "STRATEGY_INVALID"
    assert "1,000,000,001 input features" in error["data"]["fieldViolations"][0]["description"]


def test_a_long_source_name_is_refused(daemon) -> None:
    name = "n" * (MAX_SOURCE_NAME_CHARS + 1)
    frame = first_frame(
        daemon, SERVICE + "ValidateStrategy", {"source": {"content": VALID, "sourceName": name}}
    )
    error = invalid_argument(frame, "source.source_name")
    assert len(error["message"]) < 200
    assert validate(daemon, VALID, name[:-1])["valid"] is True


def test_label_selectors_are_capped_and_the_cap_works(daemon) -> None:
    labels = {f"k{n}": f"v{n}" for n in range(MAX_LABELS)}
    frame = first_frame(daemon, START_TICKER, {"params": {"steps": 0}, "labels": labels})
    name = frame["result"]["operation"]["name"]
    selectors = [f"{k}={v}" for k, v in labels.items()]
    assert len(selectors) == MAX_LABEL_SELECTORS
    found = daemon.ctl(OPS + "ListOperations", {"filter": {"label": selectors}})
    assert [op["name"] for op in found["operations"]] == [name]

    for count in (MAX_LABEL_SELECTORS + 1, 1000):
        many = [f"k{n}=v" for n in range(count)]
        error = invalid_argument(
            first_frame(daemon, OPS + "ListOperations", {"filter": {"label": many}}), "filter.label"
        )
        assert error["message"] == (
            f"filter.label: {count:,} label selectors, over the limit of {MAX_LABEL_SELECTORS}"
        )


def test_labels_per_operation_are_capped(daemon) -> None:
    labels = {f"k{n}": "v" for n in range(MAX_LABELS + 1)}
    frame = first_frame(daemon, START_TICKER, {"params": {"steps": 0}, "labels": labels})
    error = invalid_argument(frame, "labels")
    assert error["message"] == f"labels: {MAX_LABELS + 1:,} labels, over the limit of {MAX_LABELS}"
    assert daemon.ctl(OPS + "ListOperations", {})["operations"] == []  # nothing was started


def test_label_errors_echo_a_short_excerpt(daemon) -> None:
    key = "k" * 100_000
    frame = first_frame(daemon, START_TICKER, {"params": {"steps": 0}, "labels": {key: "v"}})
    assert len(invalid_argument(frame, "labels")["message"]) < 200
    selector = "s" * 100_000
    frame = first_frame(daemon, OPS + "ListOperations", {"filter": {"label": [selector]}})
    assert len(invalid_argument(frame, "filter.label")["message"]) < 200


def test_an_artifact_s_symbol_cannot_leave_the_operation_s_directory(daemon_factory) -> None:
    """``GetBacktestArtifact.symbol`` names a directory under the operation's artifacts: ``../..``
    read a file outside them, and a 5,000-character name was an INTERNAL error."""
    no_host = f"unix:{daemon_factory.base}/no-host.sock"  # a host must be configured to start one
    daemon = daemon_factory.start(env={"KTRDR_HOSTS_TRAINING": no_host})
    window = {"startTime": "2023-01-01T00:00:00Z", "endTime": "2023-06-01T00:00:00Z"}
    started = daemon.ctl(
        "ktrdr.daemon.v1.BacktestsService/StartWalkForward",
        {"strategy": {"content": VALID}, "trainWindow": "60D", "testWindow": "30D", **window},
    )
    name = started["operation"]["name"]
    (daemon.state_dir / "backtests" / name.removeprefix("operations/")).mkdir(parents=True)  # as a job's
    (daemon.state_dir / "report.json").write_text('{"outside": "the artifacts"}')
    for symbol in ("../..", "x" * 5000, "A/B", "A\x00B", "-A"):
        request = {"name": name, "artifact": "report.json", "symbol": symbol}
        frame = first_frame(daemon, "ktrdr.daemon.v1.BacktestsService/GetBacktestArtifact", request)
        assert len(invalid_argument(frame, "symbol")["message"]) < 200, symbol[:10]


def test_request_ids_and_labels_must_be_printable(daemon) -> None:
    """Control characters (NUL, newline, ESC) and format characters (a right-to-left override) in a
    request id or a label are refused, naming the field, and start nothing; other Unicode passes."""
    unprintable = ("a\x00b", "line\nbreak", "\x1b[31mred", "\u202eevil")
    for text in unprintable:
        for params, field in (
            ({"requestId": text}, "request_id"),
            ({"labels": {text: "v"}}, "labels"),
            ({"labels": {"k": text}}, "labels"),
        ):
            frame = first_frame(daemon, START_TICKER, {"params": {"steps": 0}, **params})
            assert "printable" in invalid_argument(frame, field)["message"], (text, field)
    assert daemon.ctl(OPS + "ListOperations", {})["operations"] == []
    emoji = "📈 e\u0301"  # an emoji and a combining accent are printable
    started = daemon.ctl(START_TICKER, {"params": {"steps": 0}, "requestId": emoji, "labels": {emoji: emoji}})
    assert started["operation"]["labels"] == {emoji: emoji}


def test_a_forged_series_page_token_is_refused(daemon) -> None:
    """ListSeries' token is the last series of a page (``SYMBOL/timeframe``); one no daemon gave out
    was taken as a position and answered an empty or arbitrary page."""
    for token in ("../", "A/../1h", "\x00/1h", "eurusd/1h", "A/1h\n", "A/2h"):
        frame = first_frame(daemon, "ktrdr.daemon.v1.DataService/ListSeries", {"pageToken": token})
        invalid_argument(frame, "page_token")
