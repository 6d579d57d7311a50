"""ktrdrctl commands end to end in-process (``main(argv)``) against the scripted ctl server.

Checks what each command sends, what it prints (tables, --json) and the exit code it returns.
"""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from ktrdrctl import exits
from ktrdrctl.__main__ import main
from ktrdrctl.cli import cli
from tests.support.ctlserver import (
    CLOSE,
    OPS,
    SYSTEM,
    ScriptedServer,
    error,
    event,
    operation,
    result,
    stream,
)

OP = "op_01jabcdefghjkmnpqrstvwxyz0"
NAME = f"operations/{OP}"
PARENT = "op_01jabcdefghjkmnpqrstvwxyz1"


def run(server: ScriptedServer, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--runtime-dir", str(server.runtime_dir), *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_status_shows_info_and_json_prints_response(server: ScriptedServer, capsys) -> None:
    info = {"version": "0.1.0", "instanceId": "i-1", "uptime": "3.5s", "stateDir": "/s", "hosts": []}
    server.on(SYSTEM + "GetInfo", lambda _: result(info))
    code, out, _ = run(server, capsys, "status")
    assert code == 0
    assert "version:     0.1.0" in out and "uptime:      3.5s" in out and "state dir:   /s" in out
    code, out, _ = run(server, capsys, "status", "--json")
    assert code == 0 and json.loads(out) == info and out.count("\n") == 1


def test_hosts_prints_the_table_and_json_prints_the_response(server: ScriptedServer, capsys) -> None:
    host = {
        "name": "ib",
        "kind": "HOST_KIND_MARKETDATA",
        "state": "HOST_STATE_UNAVAILABLE",
        "message": "gone",
    }
    info = {"version": "0.1.0", "hosts": [host]}
    server.on(SYSTEM + "GetInfo", lambda _: result(info))
    code, out, _ = run(server, capsys, "hosts")
    assert code == 0 and out.splitlines()[0].split()[:4] == ["NAME", "KIND", "ADDRESS", "STATE"]
    assert out.splitlines()[1].split() == ["ib", "marketdata", "-", "UNAVAILABLE", "-", "-", "gone"]
    code, out, _ = run(server, capsys, "hosts", "--json")
    assert code == 0 and json.loads(out) == info
    server.on(SYSTEM + "GetInfo", lambda _: result({"version": "0.1.0"}))
    code, out, _ = run(server, capsys, "hosts")
    assert code == 0 and out == "no hosts configured\n"


def test_ops_list_sends_filters_and_prints_table(server: ScriptedServer, capsys) -> None:
    server.on(
        OPS + "ListOperations", lambda _: result({"operations": [operation(OP)], "nextPageToken": "t2"})
    )
    code, out, err = run(
        server,
        capsys,
        *("ops", "list", "--kind", "train", "--state", "running", "--state", "FAILED"),
        *("--label", "symbol=EURUSD", "--parent", PARENT, "--page-size", "5"),
    )
    assert code == 0
    assert server.params_of(OPS + "ListOperations") == [
        {
            "filter": {
                "kind": "train",
                "state": ["OPERATION_STATE_RUNNING", "OPERATION_STATE_FAILED"],
                "label": ["symbol=EURUSD"],
                "parent": f"operations/{PARENT}",
            },
            "view": "OPERATION_VIEW_BASIC",  # the table shows no results
            "pageSize": 5,
        }
    ]
    assert out.splitlines()[0].split()[:3] == ["ID", "KIND", "STATE"]
    assert out.splitlines()[1].split()[:3] == [OP, "train", "RUNNING"]
    assert "--page-token t2" in err


def test_ops_list_json_one_page_is_the_response_as_received(server: ScriptedServer, capsys) -> None:
    response = {"operations": [operation(OP)], "nextPageToken": "t2"}
    server.on(OPS + "ListOperations", lambda _: result(response))
    code, out, _ = run(server, capsys, "ops", "list", "--json", "--page-token", "t1")
    assert code == 0 and json.loads(out) == response
    assert "view" not in server.params_of(OPS + "ListOperations")[0]  # --json: every field
    assert server.params_of(OPS + "ListOperations") == [{"pageToken": "t1"}]


def paged(server: ScriptedServer, total: int, page: int) -> None:
    """ListOperations over ``total`` operations, ``page`` per response at most (token = offset)."""
    ops = [operation(f"op_{i:02d}") for i in range(total)]

    def handle(params: dict) -> list:
        start = int(params.get("pageToken") or 0)
        size = min(params.get("pageSize") or page, page)
        end = min(start + size, total)
        return result({"operations": ops[start:end], **({"nextPageToken": str(end)} if end < total else {})})

    server.on(OPS + "ListOperations", handle)


def test_ops_list_all_follows_every_page(server: ScriptedServer, capsys) -> None:
    paged(server, total=5, page=2)
    code, out, _ = run(server, capsys, "ops", "list", "--all", "--json")
    assert code == 0
    document = json.loads(out)
    assert [op["name"] for op in document["operations"]] == [f"operations/op_{i:02d}" for i in range(5)]
    assert "nextPageToken" not in document
    assert len(server.params_of(OPS + "ListOperations")) == 3


def test_ops_list_limit_stops_exactly_and_keeps_a_valid_token(server: ScriptedServer, capsys) -> None:
    paged(server, total=5, page=2)
    code, out, _ = run(server, capsys, "ops", "list", "--limit", "3", "--json")
    assert code == 0
    document = json.loads(out)
    assert [op["name"] for op in document["operations"]] == [f"operations/op_{i:02d}" for i in range(3)]
    assert document["nextPageToken"] == "3"  # the next page starts right after what was shown
    assert [p.get("pageSize") for p in server.params_of(OPS + "ListOperations")] == [3, 1]


def test_ops_list_empty_says_so_on_stderr(server: ScriptedServer, capsys) -> None:
    server.on(OPS + "ListOperations", lambda _: result({}))
    code, out, err = run(server, capsys, "ops", "list")
    assert (code, out) == (0, "") and "no operations" in err


def test_ops_show_accepts_id_or_name(server: ScriptedServer, capsys) -> None:
    server.on(OPS + "GetOperation", lambda p: result({"operation": operation(OP, name=p["name"])}))
    for given in (OP, NAME):
        code, out, _ = run(server, capsys, "ops", "show", given)
        assert code == 0 and f"name:       {NAME}" in out
    assert server.params_of(OPS + "GetOperation") == [{"name": NAME}, {"name": NAME}]


def test_not_found_exits_4_with_message_on_stderr(server: ScriptedServer, capsys) -> None:
    server.on(
        OPS + "GetOperation", lambda p: error(5, f"operation {p['name']} not found", reason="NOT_FOUND")
    )
    code, out, err = run(server, capsys, "ops", "show", OP, "--json")
    assert code == exits.NOT_FOUND == 4
    assert out == ""
    assert f"NOT_FOUND: operation {NAME} not found" in err


def test_other_daemon_errors_exit_1_with_code_reason_and_field_violations(
    server: ScriptedServer, capsys
) -> None:
    violations = [{"field": "page_token", "description": "not issued by this daemon"}]
    server.on(
        OPS + "ListOperations",
        lambda _: error(3, "bad page token", reason="BAD_PAGE_TOKEN", fieldViolations=violations),
    )
    code, _, err = run(server, capsys, "ops", "list", "--page-token", "zz")
    assert code == 1
    assert "INVALID_ARGUMENT: bad page token (reason: BAD_PAGE_TOKEN)" in err
    assert "  page_token: not issued by this daemon" in err


def test_unreachable_exits_3_and_names_the_start_command(short_dir: Path, capsys) -> None:
    code = main(["--runtime-dir", str(short_dir), "status"])
    err = capsys.readouterr().err
    assert code == exits.UNREACHABLE == 3
    assert f"cannot reach ktrdrd at {short_dir}/ctl.sock" in err
    assert f"start it with: ktrdrd --runtime-dir {short_dir}" in err


def test_runtime_dir_from_environment(server: ScriptedServer, capsys, monkeypatch) -> None:
    server.on(SYSTEM + "GetInfo", lambda _: result({"version": "9"}))
    monkeypatch.setenv("KTRDR_RUNTIME_DIR", str(server.runtime_dir))
    assert main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"version": "9"}


@pytest.mark.parametrize(
    ("final", "code", "message"),
    [
        ("SUCCEEDED", 0, ""),
        ("FAILED", 1, f"{NAME} FAILED: INTERNAL: trainer crashed"),
        ("CANCELLED", 1, f"{NAME} CANCELLED"),
        ("INTERRUPTED", 1, f"{NAME} INTERRUPTED: ABORTED: ktrdrd restarted"),
    ],
)
def test_ops_wait_exit_code_follows_the_outcome(
    server: ScriptedServer, capsys, final: str, code: int, message: str
) -> None:
    errors = {
        "FAILED": {"code": 13, "message": "trainer crashed"},
        "INTERRUPTED": {"code": 10, "message": "ktrdrd restarted"},
    }
    extra = {"error": errors[final]} if final in errors else {}
    server.on(OPS + "WaitOperation", lambda _: result({"operation": operation(OP, final, **extra)}))
    got, out, err = run(server, capsys, "ops", "wait", OP)
    assert got == code
    assert f"state:      {final} (done)" in out
    assert message in err
    assert server.params_of(OPS + "WaitOperation")[0]["name"] == NAME


def test_ops_wait_timeout_exits_124_and_operation_keeps_running(server: ScriptedServer, capsys) -> None:
    server.on(OPS + "WaitOperation", lambda _: result({"operation": operation(OP, "RUNNING")}))
    code, out, err = run(server, capsys, "ops", "wait", OP, "--timeout", "0.3s", "--json")
    assert code == exits.WAIT_TIMEOUT == 124
    assert json.loads(out.splitlines()[-1])["operation"]["state"] == "OPERATION_STATE_RUNNING"
    assert "still RUNNING" in err and "keeps running" in err
    timeouts = [float(p["timeout"].removesuffix("s")) for p in server.params_of(OPS + "WaitOperation")]
    assert timeouts and all(0 <= t <= 0.3 for t in timeouts)


def test_ops_cancel_and_delete(server: ScriptedServer, capsys) -> None:
    server.on(OPS + "CancelOperation", lambda _: result({"operation": operation(OP, "RUNNING")}))
    server.on(OPS + "DeleteOperation", lambda _: result({}))
    code, out, _ = run(server, capsys, "ops", "cancel", OP)
    assert code == 0 and out == f"cancel requested: {NAME} (now RUNNING)\n"
    code, out, _ = run(server, capsys, "ops", "delete", NAME, "--json")
    assert code == 0 and json.loads(out) == {}
    assert server.params_of(OPS + "DeleteOperation") == [{"name": NAME}]


def test_cancel_of_a_finished_operation_exits_1(server: ScriptedServer, capsys) -> None:
    server.on(
        OPS + "CancelOperation", lambda _: error(9, "operation is already done", reason="OPERATION_DONE")
    )
    code, _, err = run(server, capsys, "ops", "cancel", OP)
    assert code == 1 and "FAILED_PRECONDITION: operation is already done (reason: OPERATION_DONE)" in err


def watch_items(final: str = "SUCCEEDED") -> list[dict]:
    return [
        {"snapshot": operation(OP, "PENDING", lastSeq="1")},
        event(2, "RUNNING", "STATE"),
        event(3, "RUNNING", "STAGE", stage="train"),
        event(4, "RUNNING", progress={"fraction": 0.5, "message": "epoch 5/10", "eta": "30s"}, stage="train"),
        event(5, "RUNNING", "MESSAGE", stage="train", message="checkpoint saved"),
        event(6, final, "STATE", stage="train", progress={"fraction": 1.0 if final == "SUCCEEDED" else 0.5}),
    ]


def test_ops_watch_plain_lines_when_not_a_tty(server: ScriptedServer, capsys) -> None:
    server.on(OPS + "WatchOperation", lambda _: stream(watch_items()))
    code, out, _ = run(server, capsys, "ops", "watch", OP, "--after-seq", "1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].startswith(f"{NAME}  kind train  last seq 1  PENDING")
    assert "#4  progress  RUNNING  train  [##########----------]  50%  epoch 5/10  ETA 30.0s" in lines[3]
    assert lines[4].endswith("| checkpoint saved")
    assert "#6  state  SUCCEEDED" in lines[5]
    assert lines[-1].startswith(f"{NAME} SUCCEEDED")
    assert server.params_of(OPS + "WatchOperation") == [{"name": NAME, "afterSeq": "1"}]


def test_ops_watch_json_prints_each_item_and_failure_exits_1(server: ScriptedServer, capsys) -> None:
    items = watch_items("FAILED")
    server.on(OPS + "WatchOperation", lambda _: stream(items))
    failed = operation(OP, "FAILED", error={"code": 13, "message": "out of memory"})
    server.on(OPS + "GetOperation", lambda _: result({"operation": failed}))
    code, out, err = run(server, capsys, "ops", "watch", OP, "--json")
    assert code == 1
    assert [json.loads(line) for line in out.splitlines()] == items
    assert f"{NAME} FAILED: INTERNAL: out of memory" in err


def test_ops_watch_stream_cut_exits_3_with_reattach_hint(server: ScriptedServer, capsys) -> None:
    items = watch_items()[:4]
    server.on(OPS + "WatchOperation", lambda _: [*({"result": item} for item in items), CLOSE])
    code, _, err = run(server, capsys, "ops", "watch", OP)
    assert code == 3
    assert "closed the connection" in err
    assert (
        f"re-attach later with: ktrdrctl --runtime-dir {server.runtime_dir} ops watch {OP} --after-seq 4"
        in err
    )


@pytest.mark.parametrize(
    "argv",
    [
        ("ops", "show", "not an id"),
        ("ops", "list", "--state", "finished"),
        ("ops", "list", "--label", "nokey"),
        ("ops", "list", "--limit", "2", "--all"),
        ("ops", "wait", OP, "--timeout", "soon"),
        ("ops", "frobnicate"),
        ("--call-timeout", "x", "status"),
    ],
)
def test_usage_errors_exit_2_before_contacting_the_daemon(server: ScriptedServer, capsys, argv) -> None:
    code, _, err = run(server, capsys, *argv)
    assert code == exits.USAGE == 2
    assert "Usage:" in err or "Error" in err
    assert server.requests == []


def test_help_exits_0(capsys) -> None:
    assert main(["ops", "--help"]) == 0
    out = capsys.readouterr().out
    for command in ("list", "show", "watch", "wait", "cancel", "delete", "resume"):
        assert f"  {command}" in out


def _command_paths(
    group: click.Group, ctx: click.Context, prefix: tuple[str, ...] = ()
) -> list[tuple[str, ...]]:
    """Every command and group below ``group``, resolved through its lazy loading, depth first."""
    paths = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join((*prefix, name))} is listed but cannot be loaded"
        paths.append((*prefix, name))
        if isinstance(command, click.Group):
            paths += _command_paths(
                command, click.Context(command, parent=ctx, info_name=name), (*prefix, name)
            )
    return paths


def test_every_registered_command_is_reachable_and_its_help_works(capsys) -> None:
    assert main(["--help"]) == 0
    listing = capsys.readouterr().out.split("Commands:", 1)[1]
    root_names = set(cli.lazy_commands) | set(cli.commands)
    for name in root_names:  # each listed with its short help
        assert any(line.split()[:1] == [name] and len(line.split()) > 1 for line in listing.splitlines()), (
            name
        )
    paths = _command_paths(cli, click.Context(cli, info_name="ktrdrctl"))
    assert {path[0] for path in paths} == root_names
    assert {("ops", "list"), ("data", "show"), ("models", "list"), ("strategies", "validate")} <= set(paths)
    for path in paths:
        assert main([*path, "--help"]) == 0, path
        out = capsys.readouterr().out
        assert out.startswith(f"Usage: ktrdrctl {' '.join(path)} "), out[:200]


def test_ops_resume_prints_the_new_operation(server: ScriptedServer, capsys) -> None:
    resumed = operation("op_new", "PENDING", labels={"resumed-from": NAME})
    server.on(OPS + "ResumeOperation", lambda _: result({"operation": resumed}))
    code, out, err = run(server, capsys, "ops", "resume", OP, "--request-id", "r-1")
    assert code == 0
    assert out == f"resumed {NAME} as operations/op_new\n"
    assert "ops watch op_new" in err
    assert server.params_of(OPS + "ResumeOperation") == [{"name": NAME, "requestId": "r-1"}]
    server.on(OPS + "ResumeOperation", lambda _: error(12, "ResumeOperation is not implemented yet"))
    code, _, err = run(server, capsys, "ops", "resume", OP)
    assert code == 1 and "UNIMPLEMENTED: ResumeOperation is not implemented yet" in err
