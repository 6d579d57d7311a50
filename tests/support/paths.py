"""Where things are in this checkout, for tests that run files or processes from it."""

from __future__ import annotations

from pathlib import Path

#: The repository root (the directory holding pyproject.toml).
REPO = Path(__file__).resolve().parents[2]
#: The shipped strategies.
STRATEGIES = REPO / "strategies"
