"""``make run``: start ktrdrd with its embedded defaults and train neuro_mean_reversion end to end.

Steps, each printed as it happens:

1. start ``ktrdrd`` on ``RUN_DIR/runtime`` and ``RUN_DIR/state`` with its embedded hosts (the
   gateway simulator, ``hostd ib``, ``hostd training``) and show ``ktrdrctl status`` — only a
   daemon it started itself: if another already serves ``RUN_DIR/runtime``, or its own exits before
   it answers (another holds the lock, a bad directory), it stops there, non-zero;
2. validate ``strategies/neuro_mean_reversion.yaml`` through the daemon (``ktrdrctl strategies validate``);
3. put the strategy's bars into the daemon's cache: seeded synthetic bars (GBM; 1h, resampled to 4h
   and 1d) imported with ``ktrdrctl data import`` (the output says they are synthetic);
4. ``ktrdrctl train`` on the embedded training host: progress streamed, the model registered
   (``RUN_DIR/state/models``), its metrics printed beside the majority-class and persistence
   baselines with the skill verdict (``docs/evaluation.md``): on these random walks it must read
   "not significant";
5. stop the daemon (SIGTERM) and check it exited cleanly.

Exit code: non-zero when any step fails.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from ktrdr import wire

STRATEGY = Path("strategies/neuro_mean_reversion.yaml")
START, END = "2023-01-01", "2025-01-01"


def _step(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def _run(argv: list[str], env: dict[str, str]) -> None:
    print("$ " + " ".join(argv), flush=True)
    subprocess.run(argv, env=env, check=True)


def _answering_pid(runtime: Path) -> int | None:
    """The pid of the ktrdrd answering on ``runtime`` (``ktrdrctl status --json``); None when none does."""
    ctl = Path(sys.executable).parent / "ktrdrctl"
    argv = [str(ctl), "--runtime-dir", str(runtime), "--call-timeout", "5s", "status", "--json"]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    return int(json.loads(proc.stdout).get("pid", 0)) if proc.returncode == 0 else None


def _start_daemon(argv: list[str], runtime: Path, env: dict[str, str]) -> subprocess.Popen[bytes] | None:
    """Start ktrdrd (``argv``) on ``runtime`` and return it once it is the daemon answering there.

    Never another one: if a daemon already answers on ``runtime`` nothing is started; if ours exits
    first (its reason is on stderr above), or another answers instead, or 60 s pass, it is stopped.
    Each case prints why on stderr and returns None.
    """
    foreign = _answering_pid(runtime)
    if foreign is not None:
        print(
            f"another ktrdrd (pid {foreign}) is already serving {runtime}; make run only uses a daemon "
            "it starts itself: stop that one, or use another run dir (make run RUN_DIR=DIR)",
            file=sys.stderr,
        )
        return None
    daemon = subprocess.Popen(argv, env=env)
    deadline = time.monotonic() + 60
    while daemon.poll() is None:
        pid = _answering_pid(runtime) if (runtime / wire.CTL_SOCKET).exists() else None
        if pid == daemon.pid:
            return daemon
        if pid is not None or time.monotonic() > deadline:
            daemon.terminate()
            daemon.wait(30)
            why = f"another ktrdrd (pid {pid}) answers on {runtime}" if pid else "no answer within 60 s"
            print(f"ktrdrd did not start: {why}", file=sys.stderr)
            return None
        time.sleep(0.05)
    print(f"ktrdrd exited {daemon.returncode} before it was ready (its reason is above)", file=sys.stderr)
    return None


def _import_data(data_dir: Path, ctl: list[str], env: dict[str, str]) -> None:
    """Seeded synthetic bars (GBM; 1h, resampled to 4h and 1d) for the strategy's symbols, imported
    into the daemon's bar cache with ``ktrdrctl data import``."""
    from ktrdr.research.bars import resample
    from ktrdr.research.synthetic import gbm_bars, write_csv
    from ktrdr.strategy import load_strategy_file

    strategy = load_strategy_file(STRATEGY).strategy
    data_dir.mkdir(parents=True, exist_ok=True)
    # Warm-up bars before START come from the same series: generate from a year earlier.
    for i, symbol in enumerate(strategy.data.symbols):
        base = gbm_bars(symbol, "1h", "2022-01-01", END, seed=20240101 + i, s0=100.0 + 50 * i, sigma=0.3)
        for tf in strategy.data.timeframes:
            path = write_csv(base if tf == "1h" else resample(base, tf), data_dir)
            # GBM bars run around the clock: the 24/7 calendar describes them.
            argv = ["data", "import", str(path), "--symbol", symbol, "--timeframe", tf, "--calendar", "crypto"]
            _run([*ctl, *argv], env)
    print(f"synthetic bars (seeded GBM) for {', '.join(strategy.data.symbols)} imported into the cache")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m ktrdr.demo", description=__doc__.split("\n\n")[0])
    p.add_argument("--run-dir", default=".run", help="directory for sockets, state, data and models")
    p.add_argument("--epochs", type=int, help="override the strategy's epochs (the tests use 2)")
    args = p.parse_args(argv)
    run_dir = Path(args.run_dir).resolve()
    runtime, state = run_dir / "runtime", run_dir / "state"
    env = {**os.environ, "KTRDR_RUNTIME_DIR": str(runtime)}

    _step("starting ktrdrd (with its embedded hosts: IB gateway simulator, hostd ib, hostd training)")
    daemon = _start_daemon(
        [
            sys.executable,
            "-m",
            "ktrdrd",
            "--runtime-dir",
            str(runtime),
            "--state-dir",
            str(state),
            "--log-format",
            "text",
        ],
        runtime,
        env,
    )
    if daemon is None:
        return 1
    try:
        ctl = [sys.executable, "-m", "ktrdrctl"]
        _run([*ctl, "status"], env)

        _step(f"validating {STRATEGY} through the daemon")
        _run([*ctl, "strategies", "validate", str(STRATEGY)], env)

        _step("preparing market data")
        _import_data(run_dir / "data", ctl, env)

        _step(f"training {STRATEGY.stem} on {START} .. {END} through the daemon (embedded training host)")
        epochs = ["--set", f"model.training.epochs={args.epochs}"] if args.epochs else []
        _run([*ctl, "train", str(STRATEGY), "--start-date", START, "--end-date", END, *epochs], env)
    except subprocess.CalledProcessError as exc:
        print(f"step failed: {' '.join(exc.cmd)} exited {exc.returncode}", file=sys.stderr)
        return 1
    finally:
        _step("stopping ktrdrd")
        daemon.send_signal(signal.SIGTERM)
        rc = daemon.wait(timeout=30)
        print(f"ktrdrd exited {rc}")
    return 0 if rc == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
