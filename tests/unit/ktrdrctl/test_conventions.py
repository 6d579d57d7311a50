"""CLI conventions: did-you-mean, malformed ids refused before sending, one ``--json`` convention,
``version``, and shell completion (click's, through ``_KTRDRCTL_COMPLETE``)."""

from __future__ import annotations

import json
from pathlib import Path

import click
import pytest

from ktrdrctl.__main__ import main
from ktrdrctl.cli import cli
from tests.support.ctlserver import (
    OPS,
    SYSTEM,
    ScriptedServer,
    event,
    operation,
    result,
    run_ktrdrctl,
    stream,
)
from tests.support.importprobe import beyond_stdlib, forbidden_in, imported_modules

OP = "op_01jabcdefghjkmnpqrstvwxyz0"
NAME = f"operations/{OP}"
STRATEGIES = "ktrdr.daemon.v1.StrategiesService/"
DATA = "ktrdr.daemon.v1.DataService/"
TRAINING = "ktrdr.daemon.v1.TrainingService/"
MODELS = "ktrdr.daemon.v1.ModelsService/"
BACKTESTS = "ktrdr.daemon.v1.BacktestsService/"


def run(server: ScriptedServer, capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["--runtime-dir", str(server.runtime_dir), *argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize(
    ("argv", "unknown", "suggestion"),
    [
        (("op", "list"), "op", "'ops'"),
        (("ops", "lst"), "lst", "'list'"),
        (("ops", "wach", OP), "wach", "'watch'"),
        (("stauts",), "stauts", "'status'"),
        (("strategy", "validate", "x.yaml"), "strategy", "'strategies'"),  # a lazily imported group
        (("strategies", "valdate", "x.yaml"), "valdate", "'validate'"),
    ],
)
def test_unknown_commands_suggest_the_closest_and_exit_2(
    server: ScriptedServer, capsys, argv: tuple[str, ...], unknown: str, suggestion: str
) -> None:
    code, out, err = run(server, capsys, *argv)
    assert code == 2 and out == ""
    assert f"No such command {unknown!r}. Did you mean {suggestion}" in err  # the closest first
    assert server.requests == []


def test_a_word_close_to_nothing_gets_no_suggestion(server: ScriptedServer, capsys) -> None:
    code, _, err = run(server, capsys, "ops", "xyzzy")
    assert code == 2 and "No such command 'xyzzy'." in err and "Did you mean" not in err


@pytest.mark.parametrize(
    "argv",
    [
        *(
            (command, bad)
            for command in ("show", "watch", "wait", "cancel", "delete", "resume")
            for bad in ("op_1",)
        ),
        ("show", "op_01jabcdefghjkmnpqrstvwxyzu"),  # u is not Crockford base32
        ("show", f"operations/{OP}/events"),
        ("show", "OP_01JABCDEFGHJKMNPQRSTVWXYZ0"),
        ("list", "--parent", "parent-1"),
    ],
)
def test_malformed_operation_ids_exit_2_before_anything_is_sent(
    server: ScriptedServer, capsys, argv: tuple[str, ...]
) -> None:
    code, out, err = run(server, capsys, "ops", *argv)
    assert code == 2 and out == ""
    assert "is not an operation id; expected op_ and 26 characters" in err
    assert server.requests == []


# -- one --json convention ----------------------------------------------------------------------

INFO = {"version": "9.9.9", "instanceId": "i-1", "pid": 42}


def script_every_method(server: ScriptedServer, tmp: Path) -> dict[str, tuple[list[str], int]]:
    """Answer every method a --json command calls; return each command's argv and its line count."""
    done = operation(OP, "SUCCEEDED", labels={"note": "é"})
    server.on(SYSTEM + "GetInfo", lambda _: result(INFO))
    server.on(OPS + "ListOperations", lambda _: result({"operations": [done]}))
    for method in ("GetOperation", "WaitOperation", "CancelOperation", "ResumeOperation"):
        server.on(OPS + method, lambda _: result({"operation": done}))
    server.on(OPS + "DeleteOperation", lambda _: result({}))
    items = [{"snapshot": operation(OP, "RUNNING")}, event(4, "SUCCEEDED", "STATE")]
    server.on(OPS + "WatchOperation", lambda _: stream(items))
    server.on(STRATEGIES + "ValidateStrategy", lambda _: result({"valid": True}))
    server.on(STRATEGIES + "DescribeStrategy", lambda _: result({"featureNames": ["f"]}))
    server.on(DATA + "ImportBars", lambda _: result({"barsImported": "1"}), client_stream=True)
    server.on(DATA + "ListSeries", lambda _: result({"series": []}))
    server.on(DATA + "LoadData", lambda _: result({"operation": operation(OP, "PENDING")}))
    server.on(TRAINING + "StartTraining", lambda _: result({"operation": operation(OP, "PENDING")}))
    server.on(DATA + "GetGaps", lambda _: result({"gaps": [], "calendar": "XNYS"}))
    model_version = {"name": "models/t/versions/2", "strategy": "t", "version": 2}
    server.on(MODELS + "ListModels", lambda _: result({"models": [{"name": "models/t", "strategy": "t"}]}))
    server.on(MODELS + "GetModelVersion", lambda _: result({"version": model_version}))
    server.on(
        MODELS + "CompareModelVersions",
        lambda _: result({"versions": [model_version] * 2, "deflatedSharpe": {"trials": 0}}),
    )
    server.on(MODELS + "DeleteModelVersion", lambda _: result({}))
    server.on(MODELS + "SetModelAlias", lambda _: result({"model": {"name": "models/t"}}))
    server.on(MODELS + "ExportModelVersion", lambda _: stream([{"data": "YWI=", "totalBytes": "2"}]))
    server.on(BACKTESTS + "StartBacktest", lambda _: result({"operation": operation(OP, "RUNNING")}))
    (tmp / "bars.csv").write_text("time,open,high,low,close\n2024-01-02,1,1,1,1\n")
    files = [tmp / "a.yaml", tmp / "b.yaml"]
    for file in files:
        file.write_text("name: x\n")
    return {
        "status": (["status"], 1),
        "hosts": (["hosts"], 1),
        "version": (["version"], 1),
        "ops list": (["ops", "list"], 1),
        "ops show": (["ops", "show", OP], 1),
        "ops wait": (["ops", "wait", OP], 1),
        "ops watch": (["ops", "watch", OP], len(items)),
        "ops cancel": (["ops", "cancel", OP], 1),
        "ops delete": (["ops", "delete", OP], 1),
        "ops resume": (["ops", "resume", OP], 1),
        "strategies validate": (["strategies", "validate", *map(str, files)], len(files)),
        "strategies show": (["strategies", "show", str(files[0])], 1),
        "data import": (["data", "import", str(tmp / "bars.csv"), "--symbol", "X", "--timeframe", "1d"], 1),
        "data coverage": (["data", "coverage"], 1),
        "data load": (["data", "load", "X", "--timeframe", "1d", "--start", "2024-01-02"], 1 + len(items)),
        "train": (["train", str(files[0])], 1 + len(items)),
        "data gaps": (["data", "gaps", "X", "1d", "--start", "2024-01-02"], 1),
        "models list": (["models", "list"], 1),
        "models show": (["models", "show", "t/2"], 1),
        "models compare": (["models", "compare", "t/2", "t/2"], 1),
        "models delete": (["models", "delete", "t/2"], 1),
        "models export": (["models", "export", "t/2", "-o", str(tmp / "t.tar")], 1),
        "models alias": (["models", "alias", "t", "2", "champion"], 1),
        "backtest": (["backtest", "t@2", "--start", "2024-01-01", "--end", "2024-02-01"], 1 + len(items)),
    }


def commands_with_json(group: click.Group, ctx: click.Context, prefix: str = "") -> set[str]:
    found = set()
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        path = f"{prefix}{name}"
        if isinstance(command, click.Group):
            found |= commands_with_json(command, ctx, path + " ")
        elif command is not None and any("--json" in p.opts for p in command.params):
            found.add(path)
    return found


def test_every_json_option_prints_compact_documents_one_per_line(
    server: ScriptedServer, capsys, tmp_path: Path
) -> None:
    table = script_every_method(server, tmp_path)
    assert commands_with_json(cli, click.Context(cli)) == set(table)  # every --json is covered here
    for command, (argv, lines) in table.items():
        code, out, _ = run(server, capsys, *argv, "--json")
        assert code == 0, command
        documents = out.splitlines()
        assert len(documents) == lines, command
        for line in documents:
            document = json.loads(line)
            assert isinstance(document, dict), command
            # Compact, UTF-8 as the daemon sends it: the canonical bytes of the parsed document.
            assert line == json.dumps(document, ensure_ascii=False, separators=(",", ":")), command


# -- version -------------------------------------------------------------------------------------


def test_version_shows_client_and_daemon(server: ScriptedServer, capsys) -> None:
    from importlib import metadata

    server.on(SYSTEM + "GetInfo", lambda _: result(INFO))
    code, out, _ = run(server, capsys, "version")
    assert code == 0
    assert out.splitlines() == [
        f"client: ktrdrctl {metadata.version('ktrdr')}",
        f"daemon: ktrdrd 9.9.9 (pid 42, {server.runtime_dir})",
    ]
    code, out, _ = run(server, capsys, "version", "--json")
    assert json.loads(out) == {"client": {"version": metadata.version("ktrdr")}, "daemon": INFO}


def test_version_without_a_daemon_prints_the_client_then_exits_3(short_dir: Path) -> None:
    from importlib import metadata

    proc = run_ktrdrctl("--runtime-dir", str(short_dir), "version")
    assert proc.returncode == 3
    assert proc.stdout == f"client: ktrdrctl {metadata.version('ktrdr')}\n"
    assert f"cannot reach ktrdrd at {short_dir}/ctl.sock" in proc.stderr
    assert f"start it with: ktrdrd --runtime-dir {short_dir}" in proc.stderr


# -- shell completion ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("shell", "marker"),
    [
        ("bash", "complete -o nosort -F _ktrdrctl_completion ktrdrctl"),
        ("zsh", "#compdef ktrdrctl"),
        ("fish", "complete --no-files --command ktrdrctl"),
    ],
)
def test_completion_scripts_are_produced(shell: str, marker: str) -> None:
    proc = run_ktrdrctl(_KTRDRCTL_COMPLETE=f"{shell}_source")
    assert proc.returncode == 0, proc.stderr
    assert marker in proc.stdout


@pytest.mark.parametrize(
    ("words", "expected"),
    [
        ("ktrdrctl op", ["ops"]),
        ("ktrdrctl st", ["status", "strategies"]),  # strategies is imported lazily
        ("ktrdrctl ops wa", ["wait", "watch"]),
        ("ktrdrctl strategies v", ["validate"]),
    ],
)
def test_completion_of_subcommands(words: str, expected: list[str]) -> None:
    proc = run_ktrdrctl(
        _KTRDRCTL_COMPLETE="bash_complete", COMP_WORDS=words, COMP_CWORD=str(len(words.split()) - 1)
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [f"plain,{name}" for name in expected]


def test_completion_keeps_the_thin_import_rule() -> None:
    modules = imported_modules(env={"_KTRDRCTL_COMPLETE": "bash_source"})
    assert "click.shell_completion" in modules  # the completion really ran
    assert forbidden_in(modules) == [] and "ktrdrctl.ctl" not in modules
    assert {m for m in beyond_stdlib(modules) if m.split(".")[0] == "ktrdr"} == {"ktrdr", "ktrdr.wire"}
