"""The systemd units agree with the wire facts (default directories), and the user unit is one a
user manager accepts (``systemd-analyze --user verify``, as ``make lint`` runs it)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from ktrdr import wire
from tests.support.paths import REPO

SYSTEM_UNIT = REPO / "systemd" / "ktrdrd.service"
USER_UNIT = REPO / "systemd" / "user" / "ktrdrd.service"


def settings(unit: Path) -> dict[str, list[str]]:
    """``Key=Value`` lines of a unit file: each key's values in order (sections merged)."""
    found: dict[str, list[str]] = {}
    for line in unit.read_text().splitlines():
        if "=" in line and not line.startswith(("#", ";", "[")):
            key, _, value = line.partition("=")
            found.setdefault(key.strip(), []).append(value.strip())
    return found


def test_the_system_unit_gives_the_daemon_its_root_defaults() -> None:
    unit = settings(SYSTEM_UNIT)
    assert f"/run/{unit['RuntimeDirectory'][0]}" == wire.SYSTEM_RUNTIME_DIR
    assert f"/var/lib/{unit['StateDirectory'][0]}" == wire.SYSTEM_STATE_DIR


def test_the_user_unit_runs_as_the_user_at_the_user_defaults() -> None:
    unit = settings(USER_UNIT)
    assert unit["Type"] == ["notify"] and "User" not in unit and "Group" not in unit
    assert unit["RuntimeDirectory"] == [wire.APP_DIR] and unit["RuntimeDirectoryMode"] == ["0700"]
    (exec_start,) = unit["ExecStart"]
    runtime_dir = exec_start.split("--runtime-dir ", 1)[1].split()[0]
    # %t is the user's $XDG_RUNTIME_DIR: the directory ktrdrctl looks in by default.
    assert runtime_dir == wire.default_runtime_dir({"XDG_RUNTIME_DIR": "%t"}, 1000)
    assert unit["WantedBy"] == ["default.target"]


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="needs systemd-analyze")
def test_a_user_manager_accepts_the_user_unit(tmp_path: Path) -> None:
    ktrdrd = shutil.which("ktrdrd") or str(REPO / ".venv" / "bin" / "ktrdrd")
    text = USER_UNIT.read_text().replace("ExecStart=%h/ktrdr/.venv/bin/ktrdrd", f"ExecStart={ktrdrd}")
    unit = tmp_path / "ktrdrd.service"
    unit.write_text(text)
    (tmp_path / "xdg").mkdir()
    proc = subprocess.run(
        ["systemd-analyze", "--user", "verify", str(unit)],
        env={"PATH": "/usr/bin:/bin", "XDG_RUNTIME_DIR": str(tmp_path / "xdg"), "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert (proc.returncode, proc.stderr) == (0, "")


IB_HOST_UNIT = REPO / "systemd" / "hostd-ib.service"


def test_the_ib_host_unit_runs_a_command_line_hostd_accepts() -> None:
    from hostd.__main__ import build_parser

    unit = settings(IB_HOST_UNIT)
    assert unit["Type"] == ["notify"] and unit["User"] == ["ktrdr"]
    (exec_start,) = unit["ExecStart"]
    program, *argv = exec_start.split()
    assert program == "/opt/ktrdr/.venv/bin/hostd"
    args = build_parser().parse_args(argv)
    runtime_dir = unit["RuntimeDirectory"][0]
    assert args.command == "ib" and args.listen.startswith(f"unix:/run/{runtime_dir}/")
