"""ktrdrctl as a real process: import budget, exit codes, and ``ops watch`` on a terminal (a pty)."""

from __future__ import annotations

import base64
import json
import os
import signal
import time
from pathlib import Path

from tests.support.ctlserver import (
    OPS,
    SYSTEM,
    PtyProcess,
    ScriptedServer,
    event,
    operation,
    result,
    run_ktrdrctl,
)
from tests.support.importprobe import beyond_stdlib, forbidden_in, imported_modules

OP = "op_01jabcdefghjkmnpqrstvwxyz0"


def test_help_imports_only_stdlib_click_ktrdrctl_and_the_wire_module() -> None:
    modules = imported_modules("--help")
    assert "click" in modules and "ktrdrctl.cli" in modules  # the parse really saw the imports
    assert forbidden_in(modules) == []
    others = beyond_stdlib(modules)
    assert {m.split(".")[0] for m in others} == {"click", "ktrdrctl", "ktrdr"}
    # Of the ktrdr library, exactly its light root and the stdlib-only module of wire facts.
    assert {m for m in others if m.split(".")[0] == "ktrdr"} == {"ktrdr", "ktrdr.wire"}
    # --help does not even load the socket client.
    assert "ktrdrctl.ctl" not in modules


def test_a_real_command_imports_nothing_heavy_either(server: ScriptedServer) -> None:
    server.on(SYSTEM + "GetInfo", lambda _: result({"version": "0.1.0"}))
    modules = imported_modules("--runtime-dir", str(server.runtime_dir), "status")
    assert "ktrdrctl.ctl" in modules and "_socket" in modules
    # The C socket type is enough for the client; socket.py (enum, selectors) is start-up cost.
    assert forbidden_in(modules) == [] and "socket" not in modules and "strategies" not in str(modules)
    assert {m for m in beyond_stdlib(modules) if m.split(".")[0] == "ktrdr"} == {"ktrdr", "ktrdr.wire"}


def test_models_show_with_a_plot_draws_nothing_itself(server: ScriptedServer, tmp_path: Path) -> None:
    """The PNG comes from the daemon: ktrdrctl writes its bytes and imports no plotting library."""
    models = "ktrdr.daemon.v1.ModelsService/"
    png = b"\x89PNG\r\n\x1a\n" + b"rest"
    server.on(models + "GetModelVersion", lambda _: result({"version": {"name": "models/t/versions/2"}}))
    server.on(models + "RenderModelPlot", lambda _: result({"png": base64.b64encode(png).decode()}))
    target = tmp_path / "curves.png"
    modules = imported_modules(
        "--runtime-dir", str(server.runtime_dir), "models", "show", "t/2", "--plot", str(target)
    )
    assert forbidden_in(modules) == [] and not any(m.startswith("matplotlib") for m in modules)
    assert {m.split(".")[0] for m in beyond_stdlib(modules)} == {"click", "ktrdrctl", "ktrdr"}
    assert target.read_bytes() == png
    assert server.params_of(models + "RenderModelPlot") == [{"name": "models/t/versions/2"}]


def test_output_larger_than_a_pipe_buffer_arrives_whole_before_the_process_ends(
    server: ScriptedServer,
) -> None:
    # The process entry ends with os._exit after flushing: nothing buffered may be lost.
    ops = [operation(f"op_{i:026d}", "SUCCEEDED", labels={"batch": "x" * 40}) for i in range(1500)]
    server.on(OPS + "ListOperations", lambda _: result({"operations": ops}))
    table = run_ktrdrctl("--runtime-dir", str(server.runtime_dir), "ops", "list")
    assert table.returncode == 0, table.stderr
    lines = table.stdout.splitlines()
    assert len(table.stdout) > 200_000 and len(lines) == 1 + len(ops)
    assert lines[-1].startswith(f"op_{1499:026d}")
    as_json = run_ktrdrctl("--runtime-dir", str(server.runtime_dir), "ops", "list", "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert json.loads(as_json.stdout) == {"operations": ops}


def test_process_exit_codes_usage_and_unreachable(short_dir: Path) -> None:
    usage = run_ktrdrctl("ops", "show")
    assert usage.returncode == 2 and "Missing argument 'OPERATION'" in usage.stderr
    unreachable = run_ktrdrctl("--runtime-dir", str(short_dir), "ops", "list")
    assert unreachable.returncode == 3
    assert f"start it with: ktrdrd --runtime-dir {short_dir}" in unreachable.stderr
    assert unreachable.stdout == ""
    via_env = run_ktrdrctl("status", KTRDR_RUNTIME_DIR=str(short_dir))
    assert via_env.returncode == 3 and str(short_dir) in via_env.stderr


def live_watch(server: ScriptedServer) -> None:
    """A watch that reports progress and then stays open (the operation keeps running)."""

    def handle(_: dict) -> object:
        yield {"result": {"snapshot": operation(OP, "RUNNING", stage="train", lastSeq="1")}}
        yield {"result": event(2, progress={"fraction": 0.25, "message": "epoch 1/4"}, stage="train")}
        yield {
            "result": event(
                3, progress={"fraction": 0.5, "message": "epoch 2/4", "eta": "20s"}, stage="train"
            )
        }
        server.release.wait(60)

    server.on(OPS + "WatchOperation", handle)


def test_watch_on_a_tty_redraws_one_line_and_ctrl_c_detaches(server: ScriptedServer) -> None:
    live_watch(server)
    child = PtyProcess("--runtime-dir", str(server.runtime_dir), "ops", "watch", OP)
    try:
        output = child.read_until(b"epoch 2/4")
        # The second progress line replaced the first on the same terminal line.
        assert b"\rRUNNING  train  [#####---------------]  25%  epoch 1/4\x1b[K" in output
        assert b"\rRUNNING  train  [##########----------]  50%  epoch 2/4  ETA 20.0s\x1b[K" in output
        between = output.split(b"epoch 1/4", 1)[1].split(b"epoch 2/4", 1)[0]
        assert b"\n" not in between
        os.kill(child.proc.pid, signal.SIGINT)
        code = child.finish()
    finally:
        if child.proc.poll() is None:
            child.proc.kill()
    text = child.output.decode()
    assert code == 130
    assert f"detached from operations/{OP} (it keeps running)" in text
    assert f"re-attach with: ktrdrctl --runtime-dir {server.runtime_dir} ops watch {OP} --after-seq 3" in text
    assert "Traceback" not in text


def test_watch_resumes_with_after_seq_and_finishes_on_a_tty(server: ScriptedServer) -> None:
    def handle(params: dict) -> object:
        after = int(params["afterSeq"])
        yield {"result": {"snapshot": operation(OP, "RUNNING", stage="train", lastSeq="3")}}
        for item in (
            event(4, progress={"fraction": 0.75}, stage="train"),
            event(5, "SUCCEEDED", "STATE", stage="train"),
        ):
            if int(item["event"]["seq"]) > after:
                yield {"result": item}
        yield {"done": True}

    server.on(OPS + "WatchOperation", handle)
    child = PtyProcess(
        "--runtime-dir", str(server.runtime_dir), "ops", "watch", f"operations/{OP}", "--after-seq", "3"
    )
    code = child.finish()
    text = child.output.decode()
    assert code == 0, text
    assert server.params_of(OPS + "WatchOperation") == [{"name": f"operations/{OP}", "afterSeq": "3"}]
    assert "75%" in text and "#5 state SUCCEEDED" in text
    assert text.rstrip().splitlines()[-1].startswith(f"operations/{OP} SUCCEEDED")


def test_interrupt_outside_watch_exits_130(server: ScriptedServer) -> None:
    server.on(OPS + "WaitOperation", lambda _: (server.release.wait(60), [])[1])
    child = PtyProcess("--runtime-dir", str(server.runtime_dir), "ops", "wait", OP)
    deadline = time.monotonic() + 30
    while not server.params_of(OPS + "WaitOperation"):
        assert time.monotonic() < deadline, child.output
        time.sleep(0.02)
    os.kill(child.proc.pid, signal.SIGINT)
    code = child.finish()
    assert code == 130, child.output
    assert b"interrupted" in child.output and b"Traceback" not in child.output
