"""Whole-command cost of ``ktrdrctl status`` / ``ktrdrctl ops list`` against two baselines, and of
``ktrdrctl data show SYMBOL TF --tail 5`` against ``python -c pass``.

``python -m bench cli_startup [-n N] [--warmup W] [--importtime]``

Method (the one the predecessor's start-up costs were measured with): a state dir is filled with ~20 finished operations,
the real ``ktrdrd`` is started on it, and the JSON that ktrdrctl gets for each command is served
unchanged by the predecessor stand-in (``bench/predecessor``: Typer + ``asyncio.run`` + a new
``httpx.AsyncClient`` → FastAPI/uvicorn over TCP). Each timing is one whole process, spawn → reap
(interpreter start, imports, request, teardown), output discarded. After warm-ups, the three
commands run in rotating order n times (paired runs); ratios are taken pair by pair and reported as
median (min–max). ``data show`` reads a 1h series of a year (imported first with ``ktrdrctl data
import``; the predecessor has no such command). Targets: predecessor / ktrdrctl ≥ 6×, ktrdrctl /
``python -c pass`` ≤ 4× (every light command, ``data show --tail 5`` included), idle
daemon RSS ≤ 80 MiB. ``--importtime`` (or a missed target) adds a ``python -X importtime`` breakdown.
"""

from __future__ import annotations

import argparse
import asyncio
import compileall
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._util import (
    ROOT,
    VENV_BIN,
    free_port,
    median,
    populate_journal,
    rss_mib,
    running_daemon,
    time_command,
)
from ktrdr import wire

TARGET_VS_PREDECESSOR = 6.0
TARGET_VS_PYTHON = 4.0
TARGET_RSS_MIB = 80.0
N_OPERATIONS = 20
IDLE_S = 3.0


def _capture(argv: list[str], env: dict[str, str]) -> dict:
    out = subprocess.run(argv, env=env, capture_output=True, check=True, timeout=30)
    return json.loads(out.stdout)


def _write_series(directory: Path) -> Path:
    """A year of hourly bars (24×7, a gentle random walk) as CSV in the predecessor's layout."""
    import numpy as np

    hours = 365 * 24
    close = 100 * np.exp(np.cumsum(np.random.default_rng(7).normal(0, 0.002, hours)))
    path = directory / "BENCH_1h.csv"
    with path.open("w") as out:
        out.write("timestamp,open,high,low,close,volume\n")
        start = 1_672_531_200  # 2023-01-01 00:00 UTC
        prev = close[0]
        for i, c in enumerate(close):
            stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(start + 3600 * i))
            out.write(
                f"{stamp},{prev:.4f},{max(prev, c) * 1.001:.4f},{min(prev, c) * 0.999:.4f},{c:.4f},100\n"
            )
            prev = c
    return path


def _wait_port(port: int, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"predecessor server did not listen on {port}") from None
            time.sleep(0.05)


def _fmt(values: list[float], scale: float = 1000.0, digits: int = 0) -> str:
    return f"{median(values) * scale:.{digits}f} ({min(values) * scale:.{digits}f}–{max(values) * scale:.{digits}f})"


def _paired(
    commands: dict[str, list[str]], env: dict[str, str], n: int, warmup: int
) -> dict[str, list[float]]:
    """Run the commands in rotating order ``n`` times after ``warmup`` rounds; seconds per command."""
    names = list(commands)
    for _ in range(warmup):
        for name in names:
            time_command(commands[name], env)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(n):
        order = names[i % len(names) :] + names[: i % len(names)]
        for name in order:
            times[name].append(time_command(commands[name], env))
    return times


def _importtime(argv: list[str], env: dict[str, str], top: int = 12) -> list[tuple[int, int, str]]:
    """(cumulative µs, self µs, module) of the costliest imports of one run, top-level-most first."""
    out = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=30)
    rows = []
    for line in out.stderr.splitlines():
        if not line.startswith("import time:") or "cumulative" in line:
            continue
        self_us, cum_us, name = (part.strip() for part in line.removeprefix("import time:").split("|"))
        rows.append((int(cum_us), int(self_us), name.rstrip()))
    return sorted(rows, reverse=True)[:top]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench cli_startup", description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=30, help="paired rounds per command (default 30)")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--importtime", action="store_true", help="always print the import breakdown")
    args = parser.parse_args(argv)

    python = str(VENV_BIN / "python")
    ktrdrctl = str(VENV_BIN / "ktrdrctl")
    # An installed package ships .pyc; with PYTHONDONTWRITEBYTECODE set an editable install would
    # recompile ktrdrctl (and the ktrdr.wire it imports) on every start, which no user pays.
    # Compile once (no-op when up to date).
    compileall.compile_dir(ROOT / "ktrdrctl", quiet=1)
    for module in ("__init__.py", "wire.py"):
        compileall.compile_file(ROOT / "ktrdr" / module, quiet=1)
    print(
        f"PYTHONDONTWRITEBYTECODE={os.environ.get('PYTHONDONTWRITEBYTECODE', '')!r}; "
        "ktrdrctl/, ktrdr/__init__.py and ktrdr/wire.py compiled to .pyc"
    )

    ok = True
    with tempfile.TemporaryDirectory(prefix="ktrdr-bench-", dir="/tmp") as tmp:
        state_dir = Path(tmp) / "state"
        state_dir.mkdir(mode=0o750)
        asyncio.run(populate_journal(state_dir / wire.DB_NAME, N_OPERATIONS))
        with running_daemon(state_dir=state_dir) as daemon:
            time.sleep(IDLE_S)
            rss_idle = rss_mib(daemon.proc.pid)
            env = daemon.env
            payloads = {
                "status": _capture([ktrdrctl, "status", "--json"], env),
                "ops_list": _capture([ktrdrctl, "ops", "list", "--json"], env),
            }
            listed = len(payloads["ops_list"].get("operations", []))
            payload_path = Path(tmp) / "payloads.json"
            payload_path.write_text(json.dumps(payloads))
            port = free_port()
            server = subprocess.Popen(
                [python, "-m", "bench.predecessor.server", str(port), str(payload_path)],
                cwd=ROOT,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            try:
                _wait_port(port)
                pred = [python, str(ROOT / "bench" / "predecessor" / "cli.py"), "--port", str(port)]
                results = {}
                for label, ctl_args, pred_cmd in (
                    ("status", ["status"], "status"),
                    ("ops list", ["ops", "list"], "ops-list"),
                ):
                    commands = {
                        "predecessor": [*pred, pred_cmd],
                        "ktrdrctl": [ktrdrctl, *ctl_args],
                        "python -c pass": [python, "-c", "pass"],
                    }
                    results[label] = _paired(commands, env, args.n, args.warmup)
            finally:
                server.terminate()
                server.wait(10)
            csv_path = _write_series(Path(tmp))
            subprocess.run(
                [ktrdrctl, "data", "import", str(csv_path), "--symbol", "BENCH", "--timeframe", "1h", "--calendar", "crypto"],
                env=env, check=True, capture_output=True, timeout=120,
            )  # fmt: skip
            show = {
                "ktrdrctl": [ktrdrctl, "data", "show", "BENCH", "1h", "--tail", "5"],
                "python -c pass": [python, "-c", "pass"],
            }
            show_times = _paired(show, env, args.n, args.warmup)
            rss_after = rss_mib(daemon.proc.pid)

            print(
                f"\nktrdrd on a journal of {N_OPERATIONS} finished operations (ops list shows {listed}); "
                f"paired rounds n={args.n} after {args.warmup} warm-ups; ms, median (min–max)"
            )
            print(
                f"{'command':<10} {'predecessor':>18} {'ktrdrctl':>16} {'python -c pass':>16}"
                f" {'pred/ktrdrctl':>20} {'ktrdrctl/pass':>18}"
            )
            for label, times in results.items():
                vs_pred = [p / c for p, c in zip(times["predecessor"], times["ktrdrctl"], strict=True)]
                vs_pass = [c / p for c, p in zip(times["ktrdrctl"], times["python -c pass"], strict=True)]
                print(
                    f"{label:<10} {_fmt(times['predecessor']):>18} {_fmt(times['ktrdrctl']):>16}"
                    f" {_fmt(times['python -c pass']):>16} {_fmt(vs_pred, 1, 2):>20} {_fmt(vs_pass, 1, 2):>18}"
                )
                hit_pred = median(vs_pred) >= TARGET_VS_PREDECESSOR
                hit_pass = median(vs_pass) <= TARGET_VS_PYTHON
                print(
                    f"{'':<10} target pred/ktrdrctl ≥ {TARGET_VS_PREDECESSOR:g}×: {'met' if hit_pred else 'MISSED'};"
                    f" ktrdrctl/pass ≤ {TARGET_VS_PYTHON:g}×: {'met' if hit_pass else 'MISSED'}"
                )
                ok = ok and hit_pred and hit_pass
            vs_pass = [
                c / p for c, p in zip(show_times["ktrdrctl"], show_times["python -c pass"], strict=True)
            ]
            hit_show = median(vs_pass) <= TARGET_VS_PYTHON
            print(
                f"data show BENCH 1h --tail 5: ktrdrctl {_fmt(show_times['ktrdrctl'])} ms, python -c pass "
                f"{_fmt(show_times['python -c pass'])} ms, ratio {_fmt(vs_pass, 1, 2)} "
                f"(target ≤ {TARGET_VS_PYTHON:g}×: {'met' if hit_show else 'MISSED'})"
            )
            ok = ok and hit_show
            hit_rss = rss_idle <= TARGET_RSS_MIB
            print(
                f"\nidle ktrdrd RSS: {rss_idle:.1f} MiB after start + {IDLE_S:g} s idle "
                f"(target ≤ {TARGET_RSS_MIB:g}: {'met' if hit_rss else 'MISSED'}); "
                f"{rss_after:.1f} MiB after the runs"
            )
            ok = ok and hit_rss

            if args.importtime or not ok:
                for label, ctl_args in (("ktrdrctl ops list", ["ops", "list"]),):
                    rows = _importtime([python, "-X", "importtime", "-m", "ktrdrctl", *ctl_args], env)
                    print(f"\n-X importtime of {label}: costliest imports, ms cumulative (self)")
                    for cum, self_us, name in rows:
                        print(f"  {cum / 1000:7.1f} ({self_us / 1000:5.1f})  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
