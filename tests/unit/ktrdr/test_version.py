"""ktrdr's version is written once (``ktrdr.__version__``); the installed package reports the same."""

from __future__ import annotations

import importlib.metadata

import ktrdr


def test_the_installed_metadata_carries_the_one_written_version() -> None:
    assert importlib.metadata.version("ktrdr") == ktrdr.__version__
