"""ktrdrd configuration: precedence and sources, --print-config, and clear errors (exit 2)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from ktrdrd import config
from tests.support.paths import REPO


def run_ktrdrd(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    base = {"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"}
    return subprocess.run(
        [sys.executable, "-m", "ktrdrd", *args],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_precedence_defaults_file_env_flags_each_with_its_source(tmp_path: Path) -> None:
    toml = tmp_path / "ktrdrd.toml"
    toml.write_text(
        'log_level = "warning"\nshutdown_grace_s = 4\nretention_days = 7\n'
        '[hosts]\nib = "ib:1"\nca_file = "/etc/ktrdr/ca.pem"\ntoken_file = "/etc/ktrdr/token"\n'
    )
    env = {"KTRDR_SHUTDOWN_GRACE_S": "5.5", "KTRDR_RETENTION_DAYS": "9"}
    env |= {"XDG_RUNTIME_DIR": "/run/user/7", "HOME": "/h"}
    cfg = config.load(config_file=toml, flags={"retention_days": "11"}, env=env, euid=1000)

    assert cfg["log_format"] == "auto" and cfg.sources["log_format"] == "default"
    assert cfg["log_level"] == "warning" and cfg.sources["log_level"] == f"file {toml}"
    assert cfg["hosts.ib"] == "ib:1" and cfg.sources["hosts.ib"] == f"file {toml}"
    assert cfg["shutdown_grace_s"] == 5.5 and cfg.sources["shutdown_grace_s"] == "env KTRDR_SHUTDOWN_GRACE_S"
    assert cfg["retention_days"] == 11.0 and cfg.sources["retention_days"] == "flag --retention-days"
    assert cfg.runtime_dir == Path("/run/user/7/ktrdr")


def test_directory_defaults_follow_xdg_for_users_and_system_paths_for_root() -> None:
    user = config.load(env={"XDG_RUNTIME_DIR": "/run/user/5", "HOME": "/home/u"}, euid=5)
    assert user.runtime_dir == Path("/run/user/5/ktrdr")
    assert user.state_dir == Path("/home/u/.local/state/ktrdr")
    xdg = config.load(env={"XDG_RUNTIME_DIR": "/r", "XDG_STATE_HOME": "/s"}, euid=5)
    assert xdg.state_dir == Path("/s/ktrdr")
    root = config.load(env={"XDG_RUNTIME_DIR": "/run/user/0"}, euid=0)
    assert (root.runtime_dir, root.state_dir) == (Path("/run/ktrdr"), Path("/var/lib/ktrdr"))
    with pytest.raises(config.ConfigError, match="--runtime-dir or KTRDR_RUNTIME_DIR"):
        config.load(env={"HOME": "/home/u"}, euid=5)


def test_print_config_shows_values_and_sources(tmp_path: Path) -> None:
    toml = tmp_path / "c.toml"
    toml.write_text("watchdog = false\n")
    proc = run_ktrdrd(
        "--config", str(toml), "--print-config", "--state-dir", str(tmp_path / "st"),
        env={"KTRDR_LOG_LEVEL": "debug", "KTRDR_HOSTS_TRAINING": "gpu1:7443, gpu2:7443",
             # TCP hosts need TLS and a token (only named here: --print-config reads no file)
             "KTRDR_HOSTS_CA_FILE": "/etc/ktrdr/ca.pem", "KTRDR_HOSTS_TOKEN_FILE": "/etc/ktrdr/token"},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = {line.split("=")[0].strip(): line for line in proc.stdout.splitlines() if "=" in line}
    assert lines["watchdog"].endswith(f"# file {toml}") and "false" in lines["watchdog"]
    assert lines["log_level"].endswith("# env KTRDR_LOG_LEVEL") and '"debug"' in lines["log_level"]
    assert lines["state_dir"].endswith("# flag --state-dir") and str(tmp_path / "st") in lines["state_dir"]
    assert '["gpu1:7443", "gpu2:7443"]' in lines["hosts.training"]
    assert lines["log_format"].endswith("# default")
    assert not (tmp_path / "st").exists(), "--print-config must not create anything"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('log_lvl = "debug"\n', "line 1: unknown key 'log_lvl' (did you mean 'log_level'?)"),
        ('[hosts]\ntrainin = ["a:1"]\n', "line 2: unknown key 'hosts.trainin' (did you mean 'hosts.train"),
        ('shutdown_grace_s = "soon"\n', "'shutdown_grace_s' must be a number, got 'soon'"),
        ("watchdog = 1\n", "'watchdog' must be a boolean (true or false), got 1"),
        ('log_format = "xml"\n', "'log_format' must be one of auto, json, text"),
        ("retention_days = 0\n", "'retention_days' must be a number > 0"),
        ('[hosts]\ntraining = "a:1"\n', "'hosts.training' must be a list of non-empty strings"),
        ('hosts = "x"\n', "'hosts' must be a table"),
        ('[ib]\ngateway = "ibgw"\n', "line 2: 'ib.gateway' must be HOST:PORT with PORT 1..65535, got 'ibgw'"),
        ('[hosts]\nib = "unix:ib.sock"\n', "'hosts.ib' must be unix:/ABSOLUTE/PATH or HOST:PORT"),
        ("[hosts]\nembedded = 0\n", "'hosts.embedded' must be a boolean"),
        ("log_level = \n", "invalid TOML"),
    ],
)
def test_bad_config_file_names_file_key_and_expectation_exit_2(tmp_path: Path, text: str, expected: str):
    toml = tmp_path / "bad.toml"
    toml.write_text(text)
    run_dir = tmp_path / "run"
    dirs = ("--runtime-dir", str(run_dir), "--state-dir", str(tmp_path / "s"))
    proc = run_ktrdrd("--config", str(toml), *dirs)
    assert proc.returncode == 2
    assert str(toml) in proc.stderr and expected in proc.stderr, proc.stderr
    assert not run_dir.exists() and not (tmp_path / "s").exists(), "a config error must change nothing"


def test_bad_env_and_flag_values_name_their_source(tmp_path: Path) -> None:
    proc = run_ktrdrd("--print-config", env={"KTRDR_WATCHDOG": "maybe"})
    assert proc.returncode == 2
    assert "environment KTRDR_WATCHDOG: 'watchdog' must be a boolean" in proc.stderr
    proc = run_ktrdrd("--print-config", "--shutdown-grace-s", "-3")
    assert proc.returncode == 2
    assert "flag --shutdown-grace-s: 'shutdown_grace_s' must be a number >= 0" in proc.stderr
    proc = run_ktrdrd("--print-config", "--config", str(tmp_path / "missing.toml"))
    assert proc.returncode == 2 and f"{tmp_path / 'missing.toml'}: cannot read" in proc.stderr
    proc = run_ktrdrd("--log-format", "xml")
    assert proc.returncode == 2 and "invalid choice" in proc.stderr


def test_ktrdr_config_env_names_the_file(tmp_path: Path) -> None:
    toml = tmp_path / "env.toml"
    toml.write_text('log_format = "text"\n')
    cfg = config.load(env={"KTRDR_CONFIG": str(toml), "XDG_RUNTIME_DIR": "/r", "HOME": "/h"}, euid=9)
    assert cfg["log_format"] == "text" and cfg.sources["log_format"] == f"file {toml}"


def test_integer_limits_parse_from_every_source_and_refuse_bad_values(tmp_path: Path) -> None:
    env = {"XDG_RUNTIME_DIR": str(tmp_path), "HOME": str(tmp_path), "KTRDR_CTL_MAX_CALLS": "1_000"}
    toml = tmp_path / "k.toml"
    toml.write_text("ctl_max_connections = 50\n")
    cfg = config.load(config_file=toml, flags={"grpc_max_streams": "7"}, env=env, euid=1000)
    assert (cfg["ctl_max_calls"], cfg["ctl_max_connections"], cfg["grpc_max_streams"]) == (1000, 50, 7)
    assert cfg["ctl_send_buffer_bytes"] == 1024 * 1024 and cfg["ctl_frame_timeout_s"] == 10.0
    bad = [
        (
            {"KTRDR_CTL_MAX_CALLS": "lots"},
            None,
            "environment KTRDR_CTL_MAX_CALLS: 'ctl_max_calls' must be an integer",
        ),
        ({}, "ctl_max_calls = 1.5\n", "'ctl_max_calls' must be an integer, got 1.5"),
        ({}, "ctl_max_connections = 0\n", "'ctl_max_connections' must be an integer >= 1"),
        ({}, "ctl_send_buffer_bytes = 1024\n", "'ctl_send_buffer_bytes' must be an integer >= 65536"),
    ]
    for extra_env, text, message in bad:
        file = None
        if text is not None:
            file = tmp_path / "bad.toml"
            file.write_text(text)
        with pytest.raises(config.ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            config.load(config_file=file, env={**env, **extra_env}, euid=1000)
    proc = subprocess.run(
        [sys.executable, "-m", "ktrdrd", "--print-config", "--ctl-frame-timeout-s", "0"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "'ctl_frame_timeout_s' must be a number >= 0.1" in proc.stderr
