"""ktrdrctl rendering: pure functions from proto3 JSON to text."""

from __future__ import annotations

import os
import time

import pytest

from ktrdrctl import render, watch
from tests.support.ctlserver import event, operation


@pytest.fixture(autouse=True)
def utc() -> None:
    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    yield
    if old is None:
        os.environ.pop("TZ")
    else:
        os.environ["TZ"] = old
    time.tzset()


def test_timestamps_and_durations() -> None:
    assert render.parse_timestamp("1970-01-01T00:01:00Z") == 60.0
    assert render.parse_timestamp("1970-01-01T00:00:01.250000001Z") == pytest.approx(1.25)
    assert render.parse_timestamp(None) is None
    assert render.parse_duration("12.5s") == 12.5
    assert render.parse_duration(None) is None
    assert [render.human_duration(s) for s in (4.21, 185, 7620, 273600, -3)] == [
        "4.2s",
        "3m05s",
        "2h07m",
        "3d04h",
        "0.0s",
    ]
    assert render.local_time(0) == "1970-01-01 00:00:00"


def test_progress_bar_and_details() -> None:
    assert render.progress_bar(0.25, 8) == "[##------]"
    assert render.progress_bar(1.7, 4) == "[####]"
    progress = {"fraction": 0.5, "message": "epoch 5/10", "current": "5", "total": "10", "eta": "65s"}
    assert render.progress_details(progress) == "5/10  epoch 5/10  ETA 1m05s"
    assert render.progress_details({}) == ""


def test_table_aligns_columns_and_leaves_last_unpadded() -> None:
    text = render.table(["A", "LONGER"], [["xyz", "1"], ["q", "22"]])
    assert text.splitlines() == ["A    LONGER", "xyz  1", "q    22"]


def test_operations_table() -> None:
    ops = [
        operation("op_a", "RUNNING", stage="train", progress={"fraction": 0.42}, labels={"b": "2", "a": "1"}),
        operation("op_b", "FAILED"),
    ]
    lines = render.operations_table(ops, now=render.parse_timestamp("2026-11-28T14:00:31.500Z")).splitlines()
    assert lines[0].split() == ["ID", "KIND", "STATE", "PROGRESS", "STAGE", "CREATED", "ELAPSED", "LABELS"]
    assert lines[1].split() == [
        "op_a",
        "train",
        "RUNNING",
        "42%",
        "train",
        "2026-11-28",
        "14:00:00",
        "30.0s",
        "a=1,b=2",
    ]
    assert lines[2].split() == ["op_b", "train", "FAILED", "0%", "-", "2026-11-28", "14:00:00", "1m00s", "-"]


def test_operation_detail_shows_error_metrics_and_result() -> None:
    op = operation(
        "op_a",
        "FAILED",
        progress={"fraction": 0.5, "metrics": {"loss": 0.25}},
        error={
            "code": 9,
            "message": "host gone",
            "details": [{"@type": "x/google.rpc.ErrorInfo", "reason": "HOST"}],
        },
        result={"@type": "type.googleapis.com/ktrdr.daemon.v1.TrainingResult", "accuracy": 0.5},
    )
    text = render.operation_detail(op, now=0)
    assert "state:      FAILED (done)" in text
    assert "error:      FAILED_PRECONDITION: host gone (reason: HOST)" in text
    assert "  loss: 0.25" in text
    assert "result: ktrdr.daemon.v1.TrainingResult" in text
    assert '"accuracy": 0.5' in text
    assert "elapsed:    1m00s" in text


def test_info_detail_lists_hosts() -> None:
    info = {
        "version": "0.1.0",
        "instanceId": "inst-1",
        "uptime": "75s",
        "ctlSocket": "/run/x/ctl.sock",
        "stateDir": "/var/lib/ktrdr",
        "hosts": [
            {
                "name": "ib",
                "kind": "HOST_KIND_MARKETDATA",
                "state": "HOST_STATE_UNAVAILABLE",
                "message": "no gw",
            }
        ],
    }
    text = render.info_detail(info)
    assert "uptime:      1m15s" in text
    assert "instance:    inst-1" in text
    host_row = text.splitlines()[-1].split()
    assert host_row[:4] == ["ib", "marketdata", "-", "UNAVAILABLE"]
    assert host_row[-2:] == ["no", "gw"]
    assert "none configured" in render.info_detail({"version": "0.1.0"})


def test_hosts_table_shows_version_round_trip_and_simulated() -> None:
    hosts = [
        {
            "name": "ib",
            "kind": "HOST_KIND_MARKETDATA",
            "address": "unix:/run/ktrdr/hostd-ib.sock",
            "state": "HOST_STATE_READY",
            "version": "0.6.0",
            "roundTrip": "0.000412s",
            "simulated": True,
        },
        {
            "name": "gpu1",
            "kind": "HOST_KIND_TRAINING",
            "address": "gpu1:7443",
            "state": "HOST_STATE_CONNECTING",
        },
    ]
    header, ib, gpu = render.hosts_table(hosts).splitlines()
    assert header.split() == ["NAME", "KIND", "ADDRESS", "STATE", "VERSION", "RTT", "MESSAGE"]
    assert ib.split()[:6] == ["ib", "marketdata", "unix:/run/ktrdr/hostd-ib.sock", "READY", "0.6.0", "0.4"]
    assert ib.endswith("0.4 ms  simulated data")
    assert gpu.split() == ["gpu1", "training", "gpu1:7443", "CONNECTING", "-", "-", "-"]


def test_tracker_folds_snapshot_and_events() -> None:
    tracker = watch.Tracker("operations/op_a", after_seq=1)
    assert tracker.apply({"snapshot": operation("op_a", "PENDING", lastSeq="3")}) is None
    assert tracker.last_seq == 3 and tracker.state == "PENDING" and not tracker.done
    tracker.apply(event(4, "RUNNING", "STAGE", stage="train"))
    tracker.apply(event(5, "RUNNING", progress={"fraction": 0.5, "message": "epoch 5/10"}, stage="train"))
    assert tracker.last_seq == 5
    assert watch.status_line(tracker.op) == "RUNNING  train  [##########----------]  50%  epoch 5/10"
    tracker.apply(event(6, "SUCCEEDED", "STATE", stage="train", progress={"fraction": 1.0}))
    assert tracker.done and tracker.state == "SUCCEEDED"


def test_event_note_reports_changes_and_messages() -> None:
    ev = event(4, "RUNNING", "STAGE", stage="train")["event"]
    assert watch.event_note(ev, "PENDING", "") == "state RUNNING: stage train"
    assert watch.event_note(ev, "RUNNING", "train") == ""
    msg = event(5, "RUNNING", "MESSAGE", message="checkpoint saved")["event"]
    assert watch.event_note(msg, "RUNNING", "train") == "checkpoint saved"
