"""StrategiesService against a real ktrdrd: ValidateStrategy and DescribeStrategy over ctl and gRPC.

Expected values come from the strategy library in this process (the daemon must describe a file
exactly as the library does) and from positions of text the tests themselves put into a file.
"""

from __future__ import annotations

from datetime import datetime

import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status

from ktrdr.daemon.v1 import strategies_pb2, strategies_pb2_grpc
from ktrdr.research.features import feature_spec
from ktrdr.strategy import data_requirements, load_strategy_text
from tests.support.paths import REPO

STRATEGY_FILES = sorted((REPO / "strategies").glob("*.yaml"))
NEURO = REPO / "strategies" / "neuro_mean_reversion.yaml"
SERVICE = "ktrdr.daemon.v1.StrategiesService/"
DAY_S = 86400


def source(name: str, text: str) -> dict[str, str]:
    return {"content": text, "sourceName": name}


def error_of(daemon, method: str, params: dict) -> dict:
    """The error object of the daemon's answer (which must be an error frame)."""
    frames = daemon.frames(SERVICE + method, params, 30.0)
    frame = next(frames)
    frames.close()
    assert "error" in frame, frame
    return frame["error"]


def validate(daemon, name: str, text: str) -> dict:
    return daemon.ctl(SERVICE + "ValidateStrategy", {"source": source(name, text)})


def broken_documents() -> tuple[str, dict[str, tuple[int, int]]]:
    """A valid document's text and, per broken variant, the text and the (line, column) of its error."""
    good = (REPO / "strategies" / "rsi_bbands_single.yaml").read_text().rstrip("\n") + "\n"
    lines = good.count("\n")
    return good, {
        good + "indicatorz: []\n": (lines + 1, 1),  # unknown top-level key
        good + "extra: [1, 2\n": (lines + 2, 1),  # unclosed flow sequence: error at the end of the stream
    }


def test_validate_reports_issues_as_an_answer(daemon) -> None:
    for path in STRATEGY_FILES:
        name = str(path.relative_to(REPO))
        reply = validate(daemon, name, path.read_text())
        local = load_strategy_text(path.read_text(), name)
        assert reply["valid"] is True, (name, reply["issues"])
        assert reply["normalized"]["name"] == local.strategy.name
        assert [(i["line"], i["column"], i["path"]) for i in reply["issues"]] == [
            (w.line, w.column, w.path) for w in local.warnings
        ]
        assert all(
            i["severity"] == "ISSUE_SEVERITY_WARNING" and i["sourceName"] == name for i in reply["issues"]
        )

    good, broken = broken_documents()
    unknown, syntax = broken
    reply = validate(daemon, "bad.yaml", unknown)
    assert reply["valid"] is False and "normalized" not in reply
    [issue] = reply["issues"]
    assert (issue["line"], issue["column"]) == broken[unknown]
    assert issue["severity"] == "ISSUE_SEVERITY_ERROR" and issue["path"] == "indicatorz"
    assert issue["suggestion"] == "indicators" and "unknown key" in issue["message"]
    assert issue["sourceName"] == "bad.yaml"

    reply = validate(daemon, "syntax.yaml", syntax)
    [issue] = reply["issues"]
    assert reply["valid"] is False and (issue["line"], issue["column"]) == broken[syntax]
    assert "YAML syntax error" in issue["message"] and issue["path"] == ""

    # Several errors come back together, in file order.
    two = good.replace("period: 14", "perod: 14", 1) + "indicatorz: []\n"
    reply = validate(daemon, "two.yaml", two)
    assert [i["path"] for i in reply["issues"]][-1] == "indicatorz" and len(reply["issues"]) == 2
    assert reply["issues"][0]["line"] < reply["issues"][1]["line"]

    # Malformed requests are INVALID_ARGUMENT naming the field.
    for request, field in (
        ({"source": {"content": "", "sourceName": "x"}}, "source.content"),
        (
            {"source": source("x", good), "overrides": [{"path": "model..epochs", "value": "5"}]},
            "overrides[0].path",
        ),
    ):
        error = error_of(daemon, "ValidateStrategy", request)
        assert error["code"] == 3 and [v["field"] for v in error["data"]["fieldViolations"]] == [field]


def test_describe_gives_features_and_data_requirements(daemon) -> None:
    text = NEURO.read_text()
    local = load_strategy_text(text, "neuro.yaml")
    request = {
        "source": source("neuro.yaml", text),
        "startTime": "2024-01-01T00:00:00Z",
        "endTime": "2025-01-01T00:00:00Z",
    }
    reply = daemon.ctl(SERVICE + "DescribeStrategy", request)
    assert reply["name"] == "neuro_mean_reversion" and reply["description"] == local.strategy.description
    assert reply["featureNames"] == feature_spec(local.strategy).names and len(reply["featureNames"]) == 27
    assert len(reply["issues"]) == len(local.warnings) > 0
    assert reply["normalized"]["data"]["symbols"] == ["AAPL", "MSFT", "GOOGL"]
    assert reply["period"] == {"startTime": "2024-01-01T00:00:00Z", "endTime": "2025-01-01T00:00:00Z"}
    expected = [
        r.to_dict() for r in data_requirements(local.strategy, 1704067200 * 10**9, 1735689600 * 10**9)
    ]
    got = [
        {
            "symbol": r["series"]["symbol"],
            "timeframe": r["series"]["timeframe"],
            "start": r["startTime"],
            "end": r["endTime"],
            "run_start": r["runStartTime"],
            "warmup_bars": r["warmupBars"],
        }
        for r in reply["dataRequirements"]
    ]
    assert got == expected
    assert [(g["symbol"], g["timeframe"]) for g in got] == [
        (s, tf) for s in ("AAPL", "MSFT", "GOOGL") for tf in ("1h", "4h", "1d")
    ]
    assert all(g["start"] < g["run_start"] and g["warmup_bars"] > 0 for g in got)

    # Default period: the 365 days before today 00:00 UTC; one end given: 365 days from it.
    def epoch(text: str) -> float:
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()

    period = daemon.ctl(SERVICE + "DescribeStrategy", {"source": source("n", text)})["period"]
    assert epoch(period["endTime"]) % DAY_S == 0
    assert epoch(period["endTime"]) - epoch(period["startTime"]) == 365 * DAY_S
    period = daemon.ctl(
        SERVICE + "DescribeStrategy", {"source": source("n", text), "startTime": "2020-03-01T00:00:00Z"}
    )["period"]
    assert period == {"startTime": "2020-03-01T00:00:00Z", "endTime": "2021-03-01T00:00:00Z"}

    error = error_of(daemon, "DescribeStrategy", {**request, "endTime": "2023-01-01T00:00:00Z"})
    assert error["code"] == 3 and error["data"]["fieldViolations"][0]["field"] == "end_time"

    _, broken = broken_documents()
    unknown = next(iter(broken))
    error = error_of(daemon, "DescribeStrategy", {"source": source("bad.yaml", unknown)})
    data = error["data"]
    line, column = broken[unknown]
    assert error["code"] == 3 and data["reason"] == "STRATEGY_INVALID"
    assert [(v["field"], v["description"].split(": ")[0]) for v in data["fieldViolations"]] == [
        ("source.content", f"bad.yaml:{line}:{column}")
    ]


def test_strategies_over_grpc(daemon) -> None:
    good, broken = broken_documents()
    with grpc.insecure_channel(daemon.grpc_target) as channel:
        stub = strategies_pb2_grpc.StrategiesServiceStub(channel)
        reply = stub.ValidateStrategy(
            strategies_pb2.ValidateStrategyRequest(
                source=strategies_pb2.StrategySource(content=good, source_name="g")
            ),
            timeout=30,
        )
        assert reply.valid and reply.normalized["name"] == "rsi_bbands_single"
        bad = next(iter(broken))
        with pytest.raises(grpc.RpcError) as err:
            stub.DescribeStrategy(
                strategies_pb2.DescribeStrategyRequest(
                    source=strategies_pb2.StrategySource(content=bad, source_name="b")
                ),
                timeout=30,
            )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(err.value)
    found = {}
    for packed in status.details:
        for cls in (error_details_pb2.ErrorInfo, error_details_pb2.BadRequest):
            if packed.Is(cls.DESCRIPTOR):
                found[cls.DESCRIPTOR.name] = cls()
                packed.Unpack(found[cls.DESCRIPTOR.name])
    assert found["ErrorInfo"].reason == "STRATEGY_INVALID"
    [violation] = found["BadRequest"].field_violations
    assert violation.field == "source.content" and "did you mean 'indicators'" in violation.description


def test_overrides_change_the_validated_strategy_and_keep_line_numbers(daemon) -> None:
    """--set: a valid override changes the strategy; a bad path or a value of the wrong type is an
    issue at the line of the key it names, naming the override; other issues keep their lines."""
    text = NEURO.read_text()
    lines = text.splitlines()
    period_line = next(i for i, line in enumerate(lines, 1) if line.strip().startswith("period: 14"))
    rsi_line = next(i for i, line in enumerate(lines, 1) if line.startswith('- name: "rsi"'))

    def with_sets(*sets: tuple[str, str], method: str = "ValidateStrategy") -> dict:
        request = {
            "source": source("neuro.yaml", text),
            "overrides": [{"path": p, "value": v} for p, v in sets],
        }
        return daemon.ctl(SERVICE + method, request)

    reply = with_sets(("indicators[rsi].period", "21"), ("model.training.learning_rate", "0.01"))
    assert reply["valid"] is True
    rsi = next(i for i in reply["normalized"]["indicators"] if i["id"] == "rsi")
    assert rsi["params"]["period"] == 21 and reply["normalized"]["optim"]["learning_rate"] == 0.01
    plain = validate(daemon, "neuro.yaml", text)
    assert [(i["line"], i["path"]) for i in reply["issues"]] == [
        (i["line"], i["path"]) for i in plain["issues"]
    ]

    described = with_sets(("training_data.symbols.list", "[AAPL]"), method="DescribeStrategy")
    assert {r["series"]["symbol"] for r in described["dataRequirements"]} == {"AAPL"}

    wrong_type = with_sets(("indicators[0].period", "abc"))
    [issue] = wrong_type["issues"][:1]
    assert wrong_type["valid"] is False and issue["line"] == period_line
    assert issue["path"] == "indicators[0].period" and "--set indicators[0].period=abc" in issue["message"]

    bad_item = with_sets(("indicators[7].period", "21"))
    [issue] = [i for i in bad_item["issues"] if i["severity"] == "ISSUE_SEVERITY_ERROR"]
    assert issue["line"] < rsi_line and "indicators[7].period" in issue["message"]
    assert "the list has 2 item(s)" in issue["message"]

    typo = with_sets(("model.training.learnin_rate", "0.01"))
    [issue] = [i for i in typo["issues"] if i["severity"] == "ISSUE_SEVERITY_ERROR"]
    assert (
        issue["suggestion"] == "learning_rate"
        and "--set model.training.learnin_rate=0.01" in issue["message"]
    )
    assert lines[issue["line"] - 1].strip().startswith("training:")

    error = error_of(
        daemon,
        "DescribeStrategy",
        {"source": source("neuro.yaml", text), "overrides": [{"path": "model.dropout", "value": "x"}]},
    )
    assert error["code"] == 3 and error["data"]["reason"] == "STRATEGY_INVALID"
    assert "--set model.dropout=x" in error["data"]["fieldViolations"][0]["description"]
