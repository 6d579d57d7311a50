"""Run benchmarks: ``python -m bench`` runs all, ``python -m bench NAME [ARGS…]`` runs one.

Each benchmark is a module ``bench/<name>.py`` with ``main(argv: list[str]) -> int``. Figures are
printed as ratios against baselines measured side by side in the same run: this machine class is
small and noisy, so absolute times are not comparable between runs.
"""

from __future__ import annotations

import importlib
import pkgutil
import subprocess
import sys
import time
from pathlib import Path

#: Order of the full run: cheap, independent benchmarks first.
ORDER = (
    "indicators",
    "features",
    "skill",
    "backtest",
    "training",
    "training_host",
    "cli_startup",
    "daemon_calls",
    "daemon_watch",
    "daemon_hostile",
    "ib_pacing",
    "data_load",
    "train_daemon",
    "walkforward",
)


def available() -> list[str]:
    here = Path(__file__).parent
    found = {m.name for m in pkgutil.iter_modules([str(here)]) if not m.name.startswith("_") and not m.ispkg}
    return [n for n in ORDER if n in found] + sorted(found - set(ORDER))


def main(argv: list[str]) -> int:
    names = available()
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print("benchmarks:", ", ".join(names))
        return 0
    if argv:
        name, rest = argv[0], argv[1:]
        if name not in names:
            print(f"unknown benchmark {name!r}; available: {', '.join(names)}", file=sys.stderr)
            return 2
        return importlib.import_module(f"bench.{name}").main(rest)
    status = 0
    for name in names:
        if not hasattr(importlib.import_module(f"bench.{name}"), "main"):
            continue
        print(f"\n=== bench {name} ===", flush=True)
        t0 = time.perf_counter()
        # Each benchmark in a fresh process: no imports, allocator settings or threads carry over.
        rc = subprocess.run([sys.executable, "-m", "bench", name]).returncode
        print(f"--- {name}: exit {rc}, {time.perf_counter() - t0:.1f} s", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
