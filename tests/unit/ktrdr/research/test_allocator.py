"""Compute processes keep freed memory: mallopt succeeds on glibc and is idempotent."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_keep_freed_memory_sets_the_thresholds_once_per_process():
    code = (
        "from ktrdr.research.allocator import keep_freed_memory as k\n"
        "import numpy as np\n"
        "a = k(); b = k()\n"
        "x = np.ones(100_000).sum()\n"  # numerics unaffected
        "print(a, b, x)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["True", "True", "100000.0"]
