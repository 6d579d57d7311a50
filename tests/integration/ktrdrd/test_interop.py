"""Clients in other languages over grpc.sock: Node (@grpc/grpc-js + proto-loader) and `buf curl`.

Needs the Node packages of tests/interop (``make test`` installs them: ``npm install`` there).
"""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from tests.support.paths import REPO

INTEROP = REPO / "tests" / "interop"
BUF = INTEROP / "node_modules" / ".bin" / "buf"
START = "ktrdr.test.v1/StartTicker"

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or not (INTEROP / "node_modules" / "@grpc" / "grpc-js").is_dir(),
    reason="node or tests/interop/node_modules missing (run `npm install` in tests/interop)",
)


def run(argv: list[str]) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"{argv[:3]} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


def start_ticker(daemon) -> str:
    params = {"params": {"steps": 3, "interval_s": 0.05, "messages": True}}
    return daemon.ctl(START, params)["operation"]["name"]


def assert_watch(messages: list[dict], name: str) -> None:
    assert messages[0]["snapshot"]["name"] == name
    events = [m["event"] for m in messages[1:]]
    assert [int(e["seq"]) for e in events] == list(range(1, len(events) + 1))
    assert events[-1]["state"] == "OPERATION_STATE_SUCCEEDED"
    assert [e["message"] for e in events if e["type"] == "OPERATION_EVENT_TYPE_MESSAGE"] == [
        "tick 1",
        "tick 2",
        "tick 3",
    ]


def test_node_grpc_js_client(daemon):
    name = start_ticker(daemon)
    out = run(["node", str(INTEROP / "client.js"), str(daemon.grpc_socket), name])
    lines = [json.loads(line) for line in out.splitlines()]
    assert lines[0] == {"health": "SERVING"}
    assert lines[1]["info"]["pid"] == daemon.proc.pid
    assert lines[1]["info"]["ctlSocket"] == str(daemon.ctl_socket)
    assert_watch(lines[2]["watch"], name)


def buf_curl(daemon, method: str, body: dict) -> list[dict]:
    """Call ``method`` with buf curl through server reflection; one dict per response message."""
    out = run(
        [
            str(BUF),
            "curl",
            "--protocol",
            "grpc",
            "--http2-prior-knowledge",
            "--unix-socket",
            str(daemon.grpc_socket),
            "--data",
            json.dumps(body),
            f"http://localhost/{method}",
        ]
    )
    decoder, messages, text = json.JSONDecoder(), [], out.strip()
    while text:
        message, end = decoder.raw_decode(text)
        messages.append(message)
        text = text[end:].strip()
    return messages


def test_buf_curl_through_reflection(daemon):
    assert buf_curl(daemon, "grpc.health.v1.Health/Check", {}) == [{"status": "SERVING"}]
    [info] = buf_curl(daemon, "ktrdr.daemon.v1.SystemService/GetInfo", {})
    assert info["pid"] == daemon.proc.pid and info["grpcSocket"] == str(daemon.grpc_socket)
    name = start_ticker(daemon)
    assert_watch(buf_curl(daemon, "ktrdr.daemon.v1.OperationsService/WatchOperation", {"name": name}), name)
