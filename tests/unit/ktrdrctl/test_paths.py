"""Where ktrdrctl looks for the daemon: the same runtime-dir defaults as ktrdrd."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ktrdr import wire
from ktrdrctl import paths


@pytest.fixture
def user(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    return monkeypatch


def test_root_uses_the_system_runtime_dir(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setenv("XDG_RUNTIME_DIR", "/run/user/0")
    assert paths.default_runtime_dirs() == ["/run/ktrdr"]
    assert paths.start_command("/run/ktrdr") == "systemctl start ktrdrd"


def test_user_default_is_xdg_then_the_system_service(user: pytest.MonkeyPatch) -> None:
    user.setenv("XDG_RUNTIME_DIR", "/run/user/1000")
    assert paths.default_runtime_dirs() == ["/run/user/1000/ktrdr", "/run/ktrdr"]
    assert paths.start_command("/run/ktrdr") == "sudo systemctl start ktrdrd"
    user.delenv("XDG_RUNTIME_DIR")
    assert paths.default_runtime_dirs() == ["/run/ktrdr"]  # ktrdrd has no user default either


def test_resolve_prefers_the_option_then_a_default_with_a_socket(
    user: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    user.setenv("XDG_RUNTIME_DIR", str(tmp_path / "xdg"))
    system = tmp_path / "system"
    user.setattr(wire, "SYSTEM_RUNTIME_DIR", str(system))
    assert paths.resolve_runtime_dir(str(tmp_path / "given")) == str(tmp_path / "given")
    # No socket anywhere: the user's own default, so the error names it.
    assert paths.resolve_runtime_dir(None) == str(tmp_path / "xdg" / "ktrdr")
    system.mkdir()
    (system / "ctl.sock").touch()
    assert paths.resolve_runtime_dir(None) == str(system)
    (tmp_path / "xdg" / "ktrdr").mkdir(parents=True)
    (tmp_path / "xdg" / "ktrdr" / "ctl.sock").touch()
    assert paths.resolve_runtime_dir(None) == str(tmp_path / "xdg" / "ktrdr")


def test_start_command_quotes_the_dir() -> None:
    assert paths.start_command("/tmp/my dir") == "ktrdrd --runtime-dir '/tmp/my dir'"
    assert paths.ctl_socket("/tmp/x") == "/tmp/x/ctl.sock"
